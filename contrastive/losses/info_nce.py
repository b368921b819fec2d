"""InfoNCE family as pure functions: `info_nce`, `nt_xent` (SimCLR) and `clip_loss` (symmetric).

Temperature convention everywhere: logits = cosine similarity / temperature (scale = 1 / temperature).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastive.checks import value_check_due
from contrastive.losses.tiled import tiled_logsumexp
from contrastive.sparse import Hybrid, cosine

_MODES = ("unpaired", "paired")
_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.dim() != 2 or b.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must both be [N, d] with the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}")


def _check_temperature(temperature: float | torch.Tensor) -> None:
    if torch.is_tensor(temperature) and not value_check_due("temperature", temperature):
        return
    t = float(temperature.detach().min()) if torch.is_tensor(temperature) else float(temperature)
    if not t > 0:
        raise ValueError(f"temperature must be > 0, got {t}")


def _check_ids(ids: torch.Tensor | None, n: int) -> None:
    if ids is not None and (ids.dim() != 1 or ids.shape[0] != n):
        raise ValueError(f"ids must be a [N] tensor with N={n}, got shape {tuple(ids.shape)}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def info_nce(query: torch.Tensor, positive_key: torch.Tensor, negative_keys: torch.Tensor | None = None,
             temperature: float | torch.Tensor = 0.1, reduction: str = "mean",
             negative_mode: str = "unpaired", ids: torch.Tensor | None = None,
             key_ids: torch.Tensor | None = None, positive_offset: int = 0,
             negative_log_q: torch.Tensor | None = None, tile_size: int | None = None) -> torch.Tensor:
    """InfoNCE of queries `[N, d]` against their positive keys `[N, d]` (rows are L2-normalised).

    Negatives: `None` uses the other positives of the batch (in-batch); `[M, d]` shared by all queries
    ("unpaired"); `[N, M, d]`, one set per query ("paired"). `ids` `[N]` masks in-batch negatives (or
    unpaired negatives with `key_ids` `[M]`) that share the query's id. With in-batch negatives,
    `positive_key` may hold more rows than `query` (keys gathered from other processes): query `i`'s
    positive is then row `positive_offset + i`. Returns a scalar, or `[N]` with `reduction="none"`.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if negative_mode not in _MODES:
        raise ValueError(f"negative_mode must be one of {_MODES}, got {negative_mode!r}")
    _check_temperature(temperature)
    if isinstance(query, Hybrid) or isinstance(positive_key, Hybrid):
        return _reduce(_hybrid_in_batch(query, positive_key, negative_keys, temperature, ids, key_ids,
                                        positive_offset, tile_size), reduction)
    n = query.shape[0]
    if negative_keys is None and query.dim() == 2 and positive_key.dim() == 2 and positive_key.shape[0] > n:
        _check_pair("query", query, "positive_key", positive_key[positive_offset:positive_offset + n])
    else:
        _check_pair("query", query, "positive_key", positive_key)
    _check_ids(ids, n)
    q = F.normalize(query, dim=1)
    k = F.normalize(positive_key, dim=1)
    if tile_size is not None:
        return _reduce(_info_nce_tiled(q, k, negative_keys, temperature, negative_mode, ids, key_ids,
                                       positive_offset, negative_log_q, tile_size), reduction)
    if negative_keys is None:
        return _reduce(_in_batch(q @ k.T / temperature, positive_offset, ids, key_ids), reduction)
    neg = F.normalize(negative_keys, dim=-1)
    if negative_mode == "unpaired":
        if neg.dim() != 2 or neg.shape[1] != q.shape[1]:
            raise ValueError(f"unpaired negative_keys must be [M, {q.shape[1]}], got {tuple(neg.shape)}")
        neg_logits = q @ neg.T  # [N, M]
    else:
        if neg.dim() != 3 or neg.shape[0] != n or neg.shape[2] != q.shape[1]:
            raise ValueError(f"paired negative_keys must be [{n}, M, {q.shape[1]}], got {tuple(neg.shape)}")
        neg_logits = torch.einsum("nd,nmd->nm", q, neg)  # [N, M]
    if neg.device != q.device:
        raise ValueError(f"negative_keys is on {neg.device} but query is on {q.device}")
    pos_logits = (q * k).sum(dim=1, keepdim=True)  # [N, 1]
    neg_logits = neg_logits / temperature
    if negative_log_q is not None:
        neg_logits = neg_logits - negative_log_q.to(neg_logits.dtype)
    if ids is not None and key_ids is not None and negative_mode == "unpaired":
        neg_logits = neg_logits.masked_fill(ids[:, None] == key_ids[None, :], float("-inf"))
    logits = torch.cat([pos_logits / temperature, neg_logits], dim=1)
    target = torch.zeros(n, dtype=torch.long, device=q.device)
    return _reduce(F.cross_entropy(logits, target, reduction="none"), reduction)


