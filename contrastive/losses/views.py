"""The SimCLR layout shared by the two-view losses: 2N local anchors scored against the 2K views of the
(global) batch, with each anchor's own column, its positive's column and its negatives."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F

from contrastive.sparse import Hybrid, cat_rows, cosine_matrix

Rows = torch.Tensor | Hybrid


Loss = TypeVar("Loss", bound=Callable[..., torch.Tensor])
_HALF = (torch.float16, torch.bfloat16)


def full_precision(loss: Loss) -> Loss:
    """`loss` run with autocast off and half-precision tensor arguments in float32 (a logsumexp over many bf16
    logits loses digits); float32 and float64 arguments keep their type."""
    def up(v: object) -> object:
        return v.float() if torch.is_tensor(v) and v.dtype in _HALF else v

    @functools.wraps(loss)
    def wrapper(*args: object, **kwargs: object) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return loss(*map(up, args), **{k: up(v) for k, v in kwargs.items()})
    return wrapper  # type: ignore[return-value]


def cosines(q: Rows, k: Rows) -> torch.Tensor:
    """Cosine similarities `[len(q), len(k)]`, in the rows' own float type (float32 for hybrid rows)."""
    if isinstance(q, Hybrid) or isinstance(k, Hybrid):
        return cosine_matrix(q, k)
    return F.normalize(q, dim=1) @ F.normalize(k, dim=1).T


class TwoViews(NamedTuple):
    cos: torch.Tensor  # [2N, 2K] cosine similarities
    self_col: torch.Tensor  # [2N] each anchor's own column
    pos_col: torch.Tensor  # [2N] the column of its other view
    negative: torch.Tensor  # [2N, 2K] bool: neither itself, nor its positive, nor a view sharing its id
    anchor_ids: torch.Tensor | None  # [2N]
    key_ids: torch.Tensor | None  # [2K]


def check_views(z1: Rows, z2: Rows, ids: torch.Tensor | None) -> None:
    """ValueError unless `z1`, `z2` are `[N, d]` alike (plain or hybrid) and `ids` is `[N]` or None."""
    dense = [z.dense if isinstance(z, Hybrid) else z for z in (z1, z2)]
    if dense[0].dim() != 2 or dense[0].shape != dense[1].shape:
        raise ValueError(f"the two views must both be [N, d] with the same shape, got {tuple(dense[0].shape)} "
                         f"and {tuple(dense[1].shape)}")
    if ids is not None and (ids.dim() != 1 or ids.shape[0] != len(z1)):
        raise ValueError(f"ids must be a [N] tensor with N={len(z1)}, got shape {tuple(ids.shape)}")


def two_views(z1: Rows, z2: Rows, ids: torch.Tensor | None = None, all_z1: Rows | None = None,
              all_z2: Rows | None = None, all_ids: torch.Tensor | None = None, offset: int = 0) -> TwoViews:
    """Local views `[N, d]` against the global batch's views `all_z1, all_z2` `[K, d]` (local rows at `offset`;
    None: the local views are the batch). Anchor `i < N` is z1[i], anchor `N + i` is z2[i]."""
    check_views(z1, z2, ids)
    n = len(z1)
    a1 = z1 if all_z1 is None else all_z1
    a2 = z2 if all_z2 is None else all_z2
    k = len(a1)
    if len(a2) != k or not 0 <= offset <= k - n:
        raise ValueError(f"the global views ({len(a1)}, {len(a2)} rows) cannot hold {n} local rows at {offset}")
    cos = cosines(cat_rows([z1, z2]), cat_rows([a1, a2]))
    device = cos.device
    local = torch.arange(n, device=device) + offset
    self_col, pos_col = torch.cat([local, local + k]), torch.cat([local + k, local])
    rows = torch.arange(2 * n, device=device)
    negative = torch.ones_like(cos, dtype=torch.bool)
    negative[rows, self_col] = False
    negative[rows, pos_col] = False
    anchor_ids = key_ids = None
    if ids is not None:
        kid = ids if all_ids is None else all_ids
        anchor_ids, key_ids = torch.cat([ids, ids]), torch.cat([kid, kid])
        negative &= anchor_ids[:, None] != key_ids[None, :]
    return TwoViews(cos, self_col, pos_col, negative, anchor_ids, key_ids)


def masked_logsumexp(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Row-wise log-sum-exp of `x` `[R, C]` over the entries where `keep` is true (-inf for an empty row)."""
    return torch.logsumexp(x.masked_fill(~keep, float("-inf")), dim=1)
