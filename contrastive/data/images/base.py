"""Shared DataModule plumbing: loaders for two-view training and plain evaluation."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from contrastive.data.resumable import EpochSampler, ResumablePosition


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[list[int], ...]:
    """A fixed, seeded split of `range(n)` into (train, val, test) index lists."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction + test_fraction must be in [0, 1), got {val_fraction} + {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    return perm[n_test + n_val:].tolist(), perm[n_test:n_test + n_val].tolist(), perm[:n_test].tolist()


class ViewDataModule(ResumablePosition, pl.LightningDataModule):
    """Subclasses set `train_set`, `val_set` (items `(v1, v2, label, index)`) and `eval_train_set`,
    `eval_test_set` (items `(x, label)`, no augmentation) in `setup`."""

    num_classes: int = 0
    channels: int = 3  # of the images the encoder sees (subclasses with other images say so)
    size: int = 32  # their height and width (subclasses that resize say so)
    train_set: Dataset
    val_set: Dataset | None = None
    _num_items: int = 0
    # True: loaders yield (images, labels, indices) and the views are made on the batch's device
    device_augment: bool = False
    eval_train_set: Dataset
    eval_test_set: Dataset
    eval_val_set: Dataset | None = None  # the validation split un-augmented, `(x, label)`, for the online monitors

    def __init__(self, batch_size: int = 256, num_workers: int = 0, eval_batch_size: int = 512,
                 shuffle_seed: int = 0) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.num_workers, self.eval_batch_size = batch_size, num_workers, eval_batch_size
        self.shuffle_seed = shuffle_seed

    def _augment_on(self, where: str, recipe: Any) -> None:
        """`cpu`: the loaders apply the recipe per image (`recipe(image)`); `device`: they collate uint8 images and
        the recipe's batched twin (`recipe.batch`) makes the views on the training device (`make_view`); `auto`:
        device for a recipe that `prefers_batches` (many small ops: per image they cost more than they compute) or
        when no loader worker would overlap the per-image work with training (`num_workers=0`)."""
        if where not in ("auto", "cpu", "device"):
            raise ValueError(f"augment_on must be 'auto', 'cpu' or 'device', got {where!r}")
        self._where, self.transform = where, recipe
        batches = getattr(recipe, "prefers_batches", False) or self.num_workers == 0
        self.device_augment = where == "device" or (where == "auto" and batches)

    def make_view(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One augmented view of a collated batch, on its device (with `augment_on=device`)."""
        return self.transform.batch(x, generator)

    def facts(self) -> Any:
        """`ImageFacts` (channels, native side, training images) that the recipe and size defaults follow."""
        from contrastive.data.images.defaults import ImageFacts
        self.setup("fit")
        return ImageFacts(self.channels, self.size, len(self.train_set))  # type: ignore[arg-type]

    def configure(self, recipe: Any = None, batch_size: int | None = None, size: int | None = None) -> None:
        """Set what the task chose from the facts: the augmentation recipe, the batch size and the view size."""
        if size is not None:
            self.size = size
        if recipe is not None:
            self._augment_on(getattr(self, "_where", "device" if self.device_augment else "cpu"), recipe)
        if batch_size is not None:
            self.batch_size = batch_size

    def _loader(self, ds: Dataset, batch_size: int) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, generator=self._generator())

    def _generator(self) -> torch.Generator:
        # a loader's own generator: starting an epoch's iterator must not draw from the global RNG, whose
        # state a checkpoint restores (the augmentations and negatives depend on it)
        return torch.Generator().manual_seed(self.shuffle_seed)

    def train_dataloader(self) -> DataLoader:
        n = len(self.train_set)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError(f"the training set of {type(self).__name__} is empty")
        if n < self.batch_size:
            raise ValueError(f"the training set has {n} items, fewer than data.batch_size={self.batch_size}; "
                             "lower the batch size")
        trainer = getattr(self, "trainer", None)
        world = trainer.world_size if trainer is not None else 1
        if not getattr(self, "_warned_drop", False):
            self._warned_drop = True
            warn_left_out(n, self.batch_size, world)
        sampler = EpochSampler(n, self.shuffle_seed)
        if self._resume:  # set by load_state_dict when Lightning restores a checkpoint
            sampler.resume_at(self._resume["epoch"], self._resume["consumed_batches"] * self.batch_size)
            self._resume = None
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          generator=self._generator())

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        if not self.device_augment or trainer is None or not (trainer.training or trainer.validating
                                                              or trainer.sanity_checking):
            return batch
        x, y, i = batch
        g = None
        if not trainer.training:
            # validation views are fixed per batch (comparable losses) and leave the training RNG alone
            g = torch.Generator(device=x.device).manual_seed(int(i[0]) * 7919 + len(i))
        return self.make_view(x, g), self.make_view(x, g), y, i

    def val_dataloader(self) -> Any:
        return [] if self.val_set is None else self._loader(self.val_set, self.batch_size)

    def eval_loader(self, ds: Dataset) -> DataLoader:
        """Un-augmented `(x, label)` batches of `ds` in order, from a loader with its own generator."""
        return self._loader(ds, self.eval_batch_size)

    def eval_loaders(self) -> tuple[DataLoader, DataLoader]:
        """(train, test) loaders of un-augmented `(x, label)` batches for k-NN evaluation."""
        return self.eval_loader(self.eval_train_set), self.eval_loader(self.eval_test_set)

    def eval_val_loader(self) -> DataLoader | None:
        """Un-augmented `(x, label)` batches of the validation split, or None without one."""
        return None if self.eval_val_set is None else self.eval_loader(self.eval_val_set)

    def num_items(self) -> int:
        """How many distinct dataset indices the training batches carry (the size of a memory bank)."""
        self.setup("fit")
        return self._num_items

    def raw_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(train_x, train_y, test_x, test_y) raw pixels flattened, for the raw-pixel baseline; None where that
        is not cheap (an image folder would be decoded a second time)."""
        return None

    def bad_images(self) -> list[str] | None:
        """Files found unreadable while loading (skipped and replaced); None for data held in memory."""
        return None


def warn_left_out(n: int, batch_size: int, world: int) -> None:
    """Say how many of `n` items an epoch leaves out: each of `world` processes takes every `world`-th item of
    the shuffled order (the last ones repeated to even them out) and trains full batches of `batch_size`."""
    per_process = -(-n // world)
    left = per_process % batch_size
    if not left:
        return
    where = "" if world == 1 else f" by each of the {world} processes (which take {per_process} items each)"
    warnings.warn(f"{left} of the {n} training items are left out of each epoch{where}: batches of {batch_size} "
                  "must be full for exact cross-process negatives; which ones changes every epoch")
