"""The batch types that pass from data modules to models (models never import data modules)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class ViewBatch(NamedTuple):
    """Two augmented views `[B, C, H, W]` of the same images, their labels `[B]` and dataset indices `[B]`
    (None where the loader does not carry them)."""

    view1: torch.Tensor
    view2: torch.Tensor
    label: torch.Tensor | None = None
    index: torch.Tensor | None = None

    @classmethod
    def of(cls, batch: Sequence[torch.Tensor]) -> ViewBatch:
        """A loader's `(view1, view2[, label[, index]])` as a ViewBatch."""
        if not 2 <= len(batch) <= 4:
            raise ValueError(f"an image batch holds (view1, view2, label, index), got {len(batch)} items")
        return cls(*batch)
