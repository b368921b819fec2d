"""The compiled loops of word2vec's per-pair SGD (numba, the `text` extra): one pair's draws, loss and update
(`_train_pair`, the one place the kernels compute them), applied to given pairs (`pair_kernel`) or to the pairs
of a token stream made as they train (`stream_kernel`). Threads share the tables without locks (Hogwild)."""
from __future__ import annotations

import math

import numpy as np

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


@_jit(inline="always")
def _train_pair(E, W, b, ci, cj, neg, k, unique, correct, lr, state, stamps, c, tag, accept, alias, log_k, logp,
                l1p, lnl, sig, spl, h, grad_h):
    """Draw k negatives into `neg` for the pair (centre ci, context cj), score it and apply its SGD update in
    place; returns (the generator's state, the pair's loss, the draws taken)."""
    d = E.shape[1]
    tries, got = 0, 0
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
    log_tries = math.log(tries)
    h_row = E[ci]
    grad_h[:] = 0
    total = 0.0
    for m in range(k + 1):
        j = cj if m == 0 else neg[m - 1]
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
    return state, total, tries


@_jit(parallel=True, cache=True)
def pair_kernel(E, W, b, centre, context, accept, alias, k, unique, correct, lr0, lr1, seed, chunks, loss, drawn,
                tries_out, logp, l1p, lnl, stamps, stamp0, sig, spl, h):
    """Every given (centre, context) pair, the pairs split into `chunks` contiguous parts, one per thread."""
    n = centre.shape[0]
    size = (n + chunks - 1) // chunks
    log_k = math.log(k)
    for c in numba.prange(chunks):
        state = np.uint64(seed) * np.uint64(0x2545F4914F6CDD1D) + np.uint64(c)  # this thread's stream
        neg = np.empty(k, np.int64)
        grad_h = np.empty(E.shape[1], np.float32)
        for i in range(c * size, min(n, (c + 1) * size)):
            lr = np.float32(lr0 + (lr1 - lr0) * (i / n))  # the step's rate decays across its pairs
            state, loss[i], tries = _train_pair(E, W, b, centre[i], context[i], neg, k, unique, correct, lr, state,
                                                stamps, c, stamp0 + i, accept, alias, log_k, logp, l1p, lnl, sig,
                                                spl, h, grad_h)
            if drawn.shape[0] > 0:  # recorded for tests
                drawn[i, :] = neg
                tries_out[i] = tries


@_jit(parallel=True, cache=True)
def stream_kernel(E, W, b, ids, sent, starts, block, window, accept, alias, k, unique, correct, lr0, lr1, seed,
                  chunks, loss, count, made, logp, l1p, lnl, stamps, stamp0, sig, spl, h):
    """Skip-gram pairs made from the token stream as they train (as word2vec.c and gensim do): the centres of each
    block `starts[q] <= i < starts[q] + block` of `ids`, blocks in the given order, each centre drawing its window
    1..`window` and pairing with every token of its sentence (`sent`) that close; a block's pairs are trained in a
    random order (a centre's pairs apart, as the block shuffle of given pairs leaves them); the blocks split
    into `chunks` contiguous parts, one per thread, the rate going from lr0 to lr1 across them. `loss[c]` and
    `count[c]`: each thread's summed pair losses and its number of pairs; with one chunk and rows in `made`, the
    pairs' (centre, context) ids are written there in order (for tests)."""
    n, m = ids.shape[0], starts.shape[0]
    size = (m + chunks - 1) // chunks
    log_k = math.log(k)
    span = 2 * window + 1
    for c in numba.prange(chunks):
        state = np.uint64(seed) * np.uint64(0x2545F4914F6CDD1D) + np.uint64(c)
        neg = np.empty(k, np.int64)
        grad_h = np.empty(E.shape[1], np.float32)
        at = np.empty((block * 2 * window, 2), np.int64)  # a block's pairs, as positions
        total, pairs = 0.0, 0
        for q in range(c * size, min(m, (c + 1) * size)):
            lr = np.float32(lr0 + (lr1 - lr0) * (q / m))
            got = 0
            for i in range(starts[q], min(n, starts[q] + block)):
                state, u = _next(state)
                r = 1 + int(u * window)  # word2vec's dynamic window
                for j in range(max(0, i - r), min(n, i + r + 1)):
                    if j != i and sent[j] == sent[i]:
                        at[got, 0], at[got, 1] = i, j
                        got += 1
            for p in range(got - 1, 0, -1):  # Fisher-Yates: a centre's pairs apart, as a shuffle of the block's
                state, u = _next(state)
                x = int(u * (p + 1))
                at[p, 0], at[x, 0], at[p, 1], at[x, 1] = at[x, 0], at[p, 0], at[x, 1], at[p, 1]
            for p in range(got):
                i, j = at[p, 0], at[p, 1]
                state, pair_loss, _ = _train_pair(E, W, b, ids[i], ids[j], neg, k, unique, correct, lr, state, stamps,
                                                  c, stamp0 + i * span + (j - i + window), accept, alias, log_k, logp,
                                                  l1p, lnl, sig, spl, h, grad_h)
                if made.shape[0] > pairs:
                    made[pairs, 0], made[pairs, 1] = ids[i], ids[j]
                total += pair_loss
                pairs += 1
        loss[c], count[c] = total, pairs


def make_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(sigmoid, log(1 + exp(-|z|)), h)` on the kernel's grids, float32, each padded by one entry."""
    z = np.linspace(-Z_MAX, Z_MAX, BINS + 1)
    a = np.linspace(0.0, Z_MAX, BINS + 1)
    x = np.linspace(-H_MAX, 0.0, BINS + 1)[:-1]
    h = np.append(np.log(-np.expm1(x) / -x), [0.0, 0.0])  # h(0) = 0, its limit
    return (np.append(1 / (1 + np.exp(-z)), 1.0).astype(np.float32),
            np.append(np.log1p(np.exp(-a)), 0.0).astype(np.float32), h.astype(np.float32))


TABLES = make_tables()
