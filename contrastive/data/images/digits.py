"""scikit-learn's digits (1,797 real 8x8 images), held in memory; views made on the batch's device."""
from __future__ import annotations

from typing import Any

import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from contrastive.data.images.base import ViewDataModule, split_indices
from contrastive.data.images.defaults import ImageFacts
from contrastive.data.images.digit_augment import AffineRecipe, digit_plain
from contrastive.data.images.transforms import check_size


class DigitsDataModule(ViewDataModule):
    """Seeded train/val/test split of `load_digits`; two independently augmented views per image, made on
    the batch's device after transfer by the recipe (`augment=digits` by default: upsampled to `size` x `size`,
random affine, contrast, noise, erasing)."""

    channels = 1  # of the images the encoder sees

    num_classes = 10
    device_augment = True

    def __init__(self, batch_size: int = 256, size: int = 16, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, split_seed: int = 0, transform: Any = None, num_workers: int = 0,
                 shuffle_seed: int = 0) -> None:
        super().__init__(batch_size, num_workers, shuffle_seed=shuffle_seed)
        self.size = check_size(size)
        self.transform = transform or AffineRecipe(self.size)  # the digits recipe
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "x"):
            return
        d = load_digits()
        self.x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [1797, 1, 8, 8]
        self.y = torch.tensor(d.target, dtype=torch.long)
        self._num_items = len(self.y)
        self.idx = [torch.tensor(i, dtype=torch.long) for i in
                    split_indices(len(self.y), self.val_fraction, self.test_fraction, self.split_seed)]
        tr, va, te = self.idx
        self.train_set = TensorDataset(self.x[tr], self.y[tr], tr)
        self.val_set = TensorDataset(self.x[va], self.y[va], va) if len(va) else None
        norm = {k: self.transform.options.get(k, v) for k, v in (("mean", (0.25,)), ("std", (0.35,)))}
        self.eval_train_set = TensorDataset(digit_plain(self.x[tr], self.size, **norm), self.y[tr])
        self.eval_test_set = TensorDataset(digit_plain(self.x[te], self.size, **norm), self.y[te])
        self.eval_val_set = TensorDataset(digit_plain(self.x[va], self.size, **norm), self.y[va]) if len(va) else None

    def facts(self) -> ImageFacts:
        """1-channel 8 px images (upsampled to `size` for the encoder), without setting up the splits; 100 epochs,
        the default job's two minutes (the size rule would give 16-px views 300: docs/augment.md)."""
        n = len(load_digits().target)
        count = len(split_indices(n, self.val_fraction, self.test_fraction, self.split_seed)[0])
        return ImageFacts(1, 8, count, epochs=100)

    def raw_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        tr, _, te = self.idx
        return self.x[tr].flatten(1), self.y[tr], self.x[te].flatten(1), self.y[te]
