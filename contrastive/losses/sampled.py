"""`nce_loss` and `sampled_softmax_loss` exactly as TensorFlow's `tf.compat.v1.nn` computes them.

Recipe (docs/tf-semantics.md, section 1): look up the true and sampled rows of the weights and biases;
true logits `[B, T]` and sampled logits `[B, S]` (one set of samples shared by the batch); optionally add
-FLT_MAX where a sampled id equals one of the row's labels (last occurrence only); subtract log expected
counts; targets are 1/T on the true columns and 0 elsewhere.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from contrastive.checks import value_check_due
from contrastive.samplers.candidate import check_in_range, log_uniform_candidate_sampler

FLT_MAX = 3.4028234663852886e38
Params = torch.Tensor | Sequence[torch.Tensor]


def compute_accidental_hits(true_classes: torch.Tensor, sampled_candidates: torch.Tensor,
                            num_true: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where a true class of row i equals a sampled id: `(indices [K] int32 rows, ids [K] int64 positions of
    the last occurrence in `sampled_candidates`, weights [K] float32 = -FLT_MAX)`, row-major over (i, j)."""
    if true_classes.dim() != 2 or true_classes.shape[1] != num_true:
        raise ValueError(f"true_classes must be a [batch, num_true={num_true}] matrix, got {tuple(true_classes.shape)}")
    s = sampled_candidates.reshape(-1).long()
    eq = true_classes.reshape(-1, 1).long() == s[None, :]  # [B*T, S]
    hit = eq.any(1)
    last = s.numel() - 1 - eq.flip(1).int().argmax(1)
    rows = torch.arange(true_classes.shape[0], device=s.device).repeat_interleave(num_true)
    return rows[hit].int(), last[hit], torch.full((int(hit.sum()),), -FLT_MAX, device=s.device)


def _shard_sizes(params: Sequence[torch.Tensor]) -> list[int]:
    return [int(p.shape[0]) for p in params]


def num_rows(params: Params) -> int:
    """Rows of the logical matrix (sum over shards)."""
    return int(params.shape[0]) if torch.is_tensor(params) else sum(_shard_sizes(params))


