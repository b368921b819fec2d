"""A sampler that resumes mid-epoch: a seeded permutation per epoch, plus a skip of the items already
consumed. The data module saves the position with the checkpoint and applies it on resume."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Indices `0..n-1` in the order `randperm(n)` seeded by `seed + epoch`; after `resume_at(epoch, k)`, the
    next iteration is that epoch without its first `k` indices. Each iteration moves to the next epoch."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch, self._skip = n, seed, 0, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        if self._skip == 0:
            self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        self.epoch, self._skip = epoch, skip

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g)[self._skip:]
        self._skip = 0
        self.epoch += 1
        return iter(order.tolist())


class ResumablePosition:
    """Data-module mixin: saves the training position `(epoch, batches consumed)` with each checkpoint and
    keeps the restored one in `_resume` for the next training loader. Lightning restores it before it builds
    that loader."""

    _resume: dict[str, int] | None = None
    exact_resume = True  # train.py silences Lightning's "dataloader is not resumable" warning for it
    trainer: Any

    def _position(self) -> tuple[int, int]:
        trainer = self.trainer
        epoch = trainer.current_epoch
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return (epoch + 1, 0) if done >= trainer.num_training_batches else (epoch, done)

    def state_dict(self) -> dict[str, int]:
        if getattr(self, "trainer", None) is None:
            return {}
        epoch, consumed = self._position()
        return {"epoch": epoch, "consumed_batches": consumed, "batch_size": int(getattr(self, "batch_size", 0))}

    def load_state_dict(self, state: dict[str, int]) -> None:
        saved, now = (state or {}).get("batch_size"), getattr(self, "batch_size", None)
        if state and state.get("consumed_batches") and saved and now is not None and saved != now:
            # the position is counted in batches: with another size the rest of the epoch would skip or repeat
            raise ValueError(f"the checkpoint stopped {state['consumed_batches']} batches into epoch "
                             f"{state['epoch']} with data.batch_size={saved}; resume with data.batch_size={saved} "
                             "(change it at an epoch boundary, or start a new run from the weights)")
        self._resume = dict(state) if state else None
