"""The affine recipe (`augment=digits|grayscale_small`): augmentations applied to a whole batch of image tensors at
once, independently per sample."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import pil_to_tensor


def _uniform(n: int, lo: float, hi: float, like: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=like.device, dtype=like.dtype)


def random_affine(x: torch.Tensor, size: int, scale: tuple[float, float] = (0.75, 1.15),
                  degrees: float = 15.0, shear: float = 0.2, translate: float = 0.15,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Warp `[B, C, h, w]` to `[B, C, size, size]` with a random rotation, zoom, shear and shift per
    sample (a random resized crop is the zoom-and-shift part); bilinear, zero padding."""
    b = x.shape[0]
    s = _uniform(b, *scale, x, generator)
    a = _uniform(b, -degrees, degrees, x, generator) * (math.pi / 180)
    sh = _uniform(b, -shear, shear, x, generator)
    tx, ty = (_uniform(b, -translate, translate, x, generator) * 2 for _ in range(2))
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    # output->input sampling grid: inverse of zoom, then rotation with shear along x
    theta = torch.stack([torch.stack([cos, -sin + sh * cos, tx], 1),
                         torch.stack([sin, cos + sh * sin, ty], 1)], 1)  # [B, 2, 3]
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erase(x: torch.Tensor, p: float = 0.25, max_frac: float = 0.35,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one random rectangle (each side up to `max_frac` of the image) in each sample with prob. `p`."""
    b, _, h, w = x.shape
    eh = (_uniform(b, 0.1, max_frac, x, generator) * h).ceil()
    ew = (_uniform(b, 0.1, max_frac, x, generator) * w).ceil()
    y0 = _uniform(b, 0, 1, x, generator) * (h - eh)
    x0 = _uniform(b, 0, 1, x, generator) * (w - ew)
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :, None]
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, None, :]
    inside = ((rows >= y0[:, None, None].floor()) & (rows < (y0 + eh)[:, None, None].floor())
              & (cols >= x0[:, None, None].floor()) & (cols < (x0 + ew)[:, None, None].floor()))
    apply = torch.rand(b, generator=generator, device=x.device) < p
    return x.masked_fill((inside & apply[:, None, None])[:, None], 0.0)


def channel_stats(values: tuple[float, ...], channels: int) -> torch.Tensor:
    """Per-channel normalisation values `[1, C, 1, 1]`: one value repeated, or a colour recipe's three
    averaged for grayscale images."""
    v = torch.tensor(values, dtype=torch.float32)
    if len(v) != channels:
        v = v.mean().expand(channels)
    return v.view(1, channels, 1, 1)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """`(x - mean) / std` per channel of `[B, C, H, W]` (`channel_stats`), on `x`'s device."""
    c = x.shape[1]
    return (x - channel_stats(mean, c).to(x.device)) / channel_stats(std, c).to(x.device)


def run_steps(steps: list, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A recipe's batched `(name, op)` steps in order on `images` (uint8 scaled to [0, 1], float as it is)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    for _, op in steps:
        x = op(x, generator)
    return x


class AffineRecipe:
    """Views for small grayscale images (digits, characters, icons) whose meaning survives neither a flip nor a
    tight crop: random affine (zoom, rotation, shear, shift), contrast, Gaussian noise, erasing, normalise.
    `batch(x [B, C, h, w] uint8 or float in [0, 1], generator)` -> float `[B, C, size, size]`; `recipe(image)`
    does one image (PIL or `[C, h, w]`) with the same ops, for loader workers."""

    prefers_batches = True  # augment_on=auto makes these views on the training device, a batch at a time

    def __init__(self, size: int = 16, scale: tuple[float, float] = (0.75, 1.15), degrees: float = 15.0,
                 shear: float = 0.2, translate: float = 0.15, contrast: tuple[float, float] = (0.7, 1.3),
                 noise: float = 0.05, erase_p: float = 0.25, mean: tuple[float, ...] = (0.25,),
                 std: tuple[float, ...] = (0.35,)) -> None:
        self.options = {"size": size, "scale": tuple(scale), "degrees": degrees, "shear": shear,
                        "translate": translate, "contrast": tuple(contrast), "noise": noise, "erase_p": erase_p,
                        "mean": tuple(mean), "std": tuple(std)}
        # bound methods, not lambdas: loader workers started by spawn receive the recipe pickled
        self.steps = [("affine", self.affine), ("contrast", self.contrast), ("noise", self.noise),
                      ("erase", self.erase), ("normalize", self.normalize)]

    def affine(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        o = self.options
        return random_affine(x, o["size"], o["scale"], o["degrees"], o["shear"], o["translate"], generator=g)

    def contrast(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return x * _uniform(x.shape[0], *self.options["contrast"], x, g)[:, None, None, None]

    def noise(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return x + self.options["noise"] * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)

    def erase(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return random_erase(x, self.options["erase_p"], generator=g)

    def normalize(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return normalize(x, self.options["mean"], self.options["std"])

    def batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One view of each image of a batch, on its device."""
        return run_steps(self.steps, x, generator)

    def __call__(self, image: Any) -> torch.Tensor:
        x = image if isinstance(image, torch.Tensor) else pil_to_tensor(image)
        return self.batch(x.as_subclass(torch.Tensor)[None])[0]


def digit_views(x: torch.Tensor, size: int = 16, noise: float = 0.05, erase_p: float = 0.25,
                contrast: tuple[float, float] = (0.7, 1.3), generator: torch.Generator | None = None,
                **affine: Any) -> torch.Tensor:
    """One augmented view of a batch of grayscale digits in [0, 1]: `[B, 1, 8, 8]` -> `[B, 1, size, size]`
    (the `digits` recipe: random affine/zoom/crop, contrast, Gaussian noise, erasing), standardised around 0."""
    return AffineRecipe(size, contrast=contrast, noise=noise, erase_p=erase_p, **affine).batch(x, generator)


def digit_plain(x: torch.Tensor, size: int = 16, mean: tuple[float, ...] = (0.25,),
                std: tuple[float, ...] = (0.35,)) -> torch.Tensor:
    """The un-augmented input the encoder sees at evaluation: `[B, 1, 8, 8]` -> `[B, 1, size, size]`, normalised
    as the recipe's views are."""
    return normalize(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False), mean, std)
