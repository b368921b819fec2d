"""Word2vec-style training on CPU: one compiled pass over the pairs (given, or made from a token stream as they
train) that draws each pair's negatives, computes its logistic losses and applies its SGD update at once (no
autograd, no gradient tensors), the pairs split across threads that share the tables without locks (Hogwild, as
word2vec and gensim do). Compiled with numba (the `text` extra; the loops are in `kernel.py`).

Per pair, the loss is the objective's own as if the batch held that one pair: NCE is TensorFlow's `nce_loss`
(its sampler's distribution, unique draws with expected counts from the number of tries, log-Q correction,
biases, accidental hits kept); negative sampling is word2vec's (k draws from unigram^0.75, no correction).
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive.samplers.alias import alias_table
from contrastive.samplers.candidate import check_in_range
from contrastive.word2vec.kernel import (
    LINEAR_SCAN,
    PAIR_BLOCK,
    TABLES,
    numba,
    pair_kernel,
    stream_kernel,
)

__all__ = ["PAIR_BLOCK", "compile_kernel", "hogwild_step", "hogwild_stream", "numba", "plan", "supports"]

_PLANS: weakref.WeakKeyDictionary[nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()


def plan(objective: nn.Module) -> dict[str, Any]:
    """The kernel's arrays from the objective's `pair_plan()` (its only contract with the losses), computed once
    per objective: the alias table of the negatives' distribution, the normalised probabilities for expected
    counts, the biases (a view the kernel updates in place)."""
    cached = _PLANS.get(objective)
    if cached is not None:
        return cached
    hint = ("step=hogwild and step=per_pair support objective=neg_sampling and objective=nce (num_true 1, accidental "
            "hits kept, a sampler with a fixed distribution: log_uniform, uniform or unigram); use step=sgd or adam")
    make = getattr(objective, "pair_plan", None)
    if make is None:
        raise ValueError(f"{hint}; {type(objective).__name__} has no per-pair plan")
    try:
        pp = make()
    except ValueError as e:
        raise ValueError(f"{hint}; {type(objective).__name__}: {e}") from None
    accept, alias = alias_table(pp.weights)
    out = {"weight": pp.weight, "num_sampled": pp.num_sampled, "accept": accept.astype(np.float32), "alias": alias,
           "unique": pp.unique, "correct": pp.correct,
           **_log_counts(pp.weights if pp.correct else np.ones(1)), "stamps": np.empty((0, 0), np.int64), "tag": 0,
           # a view the kernel updates in place (CPU tables only; per_pair reads the biases from the loss itself)
           "bias": pp.bias.numpy() if pp.bias is not None and pp.bias.device.type == "cpu" else np.zeros(1, np.float32)}
    _PLANS[objective] = out
    return out


def _log_counts(weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per class: log p, log(1 - p) and log(-log(1 - p)), float64 (TF's expected counts read these)."""
    p = weights / weights.sum()
    with np.errstate(divide="ignore"):  # a class of probability 0 gets -inf, as TF's log(0)
        l1p = np.log1p(-p)
        return {"logp": np.log(p), "l1p": l1p, "lnl": np.log(-l1p)}


def supports(objective: nn.Module) -> bool:
    """Whether `hogwild_step` can train `objective`."""
    try:
        plan(objective)
    except ValueError:
        return False
    return True


def compile_kernel() -> None:
    """Compile (or load from numba's cache) the stream kernel now, on a tiny problem of the real types."""
    from contrastive.losses import NegativeSamplingLoss
    # a fixed seed: warming up must not move torch's generator (a resumed run would then draw differently)
    two = torch.zeros(2, dtype=torch.long)
    hogwild_stream(torch.zeros(2, 2), NegativeSamplingLoss(2, 2, 1), two, two, two[:1], 2, 1, 0.0, seed=0)


