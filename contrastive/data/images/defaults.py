"""What an image data set is (channels, native side, training images) and the defaults that follow from it:
the augmentation recipe (`augment=auto`) and, where the config leaves them null, the view size, batch size,
epochs, warm-up and the learning rate's batch scaling."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from contrastive.data.images.fast_decode import BAD_IMAGE_ERRORS
from contrastive.data.images.folder_index import FileIndex

PEEK = 32  # files whose header an image folder reads to tell its channels and size
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
IMAGES_SEEN = 125_800  # training views of 32 px or more per run when the epochs are chosen (digits: 1,258 x 100)
COST_SIDE = 32  # smaller views are cheaper (16 px: 0.8 ms a view, 32 px: 6.2 ms on 2 CPU cores), so more of them
BASE_BATCH = 256  # the batch the configs' learning rates are set for (the linear scaling rule's reference)
MIN_TEST = 100  # test images a chosen split holds where half the set allows: on 20, one image is 0.05


@dataclass(frozen=True)
class ImageFacts:
    """What the recipe and the size defaults are chosen from."""

    channels: int  # 1: grayscale files, 3: colour
    side: int  # the median shorter side of the files, in pixels
    count: int  # training images
    epochs: int | None = None  # what a built-in set's recipe was tuned with (the digits demo: 100), else by size

    def __str__(self) -> str:
        kind = "grayscale" if self.channels == 1 else "colour"
        tuned = f", tuned for {self.epochs} epochs" if self.epochs else ""
        return f"{self.count:,} {kind} training images, shorter side {self.side} px (median){tuned}"


def peek_files(index: FileIndex, positions: list[int]) -> ImageFacts:
    """Facts of the training images `positions` of an image folder from the headers of up to PEEK evenly spread
    files (no pixels decoded): grayscale when every one read is stored in a grayscale mode."""
    count = len(positions)
    picks = [positions[int(i)] for i in np.linspace(0, len(positions) - 1, min(PEEK, len(positions)))]
    modes, sides = [], []
    for pos in picks:
        try:
            with Image.open(index.path(pos)) as im:
                modes.append(im.mode)
                sides.append(min(im.size))
        except BAD_IMAGE_ERRORS:
            continue  # an unreadable file is the loader's business (skipped and counted there)
    if not sides:
        return ImageFacts(3, 224, count)
    gray = all(m in GRAY_MODES for m in modes)
    return ImageFacts(1 if gray else 3, int(np.median(sides)), count)


def choose_recipe(facts: ImageFacts) -> str:
    """The `augment` option for these images: digits for grayscale images up to 16 px, grayscale_small for
    other grayscale images, cifar for colour images up to 64 px, imagenet above."""
    if facts.channels == 1:
        return "digits" if facts.side <= 16 else "grayscale_small"
    return "cifar" if facts.side <= 64 else "imagenet"


def recipe_config(name: str) -> dict[str, Any]:
    """The packaged `augment/<name>.yaml` as a plain dict (interpolations kept)."""
    from omegaconf import OmegaConf

    path = resources.files("contrastive.conf").joinpath("augment", f"{name}.yaml")
    if not path.is_file():
        raise ValueError(f"augment={name} is not a recipe; choose one of {', '.join(recipe_names())}")
    return OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=False)  # type: ignore[return-value]


def recipe_names() -> list[str]:
    """The packaged recipes (every `augment` option but auto)."""
    folder = resources.files("contrastive.conf").joinpath("augment")
    return sorted({p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")} - {"auto"})


def held_out_share(count: int) -> float:
    """The test fraction for a set of `count` images: a tenth, raised to hold MIN_TEST images, at most half."""
    return max(0.1, min(0.5, MIN_TEST / max(1, count)))


def view_size(facts: ImageFacts) -> int:
    """The side the encoder sees: the images' own, at least 16 (tiny images are upsampled, as digits' 8 px are)
    and at most 64 (larger ones are downsampled: CPU-sized runs; set data.size for more)."""
    return min(64, max(16, facts.side))


def loader_workers() -> int:
    """Decoding processes for an image folder: none on 2 cores or fewer (each would take a core from the
    training step: 44 s vs 67-69 s for 10 epochs of 614 32-px images with 0 vs 1 or 4 workers), else half the
    cores, at most 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else min(4, cores // 2)


def size_defaults(count: int, side: int = COST_SIDE) -> dict[str, Any]:
    """Batch, epochs and warm-up for `count` training images seen at `side` px: batches of up to BASE_BATCH (at
    least 4 per epoch), about IMAGES_SEEN views in all, (COST_SIDE / side)^2 times more for views under COST_SIDE
    (5 to 300 epochs), a tenth of them warm-up."""
    batch = max(2, min(BASE_BATCH, 2 ** int(math.log2(max(2, count // 4)))))
    views = IMAGES_SEEN * max(1.0, (COST_SIDE / max(1, side)) ** 2)
    epochs = max(5, min(300, round(views / max(1, count))))
    return {"batch_size": batch, "max_epochs": epochs, "warmup_epochs": max(1, round(epochs / 10))}