def _in_batch(logits: torch.Tensor, offset: int, ids: torch.Tensor | None,
              key_ids: torch.Tensor | None) -> torch.Tensor:
    """Per-query cross-entropy `[N]` of logits `[N, K]` whose positive is column `offset + i`; keys sharing the
    query's id (other than its positive) are masked."""
    n = logits.shape[0]
    target = torch.arange(n, device=logits.device) + offset
    if ids is not None:
        kid = ids if key_ids is None else key_ids
        same = ids[:, None] == kid[None, :]
        same[torch.arange(n, device=logits.device), target] = False
        logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, target, reduction="none")


def _hybrid_in_batch(query: Hybrid, keys: Hybrid, negative_keys: object, temperature: float | torch.Tensor,
                     ids: torch.Tensor | None, key_ids: torch.Tensor | None, offset: int,
                     tile_size: int | None) -> torch.Tensor:
    """Per-query InfoNCE `[N]` of hybrid (sparse lexical) rows against in-batch keys."""
    if negative_keys is not None or tile_size is not None:
        raise ValueError("embeddings with a sparse lexical block (encoder.lexical=true) take in-batch negatives "
                         "and hard negatives only, not negative_keys or tile_size; set encoder.lexical=false")
    if not (isinstance(query, Hybrid) and isinstance(keys, Hybrid)):
        raise TypeError("query and positive_key must both be hybrid (sparse lexical) embeddings or both tensors")
    n = len(query)
    if len(keys) < offset + n:
        raise ValueError(f"{len(keys)} keys cannot hold the positives of {n} queries from row {offset}")
    _check_ids(ids, n)
    return _in_batch(cosine(query, keys) / temperature, offset, ids, key_ids)


