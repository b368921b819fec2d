"""Opening a trained run directory, the one way `contrastive-eval`, `-export` and `-embed` do it: where its config
and checkpoint are, the config checked for foreign code (`--trust` adds modules), the checkpoint read once."""
from __future__ import annotations

import argparse
import os
from typing import Any

import hydra
from omegaconf import DictConfig

from contrastive.runtime.checkpoints import load_checkpoint_file
from contrastive.runtime.safe_config import load_run_config


class Run:
    """A run directory of `contrastive-train` and one of its checkpoint files; `state` is read on first use."""

    def __init__(self, source: str, checkpoint: str = "last.ckpt") -> None:
        self.source = source  # as the user named it: the run directory or a checkpoint file
        if os.path.isdir(source):
            self.path, self.checkpoint = source, os.path.join(source, "checkpoints", checkpoint)
        elif os.path.isfile(source):
            self.path, self.checkpoint = os.path.dirname(os.path.dirname(os.path.abspath(source))), source
        else:
            raise FileNotFoundError(f"{source} is neither a run directory nor a checkpoint file")
        config = os.path.join(self.path, "config.yaml")
        _must_exist(config)
        self.config: DictConfig = load_run_config(config)  # refused here if it names foreign code
        _must_exist(self.checkpoint)
        self._state: dict[str, Any] | None = None

    @property
    def state(self) -> dict[str, Any]:
        """The checkpoint's contents (weights under `state_dict`, the data module's state under its class name)."""
        if self._state is None:
            self._state = load_checkpoint_file(self.checkpoint)
        return self._state

    def task(self) -> Any:
        """The run's task object (which kind of run it was)."""
        return hydra.utils.instantiate(self.config.task)


def _must_exist(path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: pass a run directory made by contrastive-train "
                                "(config.yaml and checkpoints/) or one of its checkpoint files")


def opened(source: str | Run, checkpoint: str = "last.ckpt") -> Run:
    """`source` itself when it is an opened `Run`, else the run directory or checkpoint file it names, opened."""
    return source if isinstance(source, Run) else Run(source, checkpoint)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """The `--trust MODULE[,MODULE]` option every command that opens a run directory takes."""
    parser.add_argument("--trust", default="", metavar="MODULE[,MODULE]",
                        help="modules whose classes the run's config may build (a run trained with your own code)")
