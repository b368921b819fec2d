"""Thin nn.Module wrappers around the InfoNCE family: hold the temperature, check arguments, gather."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from contrastive import distributed as D
from contrastive.losses.info_nce import clip_loss, info_nce, nt_xent
from contrastive.sparse import Hybrid, cat_rows, gather_rows

MAX_SCALE = 100.0


class Temperature(nn.Module):
    """A temperature, fixed or learnable; learnable ones are stored as log(scale), scale = 1/T <= 100."""

    def __init__(self, temperature: float, learnable: bool = False) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(f"objective.temperature must be a number, got {temperature!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if 1.0 / temperature > MAX_SCALE:
            raise ValueError(f"temperature must be >= {1 / MAX_SCALE} (scale <= {MAX_SCALE}), got {temperature}")
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        self.learnable = learnable

    def scale(self) -> torch.Tensor:
        """The current logit scale, 1 / temperature, as a 0-d tensor."""
        return self.log_scale.clamp(max=math.log(MAX_SCALE)).exp()

    def forward(self) -> torch.Tensor:
        """The current temperature as a 0-d tensor."""
        return 1.0 / self.scale()


class Gathered(nn.Module):
    """A two-view objective that, under DDP (`gather` true or None), sees the views of every process."""

    def __init__(self, gather: bool | None) -> None:
        super().__init__()
        self.gather = gather

    def _gathering(self) -> bool:
        return D.is_distributed() and self.gather is not False

    def _global_views(self, z1: torch.Tensor | Hybrid, z2: torch.Tensor | Hybrid,
                      ids: torch.Tensor | None) -> dict[str, Any]:
        """Under DDP, every process's views (with gradients) and ids and this process's first row; else {}."""
        if not self._gathering():
            return {}
        return {"all_z1": gather_rows(z1), "all_z2": gather_rows(z2),
                "all_ids": None if ids is None else D.gather_no_grad(ids), "offset": D.rank() * len(z1)}


class _Contrastive(Gathered):
    def __init__(self, temperature: float, learnable_temperature: bool, gather: bool | None,
                 tile_size: int | None = None) -> None:
        super().__init__(gather)
        if tile_size is not None and tile_size < 1:
            raise ValueError(f"tile_size must be a positive number of rows or None, got {tile_size}")
        self.temperature = Temperature(temperature, learnable_temperature)
        self.tile_size = tile_size


class NTXent(_Contrastive):
    """SimCLR's NT-Xent; `forward(z1, z2, ids=None, negative_keys=None, ...)` with `[N, d]` views -> scalar;
    `negative_keys` (a queue or memory bank) are added to the in-batch negatives. Under DDP
    (`gather` true or None) the negatives are the views of every process, gradients exact."""

    def __init__(self, temperature: float = 0.5, learnable_temperature: bool = False,
                 gather: bool | None = None, tile_size: int | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather, tile_size)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, ids: torch.Tensor | None = None,
                negative_keys: torch.Tensor | None = None, negative_ids: torch.Tensor | None = None,
                negative_log_q: torch.Tensor | None = None) -> torch.Tensor:
        t = self.temperature()
        extra = {"negative_keys": negative_keys, "negative_ids": negative_ids, "negative_log_q": negative_log_q,
                     "tile_size": self.tile_size}
        return nt_xent(z1, z2, t, ids=ids, **self._global_views(z1, z2, ids), **extra)


class InfoNCE(_Contrastive):
    """InfoNCE; `forward(query, key, ids=None, negative_keys=None, ...)` -> scalar. Without explicit
    negatives the other keys of the batch are the negatives, gathered from every process under DDP."""

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False,
                 negative_mode: str = "unpaired", gather: bool | None = None, tile_size: int | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather, tile_size)
        if negative_mode not in ("unpaired", "paired"):
            raise ValueError(f"negative_mode must be 'unpaired' or 'paired', got {negative_mode!r}")
        self.negative_mode = negative_mode

    def forward(self, query: torch.Tensor, key: torch.Tensor, ids: torch.Tensor | None = None,
                negative_keys: torch.Tensor | None = None, negative_ids: torch.Tensor | None = None,
                negative_log_q: torch.Tensor | None = None,
                extra_negatives: torch.Tensor | None = None) -> torch.Tensor:
        """`extra_negatives` `[M, d]` (e.g. hard negatives) join the in-batch negatives of every query."""
        t = self.temperature()
        if negative_keys is None:
            gathering = self._gathering()
            keys = gather_rows(key) if gathering else key
            key_ids = ids if ids is None or not gathering else D.gather_no_grad(ids)
            if extra_negatives is not None:
                extra = gather_rows(extra_negatives) if gathering else extra_negatives
                keys = cat_rows([keys, extra])
                if key_ids is not None:
                    key_ids = torch.cat([key_ids, key_ids.new_full((len(extra),), -1)])
            return info_nce(query, keys, temperature=t, ids=ids, key_ids=key_ids,
                            positive_offset=D.rank() * len(query) if gathering else 0, tile_size=self.tile_size)
        return info_nce(query, key, negative_keys, temperature=t, negative_mode=self.negative_mode, ids=ids,
                        key_ids=negative_ids, negative_log_q=negative_log_q, tile_size=self.tile_size)


class ClipLoss(InfoNCE):
    """CLIP's symmetric InfoNCE, `forward(a, b, ids=None)` -> scalar; temperature 0.07 learnable by default."""

    def __init__(self, temperature: float = 0.07, learnable_temperature: bool = True,
                 gather: bool | None = None, tile_size: int | None = None) -> None:
        super().__init__(temperature, learnable_temperature, "unpaired", gather, tile_size)

    def forward(self, a: torch.Tensor, b: torch.Tensor, ids: torch.Tensor | None = None,  # type: ignore[override]
                negative_keys: torch.Tensor | None = None, negative_ids: torch.Tensor | None = None,
                negative_log_q: torch.Tensor | None = None, extra_negatives: torch.Tensor | None = None) -> torch.Tensor:
        """`extra_negatives` (hard negatives for `a`) join the a -> b direction only; stored negatives
        (`negative_keys`, their ids and log Q) are refused."""
        if negative_keys is not None or negative_ids is not None or negative_log_q is not None:
            raise ValueError("objective=clip uses in-batch negatives only; use objective=infonce or ntxent with "
                             "negatives=queue or negatives=memory_bank")
        if extra_negatives is None and not self._gathering() and self.tile_size is None \
                and not isinstance(a, Hybrid):
            return clip_loss(a, b, self.temperature.scale(), ids=ids)  # the functional form, same numbers
        return 0.5 * (super().forward(a, b, ids=ids, extra_negatives=extra_negatives) + super().forward(b, a, ids=ids))