def embedding_lookup(params: Params, ids: torch.Tensor, partition_strategy: str = "mod") -> torch.Tensor:
    """Rows `ids` of the logical matrix held in `params` (one tensor or a list of shards, "mod" or "div")."""
    if torch.is_tensor(params) or len(params) == 1:
        p = params if torch.is_tensor(params) else params[0]
        return p[ids]
    n_shards = len(params)
    if partition_strategy == "mod":
        shard, row = ids % n_shards, ids // n_shards
    elif partition_strategy == "div":
        n = sum(_shard_sizes(params))
        q, r = divmod(n, n_shards)
        if q == 0:
            raise ValueError(f"'div' needs at least as many rows ({n}) as shards ({n_shards})")
        shard = torch.maximum(ids // (q + 1), (ids - r) // q)
        row = torch.where(shard < r, ids % (q + 1), (ids - r) % q)
    else:
        raise ValueError(f"unknown partition_strategy {partition_strategy!r}; use 'mod' or 'div'")
    first = params[0]
    out = first.new_zeros((ids.shape[0], *first.shape[1:]))
    for p, part in enumerate(params):
        sel = shard == p
        out = out.index_put((sel.nonzero().squeeze(1),), part[row[sel]])
    return out


def _check_inputs(labels: torch.Tensor, inputs: torch.Tensor, num_true: int, n_classes: int) -> torch.Tensor:
    if inputs.dim() != 2:
        raise ValueError(f"inputs must be [batch, dim], got {tuple(inputs.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.dim() == 1 and num_true == 1:
        labels = labels[:, None]
    if labels.dim() != 2 or labels.shape != (inputs.shape[0], num_true):
        raise ValueError(f"labels must be [batch={inputs.shape[0]}, num_true={num_true}], got {tuple(labels.shape)}")
    labels = labels.long()
    check_in_range(labels, n_classes, "label")
    return labels


def sampled_logits(true_w: torch.Tensor, true_b: torch.Tensor, sampled_w: torch.Tensor, sampled_b: torch.Tensor,
                   inputs: torch.Tensor, labels: torch.Tensor, sampled: torch.Tensor, true_expected: torch.Tensor,
                   sampled_expected: torch.Tensor, remove_accidental_hits: bool,
                   subtract_log_q: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `[B, T+S]` and targets from looked-up rows: `true_w [B*T, D]`, `true_b [B*T]`, `sampled_w
    [S, D]`, `sampled_b [S]`, `inputs [B, D]`, `labels [B, T]`, `sampled [S]`, counts `[B, T]` and `[S]`."""
    b, t = labels.shape
    s = sampled.shape[0]
    dt = inputs.dtype
    if true_expected.shape != (b, t):
        raise ValueError(f"true_expected_count must be [{b}, {t}], got {tuple(true_expected.shape)} "
                         "(TensorFlow would broadcast it silently)")
    if sampled_expected.shape != (s,):
        raise ValueError(f"sampled_expected_count must be [{s}], got {tuple(sampled_expected.shape)}")
    true_w, true_b, sampled_w, sampled_b = (v.to(dt) for v in (true_w, true_b, sampled_w, sampled_b))
    true_logits = (inputs[:, None, :] * true_w.view(b, t, -1)).sum(-1) + true_b.view(b, t)  # [B, T]
    samp_logits = inputs @ sampled_w.T + sampled_b  # [B, S]
    if remove_accidental_hits:
        rows, cols, _ = compute_accidental_hits(labels, sampled, t)
        # float32/64: exactly TF's -FLT_MAX; half types cannot hold it, so use their own minimum (TF gives NaN)
        big = FLT_MAX if dt in (torch.float32, torch.float64) else float(torch.finfo(dt).max)
        mask = torch.zeros_like(samp_logits)
        mask[rows.long(), cols] = -big
        samp_logits = samp_logits + mask
    if subtract_log_q:
        true_logits = true_logits - torch.log(true_expected.to(dt))
        samp_logits = samp_logits - torch.log(sampled_expected.to(dt))
    logits = torch.cat([true_logits, samp_logits], dim=1)
    targets = torch.cat([torch.full_like(true_logits, 1.0 / t), torch.zeros_like(samp_logits)], dim=1)
    return logits, targets


def resolve_sampled_values(labels: torch.Tensor, num_true: int, num_sampled: int, num_classes: int,
                           sampled_values: Sequence[torch.Tensor] | None, n_rows: int,
                           seed: int | torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """The given `(sampled, true_expected, sampled_expected)`, checked, or TF's default draw (log-uniform,
    unique, range `num_classes`)."""
    if sampled_values is None:
        return log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes, seed)
    if len(sampled_values) != 3:
        raise ValueError("sampled_values must be (sampled_candidates, true_expected_count, sampled_expected_count)")
    s, qt, qs = (torch.as_tensor(v, device=labels.device).detach() for v in sampled_values)
    s = s.reshape(-1).long()
    check_in_range(s, n_rows, "sampled id")
    for name, q, ids in (("true_expected_count", qt, labels), ("sampled_expected_count", qs, s)):
        if q.numel() and value_check_due(name, q) and not bool((q > 0).all()):
            at = int((q.reshape(-1) <= 0).nonzero()[0])
            cls = int(ids.reshape(-1)[at]) if ids.numel() == q.numel() else None
            raise ValueError(f"{name} holds {float(q.reshape(-1)[at])}" + (f" for class {cls}" if cls is not None
                             else "") + ": its log is subtracted from the logits (log 0 makes the loss NaN); "
                             "mask such classes (e.g. a padding id of unigram weight 0) before the loss")
    return s, qt, qs


def _logits_tf(weights: Params, biases: Params, labels: torch.Tensor, inputs: torch.Tensor, num_sampled: int,
               num_classes: int, num_true: int, sampled_values: Sequence[torch.Tensor] | None,
               remove_accidental_hits: bool, partition_strategy: str,
               seed: int | torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    if partition_strategy not in ("mod", "div"):
        raise ValueError(f"unknown partition_strategy {partition_strategy!r}; use 'mod' or 'div'")
    n_rows = num_rows(weights)
    if not torch.is_tensor(biases) and len(biases) > 1 and num_rows(biases) != n_rows:
        raise ValueError(f"bias shards hold {num_rows(biases)} rows but weight shards {n_rows}")
    w0 = weights if torch.is_tensor(weights) else weights[0]
    if w0.shape[-1] != inputs.shape[-1]:
        raise ValueError(f"weights have dim {w0.shape[-1]} but inputs have dim {inputs.shape[-1]}")
    labels = _check_inputs(labels, inputs, num_true, n_rows)
    s, qt, qs = resolve_sampled_values(labels, num_true, num_sampled, num_classes, sampled_values, n_rows, seed)
    if remove_accidental_hits and s.numel() != num_sampled:
        raise ValueError(f"num_sampled={num_sampled} but sampled_values hold {s.numel()} candidates")
    all_ids = torch.cat([labels.reshape(-1), s])
    all_w = embedding_lookup(weights, all_ids, partition_strategy)
    all_b = embedding_lookup(biases, all_ids, partition_strategy)
    k = labels.numel()
    return sampled_logits(all_w[:k], all_b[:k], all_w[k:], all_b[k:], inputs, labels, s, qt, qs,
                          remove_accidental_hits)


def log1p_small(e: torch.Tensor) -> torch.Tensor:
    """`log(1 + e)` to a few ulps, elementwise, without `torch.log1p` (unvectorised on CPU, ~8x slower):
    with `u = 1 + e` rounded, `log(u) * e / (u - 1)` cancels the rounding of `u` (Goldberg, 1991)."""
    u = 1 + e
    d = u - 1
    return torch.where(d == 0, e, torch.log(u) * (e / d))


class _SigmoidCrossEntropy(torch.autograd.Function):
    """Forward TF's formula; backward `sigmoid(x) - z` in one pass (autograd through the formula takes ~10)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, z)
        return x.clamp_min(0) - x * z + log1p_small(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, z = ctx.saved_tensors
        gx = g * (torch.sigmoid(x) - z) if ctx.needs_input_grad[0] else None
        return gx, (-g * x if ctx.needs_input_grad[1] else None)


def sigmoid_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """TF's `max(x, 0) - x z + log1p(exp(-|x|))`, elementwise (exactly 0 for a -FLT_MAX logit, target 0);
    its gradient is `sigmoid(x) - z`."""
    return _SigmoidCrossEntropy.apply(logits, targets.to(logits.dtype).expand_as(logits))


def nce_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example NCE loss `[B]`: sigmoid cross-entropy summed over the T+S columns."""
    return sigmoid_cross_entropy(logits, targets).sum(1)


def softmax_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example sampled-softmax loss `[B]`: cross-entropy against the 1/T targets."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1)


def log_unigram_probs(unigrams: Sequence[float], num_classes: int) -> torch.Tensor:
    """`[num_classes]` float32 log p(w) of word counts (zeros floored at 1e-12): the unigram model that output
    biases start from, so the true words' logits get a gradient from the first step."""
    if len(unigrams) != num_classes:
        raise ValueError(f"unigrams must hold num_classes={num_classes} counts, got {len(unigrams)}")
    u = torch.as_tensor(list(unigrams), dtype=torch.float64)
    if bool((u < 0).any()):
        raise ValueError(f"unigrams must be non-negative counts, got {float(u.min())}")
    u = u.clamp_min(1e-12)
    return (u / u.sum()).log().float()


def nce_loss(weights: Params, biases: Params, labels: torch.Tensor, inputs: torch.Tensor, num_sampled: int,
             num_classes: int, num_true: int = 1, sampled_values: Sequence[torch.Tensor] | None = None,
             remove_accidental_hits: bool = False, partition_strategy: str = "mod",
             seed: int | torch.Generator | None = None) -> torch.Tensor:
    """TF's `tf.compat.v1.nn.nce_loss`: per-example loss `[B]` for `inputs [B, D]`, `labels [B, T]`,
    `weights [C, D]` (or shards), `biases [C]` (or shards)."""
    logits, targets = _logits_tf(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                 sampled_values, remove_accidental_hits, partition_strategy, seed)
    return nce_from_logits(logits, targets)


def sampled_softmax_loss(weights: Params, biases: Params, labels: torch.Tensor, inputs: torch.Tensor,
                         num_sampled: int, num_classes: int, num_true: int = 1,
                         sampled_values: Sequence[torch.Tensor] | None = None, remove_accidental_hits: bool = True,
                         partition_strategy: str = "mod", seed: int | torch.Generator | None = None) -> torch.Tensor:
    """TF's `tf.compat.v1.nn.sampled_softmax_loss`: per-example loss `[B]` (same arguments as `nce_loss`)."""
    logits, targets = _logits_tf(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                 sampled_values, remove_accidental_hits, partition_strategy, seed)
    return softmax_from_logits(logits, targets)
