"""Any folder of images laid out as `root/<class>/<image>`, two SimCLR views per image."""
from __future__ import annotations

import os

import torchvision
from torch.utils.data import Subset

from contrastive.data.base import ViewDataModule, split_indices
from contrastive.data.transforms import Plain, SimCLRTransform, TwoViews, plain_transform


class ImageFolderDataModule(ViewDataModule):
    """torchvision's ImageFolder under `root`, split into train/val/test with a fixed seed."""

    def __init__(self, root: str, size: int = 64, batch_size: int = 128, num_workers: int = 4,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 transform: SimCLRTransform | None = None) -> None:
        super().__init__(batch_size, num_workers)
        self.root, self.size = root, size
        self.fractions, self.split_seed = (val_fraction, test_fraction), split_seed
        self.transform = transform or SimCLRTransform(size)

    def setup(self, stage: str | None = None) -> None:
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder {os.path.abspath(self.root)} does not exist; set data.root "
                                    "to a folder laid out as <root>/<class name>/<image file>")
        base = torchvision.datasets.ImageFolder(self.root)
        self.num_classes, self._num_items = len(base.classes), len(base)
        tr, va, te = split_indices(len(base), *self.fractions, self.split_seed)
        views, plain = TwoViews(base, self.transform), Plain(base, plain_transform(self.size))
        self.train_set, self.val_set = Subset(views, tr), (Subset(views, va) if va else None)
        self.eval_train_set, self.eval_test_set = Subset(plain, tr), Subset(plain, te)
