"""SimCLR's view pipeline applied to a whole batch on its device, independently random per sample:
random resized crop, horizontal flip, colour jitter, grayscale, Gaussian blur, solarize, normalise.
Input `uint8 [B, C, H, W]` (what the loaders collate); output float `[B, C, size, size]`."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contrastive.data.images.digit_augment import normalize, run_steps

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _u(n: int, lo: float, hi: float, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=x.device)


def crop_boxes(n: int, scale: tuple[float, float], ratio: tuple[float, float], x: torch.Tensor,
               g: torch.Generator | None) -> torch.Tensor:
    """`[n, 4]` boxes (cx, cy, w, h) as fractions of the image: area in `scale`, aspect ratio in `ratio`
    (log-uniform), clipped to fit, centred uniformly where they fit."""
    area = _u(n, *scale, x, g)
    r = torch.exp(_u(n, math.log(ratio[0]), math.log(ratio[1]), x, g))
    w, h = (area * r).sqrt().clamp(max=1.0), (area / r).sqrt().clamp(max=1.0)
    cx = w / 2 + _u(n, 0, 1, x, g) * (1 - w)
    cy = h / 2 + _u(n, 0, 1, x, g) * (1 - h)
    return torch.stack([cx, cy, w, h], 1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each image to its box and resize to `size` x `size` (bilinear), in one `grid_sample`."""
    cx, cy, w, h = boxes.unbind(1)
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w, zero, 2 * cx - 1], 1), torch.stack([zero, h, 2 * cy - 1], 1)], 1)
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)


def color_jitter(x: torch.Tensor, strength: float, p: float, g: torch.Generator | None) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 - 0.8 s, 1 + 0.8 s], hue shift in [-0.2 s, 0.2 s]
    turns of the YIQ chroma plane, applied (in that order) to each sample with probability `p`."""
    b = x.shape[0]
    on = (torch.rand(b, generator=g, device=x.device) < p).float().view(b, 1, 1, 1)
    lo, hi = 1 - 0.8 * strength, 1 + 0.8 * strength
    fb, fc, fs = (_u(b, max(0.0, lo), hi, x, g).view(b, 1, 1, 1) for _ in range(3))
    y = (x * fb).clamp(0, 1)
    y = ((y - _gray(y).mean((1, 2, 3), keepdim=True)) * fc + _gray(y).mean((1, 2, 3), keepdim=True)).clamp(0, 1)
    y = ((y - _gray(y)) * fs + _gray(y)).clamp(0, 1)
    if x.shape[1] == 3:
        a = _u(b, -0.2 * strength, 0.2 * strength, x, g) * 2 * math.pi
        yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device)
        t = torch.einsum("ij,bjhw->bihw", yiq, y)
        c, s = torch.cos(a).view(b, 1, 1), torch.sin(a).view(b, 1, 1)
        i, q = t[:, 1] * c - t[:, 2] * s, t[:, 1] * s + t[:, 2] * c
        y = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(yiq), torch.stack([t[:, 0], i, q], 1)).clamp(0, 1)
    return on * y + (1 - on) * x


def gaussian_blur(x: torch.Tensor, p: float, sigma: tuple[float, float], g: torch.Generator | None) -> torch.Tensor:
    """Blur each sample with probability `p`, sigma uniform in `sigma`, kernel ~10% of the image side."""
    b, c, h, w = x.shape
    k = max(3, (h // 10) | 1)
    s = _u(b, *sigma, x, g).view(b, 1)
    r = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(r[None] ** 2) / (2 * s ** 2))
    kern = (kern / kern.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, k]
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kern.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kern.view(b * c, 1, k, 1), groups=b * c)
    on = (torch.rand(b, generator=g, device=x.device) < p).view(b, 1, 1, 1)
    return torch.where(on, y.view(b, c, h, w), x)


class DeviceSimCLRAugment:
    """The batched twin of `SimCLRTransform`, with the same options."""

    def __init__(self, size: int = 32, crop_scale: tuple[float, float] = (0.08, 1.0), hflip_p: float = 0.5,
                 jitter_strength: float = 0.5, jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.0,
                 solarize_p: float = 0.0, mean: tuple[float, ...] = CIFAR_MEAN,
                 std: tuple[float, ...] = CIFAR_STD) -> None:
        self.size, self.crop_scale, self.hflip_p = size, tuple(crop_scale), hflip_p
        self.jitter_strength, self.jitter_p, self.gray_p = jitter_strength, jitter_p, gray_p
        self.blur_p, self.solarize_p, self.mean, self.std = blur_p, solarize_p, tuple(mean), tuple(std)

        self.steps = [("crop", self.crop), ("flip", self.flip), ("jitter", self.jitter), ("gray", self.gray)]
        self.steps += [("blur", self.blur)] if blur_p > 0 else []
        self.steps += [("solarize", self.solarize)] if solarize_p > 0 else []
        self.steps.append(("normalize", self.normalize))

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return run_steps(self.steps, images, generator)

    def _coin(self, x: torch.Tensor, p: float, g: torch.Generator | None) -> torch.Tensor:
        b = x.shape[0]
        return (torch.rand(b, generator=g, device=x.device) < p).view(b, 1, 1, 1)

    def crop(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return resized_crop(x, crop_boxes(x.shape[0], self.crop_scale, (3 / 4, 4 / 3), x, g), self.size)

    def flip(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return torch.where(self._coin(x, self.hflip_p, g), x.flip(-1), x)

    def jitter(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return color_jitter(x, self.jitter_strength, self.jitter_p, g)

    def gray(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return torch.where(self._coin(x, self.gray_p, g), _gray(x), x)

    def blur(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return gaussian_blur(x, self.blur_p, (0.1, 2.0), g)

    def solarize(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return torch.where(self._coin(x, self.solarize_p, g) & (x >= 0.5), 1 - x, x)

    def normalize(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return normalize(x, self.mean, self.std)
