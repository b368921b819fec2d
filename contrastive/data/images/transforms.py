"""Per-image view transforms for the CPU pipeline (CIFAR-10, image folders)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from contrastive.data.images.device_augment import (
    CIFAR_MEAN,
    CIFAR_STD,
    DeviceSimCLRAugment,
)
from contrastive.data.images.digit_augment import channel_stats


def reflect_blur_matrix(n: int, kernel: torch.Tensor) -> torch.Tensor:
    """`[n, n]` matrix M with `x @ M` = the 1-D convolution of each row of `x` (length n) with `kernel`, the
    rows padded by reflection (as torchvision's blur pads)."""
    k, half = kernel.numel(), kernel.numel() // 2
    src = torch.arange(n, device=kernel.device)[None, :] + torch.arange(k, device=kernel.device)[:, None] - half
    src = src.abs()  # reflect at 0 (for n > half)
    src = torch.where(src > n - 1, 2 * (n - 1) - src, src)  # reflect at n - 1
    dst = torch.arange(n, device=kernel.device).expand(k, n)
    m = torch.zeros(n, n, device=kernel.device)
    return m.index_put_((src.reshape(-1), dst.reshape(-1)), kernel[:, None].expand(k, n).reshape(-1),
                        accumulate=True)


class SeparableGaussianBlur(torch.nn.Module):
    """torchvision's `GaussianBlur` (reflect padding, sigma drawn uniformly from `sigma` per call) as two 1-D
    passes, each one matrix product: the same image to float rounding (uint8 within 1), about 5x faster on a
    CPU at 224 pixels, where the 2-D blur was most of a view's time."""

    def __init__(self, kernel_size: int, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.kernel_size, self.sigma = kernel_size, tuple(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.empty(1).uniform_(*self.sigma).item()
        h, w = x.shape[-2:]
        if min(h, w) <= self.kernel_size // 2:  # too small to reflect: torchvision's own blur
            return T.functional.gaussian_blur(x, [self.kernel_size] * 2, [s, s])
        r = torch.arange(self.kernel_size, dtype=torch.float32, device=x.device) - self.kernel_size // 2
        kernel = torch.exp(-(r ** 2) / (2 * s * s))
        kernel = kernel / kernel.sum()
        y = (x if x.is_floating_point() else x.float()).as_subclass(torch.Tensor)
        y = reflect_blur_matrix(h, kernel).T @ (y @ reflect_blur_matrix(w, kernel))
        if not x.is_floating_point():
            y = y.round_().clamp_(0, 255).to(x.dtype)
        return tv_tensors.wrap(y, like=x) if isinstance(x, tv_tensors.Image) else y


def check_size(size: int) -> int:
    """`size` if it is a positive whole number of pixels, else a ValueError naming `data.size`."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"data.size must be a positive number of pixels (the side of the square images the encoder "
                         f"sees), got {size!r}")
    return size


class SimCLRTransform:
    """SimCLR's view: random resized crop, flip, colour jitter, grayscale, blur, then normalise.
    Returns a float tensor `[C, size, size]`; call twice for two independent views."""

    def __init__(self, size: int = 32, crop_scale: tuple[float, float] = (0.08, 1.0), hflip_p: float = 0.5,
                 jitter_strength: float = 0.5, jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.0,
                 solarize_p: float = 0.0, mean: tuple[float, ...] = CIFAR_MEAN,
                 std: tuple[float, ...] = CIFAR_STD) -> None:
        check_size(size)
        self.options = {"size": size, "crop_scale": tuple(crop_scale), "hflip_p": hflip_p, "jitter_strength": jitter_strength,
                            "jitter_p": jitter_p, "gray_p": gray_p, "blur_p": blur_p, "solarize_p": solarize_p, "mean": tuple(mean),
                            "std": tuple(std)}
        s = jitter_strength
        self.steps: list[tuple[str, Callable[[Any], Any]]] = [
            ("crop", T.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True)),
            ("flip", T.RandomHorizontalFlip(hflip_p)),
            ("jitter", T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=jitter_p)),
            ("gray", T.RandomGrayscale(gray_p)),
        ]
        if blur_p > 0:
            k = max(3, (size // 10) | 1)
            self.steps.append(("blur", T.RandomApply([SeparableGaussianBlur(k, sigma=(0.1, 2.0))], p=blur_p)))
        if solarize_p > 0:
            self.steps.append(("solarize", T.RandomSolarize(128, p=solarize_p)))
        self.steps.append(("normalize", Normalized(mean, std)))
        self._device: Any = None

    def __call__(self, img: Any) -> torch.Tensor:
        return self._apply(T.ToImage()(img), self.steps)

    def after_crop(self, img: Any) -> torch.Tensor:
        """The same view for an image already cropped and resized (the image-folder loader crops while decoding)."""
        return self._apply(T.ToImage()(img), self.steps[1:])

    @staticmethod
    def _apply(x: Any, steps: list[tuple[str, Callable[[Any], Any]]]) -> torch.Tensor:
        for _, op in steps:
            x = op(x)
        return x

    def batch(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The batched twin (`augment_on=device`): one view of each image of a uint8 batch, on its device."""
        if self._device is None:
            self._device = DeviceSimCLRAugment(**self.options)
        return self._device(images, generator)


class Normalized:
    """uint8 or float image -> float in [0, 1], normalised by per-channel `mean` and `std` (one channel of a
    grayscale image takes the colour values' average)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, x: Any) -> torch.Tensor:
        x = T.ToDtype(torch.float32, scale=True)(x)
        mean, std = (channel_stats(v, x.shape[-3]).flatten().tolist() for v in (self.mean, self.std))
        return T.Normalize(mean, std)(x)


def plain_transform(size: int, mean: tuple[float, ...] = CIFAR_MEAN,
                    std: tuple[float, ...] = CIFAR_STD) -> Callable[[Any], torch.Tensor]:
    """The evaluation transform: resize (shorter side), centre crop, normalise."""
    return T.Compose([T.ToImage(), T.Resize(size, antialias=True), T.CenterCrop(size), Normalized(mean, std)])


class TwoViews(torch.utils.data.Dataset):
    """Wraps a `(image, label)` dataset: item i -> `(view1, view2, label, i)`."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        img, y = self.base[i]
        return self.transform(img), self.transform(img), int(y), i


class Plain(torch.utils.data.Dataset):
    """Wraps a `(image, label)` dataset with the evaluation transform: item i -> `(x, label)`."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor]) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img, y = self.base[i]
        return self.transform(img), int(y)
