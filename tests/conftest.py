"""Shared fixtures: compose the real Hydra config with fast CPU overrides."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "data.batch_size=32", "trainer.enable_progress_bar=false", "trainer.check_val_every_n_epoch=1"]


def make_cfg(tmp_path: Path, overrides: list[str] | None = None, fast: bool = True) -> DictConfig:
    """The composed training config with CPU-friendly overrides and `output_dir` in `tmp_path`."""
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=(FAST if fast else []) + list(overrides or []))
    with open_dict(cfg):
        cfg.output_dir = str(tmp_path)
    return cfg


def run_cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `contrastive-train` as a user would, in a new process in `cwd` (for what needs one: DDP, signals)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "contrastive.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_console(args: list[str], cwd: Path, show_warnings: bool = False) -> subprocess.CompletedProcess:
    """Run the `contrastive-train` console script's code in this process (no second import of torch and
    Lightning): `sys.exit(main())` with `args` in `cwd`, its console captured and its exit code as the
    interpreter would give it; the process-wide state it touches is put back. Warnings are printed to the
    captured stderr with `show_warnings`, else ignored (as `run_cli` does)."""
    from contrastive.train import main
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved = (os.getcwd(), sys.argv, root.handlers[:], root.level, torch.get_num_threads())
    try:
        os.chdir(cwd)
        sys.argv = ["contrastive-train", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("always" if show_warnings else "ignore")
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: \
                sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
            try:
                code = main()
            except SystemExit as e:
                code = e.code
            if code is not None and not isinstance(code, int):  # what the interpreter does with sys.exit(obj)
                print(code, file=sys.stderr)
                code = 1
    finally:
        os.chdir(saved[0])
        sys.argv = saved[1]
        root.handlers[:] = saved[2]
        root.setLevel(saved[3])
        torch.set_num_threads(saved[4])
    return subprocess.CompletedProcess(["contrastive-train", *args], code or 0, out.getvalue(), err.getvalue())


@pytest.fixture
def cfg_factory(tmp_path: Path):
    def factory(*overrides: str, fast: bool = True) -> DictConfig:
        return make_cfg(tmp_path, list(overrides), fast)
    return factory


def tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden size 32) and its WordPiece tokenizer saved with `save_pretrained` in `folder`:
    a local Hugging Face model for tests, nothing downloaded."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast
    folder.mkdir(parents=True, exist_ok=True)
    words = ["the", "of", "and", "to", "in", "is", "a", "topic", "question", "answer", "about", "what", "which",
             "some", "thing", "else", "one", "two", "three", "##s", "##ed", "##ing"]
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                 *"abcdefghijklmnopqrstuvwxyz0123456789", *words]) + "\n")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"))
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
