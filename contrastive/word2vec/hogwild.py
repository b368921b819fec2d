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
# sigmoid(z) and log(1 + exp(-|z|)) are read from tables on |z| < Z_MAX with linear interpolation, as word2vec
# reads its exp table (error < 5e-7; tests/test_hogwild.py measures it); beyond Z_MAX, and for nan, computed exactly
Z_MAX, BINS = 12.0, 4096
Z_SCALE = BINS / (2 * Z_MAX)
# h(x) = log(-expm1(x) / -x) tabulated on [-H_MAX, 0] turns TF's expected count into a table read
H_MAX = 32.0
H_SCALE = BINS / H_MAX
LINEAR_SCAN = 8  # up to this many negatives, distinctness is checked against the earlier draws
PAIR_BLOCK = 256  # pairs to shuffle as a unit for this step (~60 neighbouring tokens: their rows stay in cache)


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
def _next(state):
    """splitmix64: the next state and a uniform float in [0, 1) from its 53 top bits."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return state, np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_jit(inline="always")
def _draw(u, accept, alias):
    u = u * accept.shape[0]  # one uniform: its integer part picks the bin, the rest accepts
    i = int(u)
    return i if u - i < accept[i] else alias[i]


@_jit(inline="always")
def _lerp(table, u):
    i = int(u)
    return table[i] + (u - i) * (table[i + 1] - table[i])


@_jit(inline="always")
def _sigmoid(z, sig):
    if -Z_MAX < z < Z_MAX:
        return _lerp(sig, (z + Z_MAX) * Z_SCALE)
    return 1.0 / (1.0 + math.exp(-z))  # saturated (exact here), or nan passed on


@_jit(inline="always")
def _softplus_neg_abs(z, spl):
    a = abs(z)  # log(1 + exp(-|z|))
    return _lerp(spl, a * Z_SCALE * 2.0) if a < Z_MAX else math.log1p(math.exp(-a))


@_jit(inline="always")
def _log_expected(j, k, tries, log_k, log_tries, logp, l1p, lnl, h):
    """log of TF's expected count of class j after `tries` draws for k distinct ones."""
    if tries == k:
        return log_k + logp[j]
    x = tries * l1p[j]  # log (1 - p)^tries; the count is 1 - exp(x) = -x * exp(h(x))
    return log_tries + lnl[j] + _lerp(h, (x + H_MAX) * H_SCALE) if x > -H_MAX else -math.exp(x)


@_jit(parallel=True)
def _kernel(E, W, b, centre, context, accept, alias, k, unique, correct, lr0, lr1, seed, chunks, loss, drawn,
            tries_out, logp, l1p, lnl, stamps, stamp0, sig, spl, h):
    n, d = centre.shape[0], E.shape[1]
    size = (n + chunks - 1) // chunks
    log_k = math.log(k)
    for c in numba.prange(chunks):
        state = np.uint64(seed) * np.uint64(0x2545F4914F6CDD1D) + np.uint64(c)  # this thread's stream
        neg = np.empty(k, np.int64)
        grad_h = np.empty(d, np.float32)
        for i in range(c * size, min(n, (c + 1) * size)):
            lr = np.float32(lr0 + (lr1 - lr0) * (i / n))  # the step's rate decays across its pairs
            tries, got = 0, 0
            tag = stamp0 + i
            while got < k:  # TF's unique sampling: the first k distinct draws, counting the tries
                state, u = _next(state)
                s = _draw(u, accept, alias)
                tries += 1
                seen = False
                if unique:
                    if k > LINEAR_SCAN:  # a stamp per class: O(1) per draw
                        seen = stamps[c, s] == tag
                        stamps[c, s] = tag
                    else:
                        for q in range(got):
                            seen = seen or neg[q] == s
                if not seen:
                    neg[got] = s
                    got += 1
            if drawn.shape[0] > 0:  # recorded for tests
                drawn[i, :] = neg
                tries_out[i] = tries
            log_tries = math.log(tries)
            h_row = E[centre[i]]
            grad_h[:] = 0
            total = 0.0
            for m in range(k + 1):
                j = context[i] if m == 0 else neg[m - 1]
                label = 1.0 if m == 0 else 0.0
                w = W[j]
                z = _dot(h_row, w, d)
                if correct:  # minus the log expected count (TF's ExpectedCountHelper), plus the bias
                    z += b[j] - _log_expected(j, k, tries, log_k, log_tries, logp, l1p, lnl, h)
                total += max(z, 0.0) - z * label + _softplus_neg_abs(z, spl)
                g = lr * np.float32(label - _sigmoid(z, sig))  # -lr * d loss / d z
                for t in range(d):
                    grad_h[t] += g * w[t]
                    w[t] += g * h_row[t]
                if correct:
                    b[j] += g
            _axpy(np.float32(1.0), grad_h, h_row, d)
            loss[i] = total


