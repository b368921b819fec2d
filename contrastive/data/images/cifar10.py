"""CIFAR-10 from torchvision's python-format files, two SimCLR views per image."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torchvision
from torch.utils.data import Subset, TensorDataset

from contrastive.data.images.base import ViewDataModule, split_indices
from contrastive.data.images.defaults import ImageFacts
from contrastive.data.images.transforms import (
    Plain,
    SimCLRTransform,
    TwoViews,
    check_size,
    plain_transform,
)

FOLDER = "cifar-10-batches-py"


def load_cifar10(root: str, train: bool, download: bool) -> torchvision.datasets.CIFAR10:
    """torchvision's CIFAR10, with a clear error when the files are missing and cannot be fetched."""
    path = os.path.join(os.path.abspath(root), FOLDER)
    hint = (f"CIFAR-10 was not found at {path}. Put the python version of CIFAR-10 (the folder {FOLDER}/ with "
            f"data_batch_1..5 and test_batch) there, or set data.root=<folder holding {FOLDER}> or "
            "data.download=true (needs network access).")
    if not os.path.isdir(path) and not download:
        raise FileNotFoundError(hint)
    try:
        return torchvision.datasets.CIFAR10(root, train=train, download=download)
    except (RuntimeError, OSError) as e:  # torchvision's integrity check or a failed download
        raise FileNotFoundError(f"{hint} ({type(e).__name__}: {e})") from e


class Cifar10DataModule(ViewDataModule):
    """CIFAR-10: 50k training images (a seeded `val_size` of them held out for the validation loss) and
    the 10k test images; the views follow the `augment` recipe (cifar by default)."""

    channels = 3  # of the images the encoder sees

    num_classes = 10

    def __init__(self, root: str = "data", download: bool = False, batch_size: int = 256,
                 num_workers: int = 4, val_size: int = 5000, split_seed: int = 0,
                 transform: Any = None, shuffle_seed: int = 0, augment_on: str = "cpu", size: int = 32) -> None:
        super().__init__(batch_size, num_workers, shuffle_seed=shuffle_seed)
        self.root, self.download, self.val_size, self.split_seed = root, download, val_size, split_seed
        self.size = check_size(size)
        self.transform = transform or SimCLRTransform(self.size)
        self._augment_on(augment_on, self.transform)

    def prepare_data(self) -> None:
        load_cifar10(self.root, True, self.download)
        load_cifar10(self.root, False, self.download)

    def setup(self, stage: str | None = None) -> None:
        train = load_cifar10(self.root, True, False)
        test = load_cifar10(self.root, False, False)
        self._num_items = len(train)
        tr, va, _ = split_indices(len(train), self.val_size / len(train), 0.0, self.split_seed)
        if self.device_augment:  # loaders only collate uint8 tensors held in memory
            images = torch.from_numpy(np.asarray(train.data)).permute(0, 3, 1, 2).contiguous()
            labels, idx = torch.tensor(train.targets), torch.arange(len(train))
            views: Any = TensorDataset(images, labels, idx)
        else:
            views = TwoViews(train, self.transform)
        self.train_set, self.val_set = Subset(views, tr), (Subset(views, va) if va else None)
        plain = plain_transform(self.size, self.transform.options["mean"], self.transform.options["std"])
        self.eval_train_set, self.eval_test_set = Subset(Plain(train, plain), tr), Plain(test, plain)
        self.eval_val_set = Subset(Plain(train, plain), va) if va else None

    def facts(self) -> ImageFacts:
        """32 px colour images, 50,000 less `val_size` for training (nothing loaded)."""
        return ImageFacts(3, 32, 50_000 - self.val_size)

    def raw_features(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        train, test = load_cifar10(self.root, True, False), load_cifar10(self.root, False, False)
        def flat(ds: Any) -> torch.Tensor:
            return torch.tensor(np.asarray(ds.data), dtype=torch.float32).flatten(1) / 255.0
        return flat(train), torch.tensor(train.targets), flat(test), torch.tensor(test.targets)
