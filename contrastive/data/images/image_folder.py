"""Any folder of images laid out as `root/<class>/<image>`, two SimCLR views per image."""
from __future__ import annotations

import os
import warnings

import numpy as np
import torchvision
from PIL import Image
from torch.utils.data import Subset

from contrastive.data.images.base import ViewDataModule, split_indices
from contrastive.data.images.transforms import (
    Decoded,
    Plain,
    SimCLRTransform,
    TwoViews,
    plain_transform,
)


def to_rgb(im: Image.Image) -> Image.Image:
    """`im` as 8-bit RGB. PIL's `convert("RGB")` clips 16-bit and 32-bit modes (I;16, I, F) to 255 instead of
    scaling them; those are scaled here: integer modes by their bit depth, floats from [0, 1]."""
    if im.mode in ("RGB", "L", "P", "RGBA", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        return im.convert("RGB")
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a / 257.0
    elif a.size and a.max() > 65535:  # 32-bit integers using more than 16 bits
        a = a / 2 ** 24
    else:  # I;16 variants, and I holding 16-bit data (how PIL opens 16-bit PNGs)
        a = a / 257.0
    gray = Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8), mode="L")
    return gray.convert("RGB")


def load_rgb(path: str) -> Image.Image:
    """torchvision's default loader, with 16-bit and float images scaled to 8 bits instead of clipped."""
    with open(path, "rb") as f:
        im = Image.open(f)
        im.load()
        return to_rgb(im)


def unique_files(samples: list[tuple[str, int]]) -> tuple[list[tuple[str, int]], int]:
    """Each real file once (by resolved path; symbolic links can reach a file many times, loops without end),
    keeping the first occurrence; and how many duplicates were dropped."""
    seen: set[str] = set()
    out = []
    for path, label in samples:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append((path, label))
    return out, len(samples) - len(out)


class ImageFolderDataModule(ViewDataModule):
    """torchvision's ImageFolder under `root`, split into train/val/test with a fixed seed; views made by
    DataLoader workers (`augment_on=cpu`) or on whole batches on the training device (`device`)."""

    channels = 3  # of the images the encoder sees

    def __init__(self, root: str, size: int = 64, batch_size: int = 128, num_workers: int = 4,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
                 transform: SimCLRTransform | None = None, shuffle_seed: int = 0,
                 on_bad_image: str = "skip", augment_on: str = "cpu") -> None:
        super().__init__(batch_size, num_workers, shuffle_seed=shuffle_seed)
        self.root, self.size = root, size
        self.fractions, self.split_seed = (val_fraction, test_fraction), split_seed
        self.transform = transform or SimCLRTransform(size)
        self._augment_on(augment_on, self.transform)
        if on_bad_image not in ("skip", "error"):
            raise ValueError(f"on_bad_image must be 'skip' or 'error', got {on_bad_image!r}")
        self.on_bad_image = on_bad_image
        self.skipped: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder {os.path.abspath(self.root)} does not exist; set data.root "
                                    "to a folder laid out as <root>/<class name>/<image file>")
        try:
            base = torchvision.datasets.ImageFolder(self.root, loader=load_rgb)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"no images under {os.path.abspath(self.root)}: expected "
                                    f"<root>/<class name>/<image file> ({e})") from e
        self._drop_bad_images(base)
        self.num_classes, self._num_items = len(base.classes), len(base)
        tr, va, te = split_indices(len(base), *self.fractions, self.split_seed)
        # augment_on=device: workers decode and resize to uint8, the views are made on the training device
        views = Decoded(base, self.size) if self.device_augment else TwoViews(base, self.transform)
        plain = Plain(base, plain_transform(self.size))
        self.train_set, self.val_set = Subset(views, tr), (Subset(views, va) if va else None)
        self.eval_train_set, self.eval_test_set = Subset(plain, tr), Subset(plain, te)

    def _drop_bad_images(self, base: torchvision.datasets.ImageFolder) -> None:
        """Open every image once; corrupt or truncated files are skipped and counted, or raise."""
        good, bad = [], []
        samples, duplicates = unique_files(base.samples)
        if duplicates:
            warnings.warn(f"{duplicates} path(s) under {self.root} reach a file already indexed (symbolic links); "
                          "each file is used once")
        for path, label in samples:
            try:
                load_rgb(path)  # decodes the pixels: catches truncated files, not just bad headers
                good.append((path, label))
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                if self.on_bad_image == "error":
                    raise ValueError(f"unreadable image {path}: {e} (set data.on_bad_image=skip to skip such "
                                     "files)") from e
                bad.append(path)
        if bad:
            warnings.warn(f"skipped {len(bad)} unreadable image(s) under {self.root}, e.g. {bad[:3]}")
        if not good:
            raise ValueError(f"no readable images under {os.path.abspath(self.root)}")
        base.samples = base.imgs = good
        base.targets = [y for _, y in good]
        self.skipped = bad