def make_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(sigmoid, log(1 + exp(-|z|)), h)` on the kernel's grids, float32, each padded by one entry."""
    z = np.linspace(-Z_MAX, Z_MAX, BINS + 1)
    a = np.linspace(0.0, Z_MAX, BINS + 1)
    x = np.linspace(-H_MAX, 0.0, BINS + 1)[:-1]
    h = np.append(np.log(-np.expm1(x) / -x), [0.0, 0.0])  # h(0) = 0, its limit
    return (np.append(1 / (1 + np.exp(-z)), 1.0).astype(np.float32),
            np.append(np.log1p(np.exp(-a)), 0.0).astype(np.float32), h.astype(np.float32))


TABLES = make_tables()


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
    """Compile the kernel now (a few seconds, once per process) on a tiny problem of the real types."""
    from contrastive.losses import NegativeSamplingLoss
    one = torch.zeros(1, dtype=torch.long)
    # a fixed seed: warming up must not move torch's generator (a resumed run would then draw differently)
    hogwild_step(torch.zeros(2, 2), NegativeSamplingLoss(2, 2, 1), one, one[:, None], 0.0, seed=0)


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
    if numba is None:
        raise ImportError("step=hogwild needs numba: pip install 'contrastive-kit[text]' (or pip install "
                          "numba), or use step=per_pair|sgd|adam")
    if embedding.device.type != "cpu" or embedding.dtype != torch.float32 or not embedding.is_contiguous():
        raise ValueError("step=hogwild runs on CPU with float32 tables; use step=per_pair on GPUs")
    p = plan(objective)
    # the compiled loop indexes the tables unchecked: ids out of range must stop here, not corrupt memory
    check_in_range(centre.reshape(-1), embedding.shape[0], "centre id")
    check_in_range(context.reshape(-1), p["weight"].shape[0], "context id")
    if centre.numel() != context.numel():
        raise ValueError(f"need one context per centre, got {centre.numel()} centres and {context.numel()} contexts")
    loss = np.empty(centre.numel(), np.float32)
    seed = int(torch.randint(0, 2**31 - 1024, ())) if seed is None else seed
    # torch's thread count is the process's (contrastive.runtime.threads sets it); numba's pool may be larger
    threads = threads or (1 if torch.are_deterministic_algorithms_enabled()
                          else min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    k, n = p["num_sampled"], centre.numel() if record else 0
    drawn, tries = np.empty((n, k), np.int64), np.empty(n, np.int64)
    ids = [np.ascontiguousarray(t.reshape(-1).numpy(), dtype=np.int64) for t in (centre, context)]
    stamps = p["stamps"]
    if p["unique"] and k > LINEAR_SCAN and stamps.shape[0] < threads:
        stamps = p["stamps"] = np.full((threads, p["weight"].shape[0]), -1, np.int64)
    _kernel(embedding.numpy(), p["weight"].numpy(), p["bias"], ids[0], ids[1], p["accept"], p["alias"], k,
            p["unique"], p["correct"], lr, lr if lr_end is None else lr_end, seed, threads, loss, drawn, tries,
            p["logp"], p["l1p"], p["lnl"], stamps, p["tag"], *TABLES)
    p["tag"] += len(loss)  # the stamps of this call's pairs never match a later pair's
    mean = torch.from_numpy(loss).mean()
    return (mean, torch.from_numpy(drawn), torch.from_numpy(tries)) if record else mean
