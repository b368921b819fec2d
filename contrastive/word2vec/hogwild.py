"""Word2vec-style training on CPU: one compiled pass over the pairs that draws each pair's negatives, computes
its logistic losses and applies its SGD update at once (no autograd, no gradient tensors), the pairs split
across threads that share the tables without locks (Hogwild, as word2vec and gensim do). Compiled with numba
(the `text` extra).

Per pair, the loss is the objective's own as if the batch held that one pair: NCE is TensorFlow's `nce_loss`
(its sampler's distribution, unique draws with expected counts from the number of tries, log-Q correction,
biases, accidental hits kept); negative sampling is word2vec's (k draws from unigram^0.75, no correction).
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

from contrastive.samplers.alias import alias_table
from contrastive.samplers.candidate import check_in_range

try:
    import numba
except ImportError:  # the text extra installs it; hogwild_step says so when it is missing
    numba = None

FASTMATH = {"reassoc", "contract", "nsz", "arcp"}  # no 'nnan'/'ninf': divergence must still show as inf/nan


def _jit(**kw):
    return (lambda f: f) if numba is None else numba.njit(fastmath=FASTMATH, **kw)


@_jit(inline="always")
def _dot(a, b, d):
    z = np.float32(0.0)
    for t in range(d):
        z += a[t] * b[t]
    return z


@_jit(inline="always")
def _axpy(g, x, y, d):
    for t in range(d):  # y += g * x; a helper so the loop vectorises
        y[t] += g * x[t]


@_jit(inline="always")
def _draw(accept, alias):
    i = np.random.randint(0, accept.shape[0])
    return i if np.random.random() < accept[i] else alias[i]


@_jit(parallel=True)
def _kernel(E, W, b, centre, context, accept, alias, probs, k, unique, correct, lr, seed, chunks, loss, drawn,
            tries_out):
    n, d = centre.shape[0], E.shape[1]
    size = (n + chunks - 1) // chunks
    for c in numba.prange(chunks):
        np.random.seed(seed + c)  # this thread's stream
        neg = np.empty(k, np.int64)
        grad_h = np.empty(d, np.float32)
        for i in range(c * size, min(n, (c + 1) * size)):
            tries, got = 0, 0
            while got < k:  # TF's unique sampling: the first k distinct draws, counting the tries
                s = _draw(accept, alias)
                tries += 1
                seen = False
                if unique:
                    for q in range(got):
                        seen = seen or neg[q] == s
                if not seen:
                    neg[got] = s
                    got += 1
            if drawn.shape[0] > 0:  # recorded for tests
                drawn[i, :] = neg
                tries_out[i] = tries
            h = E[centre[i]]
            grad_h[:] = 0
            total = 0.0
            for m in range(k + 1):
                j = context[i] if m == 0 else neg[m - 1]
                label = 1.0 if m == 0 else 0.0
                w = W[j]
                z = _dot(h, w, d)
                if correct:  # minus the log expected count (TF's ExpectedCountHelper), plus the bias
                    p = probs[j]
                    q = p * k if tries == k else -math.expm1(tries * math.log1p(-p))
                    z += b[j] - math.log(q)
                total += max(z, 0.0) - z * label + math.log1p(math.exp(-abs(z)))
                g = np.float32(lr * (label - 1.0 / (1.0 + math.exp(-z))))  # -lr * d loss / d z
                _axpy(g, w, grad_h, d)
                _axpy(g, h, w, d)
                if correct:
                    b[j] += g
            _axpy(np.float32(1.0), grad_h, h, d)
            loss[i] = total


_PLANS: weakref.WeakKeyDictionary[nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()


def plan(objective: nn.Module) -> dict[str, Any]:
    """The kernel's arrays from the objective's `pair_plan()` (its only contract with the losses), computed once
    per objective: the alias table of the negatives' distribution, the normalised probabilities for expected
    counts, the biases (a view the kernel updates in place)."""
    cached = _PLANS.get(objective)
    if cached is not None:
        return cached
    hint = ("model.optimizer=hogwild supports objective=neg_sampling and objective=nce (num_true 1, accidental hits "
            "kept, a sampler with a fixed distribution: log_uniform, uniform or unigram); use model.optimizer=sgd or "
            "adam")
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
           "probs": (pp.weights / pp.weights.sum()).astype(np.float32) if pp.correct else np.zeros(1, np.float32),
           "bias": pp.bias.numpy() if pp.bias is not None else np.zeros(1, np.float32)}
    _PLANS[objective] = out
    return out


def supports(objective: nn.Module) -> bool:
    """Whether `hogwild_step` can train `objective`."""
    try:
        plan(objective)
    except ValueError:
        return False
    return True


def compile_kernel() -> None:
    """Compile the kernel now (a few seconds, once per process) on a tiny problem of the real types."""
    from contrastive.losses import NegativeSamplingLoss
    one = torch.zeros(1, dtype=torch.long)
    # a fixed seed: warming up must not move torch's generator (a resumed run would then draw differently)
    hogwild_step(torch.zeros(2, 2), NegativeSamplingLoss(2, 2, 1), one, one[:, None], 0.0, seed=0)


@torch.no_grad()
def hogwild_step(embedding: torch.Tensor, objective: nn.Module, centre: torch.Tensor, context: torch.Tensor,
                 lr: float, record: bool = False, threads: int | None = None, seed: int | None = None) -> Any:
    """Draw negatives for, score and update every `(centre [B], context [B, 1])` pair in place; returns the
    batch's mean loss (with `record`, also the negatives `[B, k]` and the draws each took `[B]`). Negatives
    are seeded by `seed`, else from torch's global generator; with several threads (default: numba's count,
    or 1 under deterministic algorithms) the updates interleave, so runs differ slightly, as gensim's with
    several workers; one thread repeats exactly."""
    if numba is None:
        raise ImportError("model.optimizer=hogwild needs numba: pip install 'contrastive[text]' (or pip install "
                          "numba), or use model.optimizer=sgd|adam")
    if embedding.device.type != "cpu" or embedding.dtype != torch.float32 or not embedding.is_contiguous():
        raise ValueError("model.optimizer=hogwild runs on CPU with float32 tables; use model.optimizer=sgd on GPUs")
    p = plan(objective)
    # the compiled loop indexes the tables unchecked: ids out of range must stop here, not corrupt memory
    check_in_range(centre.reshape(-1), embedding.shape[0], "centre id")
    check_in_range(context.reshape(-1), p["weight"].shape[0], "context id")
    if centre.numel() != context.numel():
        raise ValueError(f"need one context per centre, got {centre.numel()} centres and {context.numel()} contexts")
    loss = np.empty(centre.numel(), np.float32)
    seed = int(torch.randint(0, 2**31 - 1024, ())) if seed is None else seed
    threads = threads or (1 if torch.are_deterministic_algorithms_enabled() else numba.get_num_threads())
    k, n = p["num_sampled"], centre.numel() if record else 0
    drawn, tries = np.empty((n, k), np.int64), np.empty(n, np.int64)
    ids = [np.ascontiguousarray(t.reshape(-1).numpy(), dtype=np.int64) for t in (centre, context)]
    _kernel(embedding.numpy(), p["weight"].numpy(), p["bias"], ids[0], ids[1], p["accept"],
            p["alias"], p["probs"], k, p["unique"], p["correct"], np.float32(lr), seed,
            threads, loss, drawn, tries)
    mean = torch.from_numpy(loss).mean()
    return (mean, torch.from_numpy(drawn), torch.from_numpy(tries)) if record else mean
