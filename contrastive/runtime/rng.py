"""Exact resume: the RNG states and the data position saved in each checkpoint and restored before training
continues."""
from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain numbers (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` saved."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def record_position(trainer: pl.Trainer, checkpoint: dict[str, Any], batch_epoch: int | None,
                    logged_batches: int | None = None) -> None:
    """Make `checkpoint`'s loops and data position say where training stands after the batches of `batch_epoch`
    (the epoch of the last trained batch), so a continuation draws what an uninterrupted run draws. Lightning's
    own records get two cases wrong: an epoch that is over is restored as unfinished (the continuation trains one
    more batch of it), and an epoch that `max_steps` stopped part-way is counted as over (the continuation
    skips the rest of it). `logged_batches`: the batches stepped once the last one is done (the step the loggers
    give the next batch), which a save inside that batch's end has not counted yet."""
    if batch_epoch is None:
        return
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    epochs, batches = loops.get("epoch_progress", {}).get("current"), loops.get("epoch_loop.batch_progress")
    position = checkpoint.get(type(trainer.datamodule).__qualname__) if trainer.datamodule is not None else None
    if not isinstance(position, dict) or "epoch" not in position:
        position = {}
    if done >= trainer.num_training_batches:  # the next epoch is about to start
        epoch, consumed = batch_epoch + 1, 0
        if epochs is not None:
            epochs.update(ready=epoch, started=epoch, processed=epoch, completed=epoch)
        if batches is not None:
            batches.update(current={"ready": 0, "started": 0, "processed": 0, "completed": 0}, is_last_batch=False)
        stepped = loops.get("epoch_loop.state_dict")
        if logged_batches is not None and isinstance(stepped, dict) and "_batches_that_stepped" in stepped:
            # else the continuation logs its first step under the last step's number
            stepped["_batches_that_stepped"] = logged_batches
    elif trainer.current_epoch > batch_epoch:  # max_steps stopped the epoch part-way
        epoch, consumed = batch_epoch, done
        if epochs is not None:
            epochs.update(processed=epoch, completed=epoch)
    else:
        return
    checkpoint["epoch"] = epoch
    if position:
        position.update(epoch=epoch, consumed_batches=consumed)


class RNGStateCallback(pl.Callback):
    """Saves every RNG state with each checkpoint and restores it when training resumes, after the sanity
    check, so a resumed run draws the same augmentations and negatives as an uninterrupted one; corrects where
    Lightning records the training position (`record_position`)."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._batch_epoch: int | None = None
        self._logged_batches: int | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch_epoch = trainer.current_epoch
        self._logged_batches = trainer.fit_loop.epoch_loop._batches_that_stepped + 1  # Lightning adds it after this hook

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()
        record_position(trainer, checkpoint, self._batch_epoch, self._logged_batches)

    def on_load_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


@contextlib.contextmanager
def quiet_exact_resume(datamodule: Any) -> Iterator[None]:
    """Silence Lightning's "your dataloader is not resumable" warning for data modules that restore their
    position themselves (`exact_resume = True`, as `ResumablePosition`): their mid-epoch resume is exact, and the
    warning says otherwise."""
    with warnings.catch_warnings():
        if getattr(datamodule, "exact_resume", False):
            warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended")
        yield
