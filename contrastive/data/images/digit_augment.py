"""Augmentations applied to a whole batch of image tensors at once, independently per sample."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def digit_views(x: torch.Tensor, size: int = 16, noise: float = 0.05, erase_p: float = 0.25,
                contrast: tuple[float, float] = (0.7, 1.3), generator: torch.Generator | None = None,
                **affine: float) -> torch.Tensor:
    """One augmented view of a batch of grayscale digits in [0, 1]: `[B, 1, 8, 8]` -> `[B, 1, size, size]`
    (random affine/zoom/crop, contrast, Gaussian noise, erasing), standardised around 0."""
    v = random_affine(x, size, generator=generator, **affine)  # type: ignore[arg-type]
    v = v * _uniform(x.shape[0], *contrast, v, generator)[:, None, None, None]
    v = v + noise * torch.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype)
    v = random_erase(v, erase_p, generator=generator)
    return (v - 0.25) / 0.35


def digit_plain(x: torch.Tensor, size: int = 16) -> torch.Tensor:
    """The un-augmented input the encoder sees at evaluation: `[B, 1, 8, 8]` -> `[B, 1, size, size]`."""
    v = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (v - 0.25) / 0.35