def _prepared(embedding: torch.Tensor, objective: nn.Module, threads: int | None) -> tuple[dict[str, Any], int]:
    """The objective's plan and the thread count, after the checks every kernel call needs."""
    if numba is None:
        raise ImportError("step=hogwild needs numba: pip install 'contrastive-kit[text]' (or pip install "
                          "numba), or use step=per_pair|sgd|adam")
    if embedding.device.type != "cpu" or embedding.dtype != torch.float32 or not embedding.is_contiguous():
        raise ValueError("step=hogwild runs on CPU with float32 tables; use step=per_pair on GPUs")
    p = plan(objective)
    # torch's thread count is the process's (contrastive.runtime.threads sets it); numba's pool may be larger
    threads = threads or (1 if torch.are_deterministic_algorithms_enabled()
                          else min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if p["unique"] and p["num_sampled"] > LINEAR_SCAN and p["stamps"].shape[0] < threads:
        p["stamps"] = np.full((threads, p["weight"].shape[0]), -1, np.int64)
    return p, threads


def _ids(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.reshape(-1).numpy(), dtype=np.int64)


@torch.no_grad()
def hogwild_step(embedding: torch.Tensor, objective: nn.Module, centre: torch.Tensor, context: torch.Tensor,
                 lr: float, record: bool = False, threads: int | None = None, seed: int | None = None,
                 lr_end: float | None = None) -> Any:
    """Draw negatives for, score and update every `(centre [B], context [B, 1])` pair in place, the rate going
    linearly from `lr` to `lr_end` (default: `lr`) across the pairs; returns the batch's mean loss (with
    `record`, also the negatives `[B, k]` and the draws each took `[B]`). Negatives
    are seeded by `seed`, else from torch's global generator; with several threads (default: torch's count,
    or 1 under deterministic algorithms) the updates interleave, so runs differ slightly, as gensim's with
    several workers; one thread repeats exactly."""
    p, threads = _prepared(embedding, objective, threads)
    # the compiled loop indexes the tables unchecked: ids out of range must stop here, not corrupt memory
    check_in_range(centre.reshape(-1), embedding.shape[0], "centre id")
    check_in_range(context.reshape(-1), p["weight"].shape[0], "context id")
    if centre.numel() != context.numel():
        raise ValueError(f"need one context per centre, got {centre.numel()} centres and {context.numel()} contexts")
    loss = np.empty(centre.numel(), np.float32)
    seed = int(torch.randint(0, 2**31 - 1024, ())) if seed is None else seed
    k, n = p["num_sampled"], centre.numel() if record else 0
    drawn, tries = np.empty((n, k), np.int64), np.empty(n, np.int64)
    pair_kernel(embedding.numpy(), p["weight"].numpy(), p["bias"], _ids(centre), _ids(context), p["accept"],
                p["alias"], k, p["unique"], p["correct"], lr, lr if lr_end is None else lr_end, seed, threads, loss,
                drawn, tries, p["logp"], p["l1p"], p["lnl"], p["stamps"], p["tag"], *TABLES)
    p["tag"] += len(loss)  # the stamps of this call's pairs never match a later pair's
    mean = torch.from_numpy(loss).mean()
    return (mean, torch.from_numpy(drawn), torch.from_numpy(tries)) if record else mean


@torch.no_grad()
def hogwild_stream(embedding: torch.Tensor, objective: nn.Module, ids: torch.Tensor, sent: torch.Tensor,
                   starts: torch.Tensor, block: int, window: int, lr: float, threads: int | None = None,
                   seed: int | None = None, lr_end: float | None = None, record: int = 0) -> Any:
    """Train, in place, the skip-gram pairs of the tokens `ids [T]` (word ids) in sentences `sent [T]` whose
    centres lie in the blocks `starts[q] <= i < starts[q] + block`, block after block in the given order: each
    centre draws its window 1..window, as `skipgram_pairs` does, and its pairs are trained as they are made
    (`hogwild_step`'s update, draws and threads; the rate goes from `lr` to `lr_end` across the blocks); returns
    the mean loss of the pairs (0 when there are none); with `record=R` (one thread), also the first R pairs."""
    p, threads = _prepared(embedding, objective, threads)
    starts = _ids(starts)
    if ids.numel() != sent.numel() or block < 1 or window < 1 or (len(starts) and not (
            0 <= starts.min() and starts.max() < ids.numel())):
        raise ValueError(f"blocks of {block} centres at {len(starts)} starts (window {window}) do not fit "
                         f"{ids.numel()} token ids and {sent.numel()} sentence ids (need one sentence id per token, "
                         "starts in [0, T), block and window >= 1)")
    check_in_range(ids, min(embedding.shape[0], p["weight"].shape[0]), "token id")
    seed = int(torch.randint(0, 2**31 - 1024, ())) if seed is None else seed
    threads = 1 if record else threads
    loss, count, made = np.zeros(threads, np.float64), np.zeros(threads, np.int64), np.zeros((record, 2), np.int64)
    stream_kernel(embedding.numpy(), p["weight"].numpy(), p["bias"], _ids(ids), _ids(sent), starts, block, window,
                  p["accept"], p["alias"], p["num_sampled"], p["unique"], p["correct"], lr,
                  lr if lr_end is None else lr_end, seed, threads, loss, count, made, p["logp"], p["l1p"], p["lnl"],
                  p["stamps"], p["tag"], *TABLES)
    p["tag"] += ids.numel() * (2 * window + 1)  # the stamps of this call's pairs never match a later pair's
    mean = torch.tensor(loss.sum() / max(1, count.sum()), dtype=torch.float32)
    return (mean, torch.from_numpy(made[:min(record, int(count.sum()))])) if record else mean
