"""Per-image view transforms for the CPU pipeline (CIFAR-10, image folders)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms import v2 as T

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class SimCLRTransform:
    """SimCLR's view: random resized crop, flip, colour jitter, grayscale, blur, then normalise.
    Returns a float tensor `[C, size, size]`; call twice for two independent views."""

    def __init__(self, size: int = 32, crop_scale: tuple[float, float] = (0.08, 1.0), hflip_p: float = 0.5,
                 jitter_strength: float = 0.5, jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.0,
                 solarize_p: float = 0.0, mean: tuple[float, ...] = CIFAR_MEAN,
                 std: tuple[float, ...] = CIFAR_STD) -> None:
        self.options = {"size": size, "crop_scale": tuple(crop_scale), "hflip_p": hflip_p, "jitter_strength": jitter_strength,
                            "jitter_p": jitter_p, "gray_p": gray_p, "blur_p": blur_p, "solarize_p": solarize_p, "mean": tuple(mean),
                            "std": tuple(std)}
        s = jitter_strength
        steps: list[Callable[..., Any]] = [
            T.ToImage(),
            T.RandomResizedCrop(size, scale=tuple(crop_scale), antialias=True),
            T.RandomHorizontalFlip(hflip_p),
            T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=jitter_p),
            T.RandomGrayscale(gray_p),
        ]
        if blur_p > 0:
            k = max(3, (size // 10) | 1)
            steps.append(T.RandomApply([T.GaussianBlur(k, sigma=(0.1, 2.0))], p=blur_p))
        if solarize_p > 0:
            steps.append(T.RandomSolarize(128, p=solarize_p))
        steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
        self.transform = T.Compose(steps)
        # the same view for an image already cropped and resized (the image-folder loader crops while decoding)
        self.after_crop = T.Compose([T.ToImage(), *steps[2:]])

    def __call__(self, img: Any) -> torch.Tensor:
        return self.transform(img)


def plain_transform(size: int, mean: tuple[float, ...] = CIFAR_MEAN,
                    std: tuple[float, ...] = CIFAR_STD) -> Callable[[Any], torch.Tensor]:
    """The evaluation transform: resize (shorter side), centre crop, normalise."""
    return T.Compose([T.ToImage(), T.Resize(size, antialias=True), T.CenterCrop(size),
                      T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])


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


class Decoded(torch.utils.data.Dataset):
    """Wraps a `(image, label)` dataset for augmentation on the device: item i -> `(uint8 [3, size, size],
    label, i)`, the image resized (shorter side) and centre-cropped; workers only decode."""

    def __init__(self, base: Any, size: int) -> None:
        self.base = base
        self.transform = T.Compose([T.ToImage(), T.RGB(), T.Resize(size, antialias=True), T.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        img, y = self.base[i]
        return self.transform(img).as_subclass(torch.Tensor), int(y), i