def _info_nce_tiled(q: torch.Tensor, k: torch.Tensor, negative_keys: torch.Tensor | None,
                    temperature: float | torch.Tensor, negative_mode: str, ids: torch.Tensor | None,
                    key_ids: torch.Tensor | None, offset: int, log_q: torch.Tensor | None,
                    tile: int) -> torch.Tensor:
    """Per-query InfoNCE `[N]` through `tiled_logsumexp` (in-batch or unpaired negatives)."""
    n = q.shape[0]
    none = torch.full((n,), -1, dtype=torch.long, device=q.device)
    if negative_keys is None:
        pos_col = torch.arange(n, device=q.device) + offset
        pos = (q * k[pos_col]).sum(1) / temperature
        kid = None if ids is None else (ids if key_ids is None else key_ids)
        return tiled_logsumexp(q, k, temperature, tile, none, pos_col, ids, kid) - pos
    if negative_mode != "unpaired":
        raise ValueError("tile_size works with in-batch or unpaired negatives, not negative_mode='paired'")
    neg = F.normalize(negative_keys, dim=-1)
    if neg.dim() != 2 or neg.shape[1] != q.shape[1]:
        raise ValueError(f"unpaired negative_keys must be [M, {q.shape[1]}], got {tuple(neg.shape)}")
    pos = (q * k).sum(1) / temperature
    lse = tiled_logsumexp(q, neg, temperature, tile, none, none, ids if key_ids is not None else None,
                          key_ids, log_q)
    return torch.logaddexp(pos, lse) - pos


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float | torch.Tensor = 0.5,
            ids: torch.Tensor | None = None, all_z1: torch.Tensor | None = None,
            all_z2: torch.Tensor | None = None, all_ids: torch.Tensor | None = None,
            offset: int = 0, negative_keys: torch.Tensor | None = None,
            negative_ids: torch.Tensor | None = None, negative_log_q: torch.Tensor | None = None,
            tile_size: int | None = None) -> torch.Tensor:
    """SimCLR's NT-Xent over the 2N views of N pairs `z1, z2: [N, d]`: every view is an anchor with its
    pair as positive and the other 2N-2 views as negatives; the mean over the 2N anchors (scalar).

    `ids` `[N]` masks negatives that share the anchor's id. `all_z1`, `all_z2` (`[K, d]`, K >= N) are the
    views of the whole global batch when running on several processes, local rows at `offset`; the loss is
    then the mean over the local anchors against every view of the global batch. `negative_keys` `[M, d]`
    (a queue or memory bank) are extra negatives for every anchor, with optional `negative_ids` `[M]` for
    masking and `negative_log_q` `[M]` subtracted from their logits. `tile_size` computes the same loss
    and gradients tile by tile, without the `[2N, 2K]` similarity matrix.
    """
    _check_pair("z1", z1, "z2", z2)
    _check_temperature(temperature)
    _check_ids(ids, z1.shape[0])
    n = z1.shape[0]
    a1 = z1 if all_z1 is None else all_z1
    a2 = z2 if all_z2 is None else all_z2
    k = a1.shape[0]
    anchors = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, d]
    if negative_keys is not None and (negative_keys.dim() != 2 or negative_keys.shape[1] != z1.shape[1]):
        raise ValueError(f"negative_keys must be [M, {z1.shape[1]}], got {tuple(negative_keys.shape)}")
    if all_z1 is None and negative_keys is None:
        keys = anchors  # one process, no extra negatives: the keys are the anchors
    else:
        extra = [] if negative_keys is None else [negative_keys]
        keys = F.normalize(torch.cat([a1, a2, *extra]), dim=1)  # [2K (+M), d]
    local = torch.arange(n, device=z1.device) + offset
    self_col = torch.cat([local, local + k])
    pos_col = torch.cat([local + k, local])
    rows = torch.arange(2 * n, device=z1.device)
    anchor_ids = key_ids = None
    if ids is not None:
        kid = ids if all_ids is None else all_ids
        nid = [] if negative_keys is None else [negative_ids if negative_ids is not None
                                                else torch.full((negative_keys.shape[0],), -1, device=ids.device)]
        anchor_ids, key_ids = torch.cat([ids, ids]), torch.cat([kid, kid, *nid])
    if tile_size is not None:
        bias = None
        if negative_log_q is not None:
            bias = torch.cat([torch.zeros(2 * k, device=z1.device, dtype=anchors.dtype), negative_log_q.to(anchors.dtype)])
        pos = (anchors * keys[pos_col]).sum(1) / temperature
        return (tiled_logsumexp(anchors, keys, temperature, tile_size, self_col, pos_col, anchor_ids, key_ids,
                                bias) - pos).mean()
    logits = anchors @ keys.T / temperature  # [2N, 2K (+M)]
    if negative_log_q is not None:
        logits = torch.cat([logits[:, :2 * k], logits[:, 2 * k:] - negative_log_q.to(logits.dtype)], dim=1)
    if anchor_ids is not None and key_ids is not None:
        mask = anchor_ids[:, None] == key_ids[None, :]
        mask[rows, pos_col] = False
        logits = logits.masked_fill(mask, float("-inf"))
    # an anchor is not its own negative; in place, as no backward formula needs the logits themselves
    logits.index_put_((rows, self_col), torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))
    return F.cross_entropy(logits, pos_col)


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: float | torch.Tensor,
              ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) of paired rows `a, b: [N, d]`, logits = logit_scale * cos; the mean of
    the a->b and b->a cross-entropies (scalar)."""
    _check_pair("a", a, "b", b)
    scale = torch.as_tensor(logit_scale, dtype=a.dtype, device=a.device)
    if value_check_due("logit_scale", scale) and not float(scale.detach().min()) > 0:
        raise ValueError(f"logit_scale must be > 0, got {float(scale.detach().min())}")
    t = 1.0 / scale
    return 0.5 * (info_nce(a, b, temperature=t, ids=ids) + info_nce(b, a, temperature=t, ids=ids))
