"""Shared fixtures: compose the real Hydra config with fast CPU overrides."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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
    """Run `contrastive-train` as a user would, in `cwd`."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "contrastive.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


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
