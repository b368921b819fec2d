"""Decoding image files for training: JPEGs decoded at reduced size where the crop allows (PIL's draft mode),
16-bit and float images scaled (not clipped) to 8 bits, the crop chosen before the pixels are decoded."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from contrastive.data.images.transforms import SimCLRTransform

# what a file that cannot be used as an image raises while it is opened or decoded
BAD_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


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


def load_rgb(path: str, min_side: int | None = None) -> Image.Image:
    """The image as 8-bit RGB; a JPEG is decoded at 1/2, 1/4 or 1/8 scale when both sides stay >= `min_side`."""
    with open(path, "rb") as f:
        im = Image.open(f)
        if min_side:
            im.draft(None, (min_side, min_side))  # a no-op for formats other than JPEG
        im.load()
        return to_rgb(im)


def crop_box(width: int, height: int, scale: tuple[float, float],
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """A random resized crop `(top, left, h, w)`: area fraction in `scale`, aspect ratio log-uniform in `ratio`
    (10 tries, then the largest centred crop within `ratio`); drawn from torch's RNG."""
    area, log_ratio = width * height, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(*scale).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)))
            left = int(torch.randint(0, width - w + 1, (1,)))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class CropFirstViews:
    """path -> `views` SimCLR views. The crops are drawn from the image's header size, the JPEG is decoded at
    the largest reduction that leaves every crop at least `size` pixels wide and high, each crop is cut and
    resized from the decoded uint8 pixels by torch, and the rest of the view stays uint8 until the final
    normalisation."""

    def __init__(self, transform: SimCLRTransform, views: int = 2) -> None:
        self.transform, self.views = transform, views
        self.size, self.scale = transform.options["size"], transform.options["crop_scale"]

    def __call__(self, path: str) -> tuple[torch.Tensor, ...]:
        with open(path, "rb") as f:
            im = Image.open(f)
            width, height = im.size
            boxes = [crop_box(width, height, self.scale) for _ in range(self.views)]
            # draft keeps width / s >= the requested width: request what makes the narrowest crop `size` wide
            im.draft(None, (max(math.ceil(width * self.size / w) for _, _, _, w in boxes),
                            max(math.ceil(height * self.size / h) for _, _, h, _ in boxes)))
            im.load()
            rgb = to_rgb(im)
        fx, fy = rgb.width / width, rgb.height / height
        pixels = F.pil_to_tensor(rgb)  # uint8 [3, H, W], cropped and resized by torch's fast uint8 path
        return tuple(self.transform.after_crop(F.resized_crop(
            pixels, round(top * fy), round(left * fx), max(1, round(h * fy)), max(1, round(w * fx)),
            [self.size, self.size], antialias=True)) for top, left, h, w in boxes)

    def __repr__(self) -> str:
        return f"CropFirstViews(size={self.size}, scale={self.scale}, views={self.views})"


def describe(e: Any) -> str:
    """An exception as one short line."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
