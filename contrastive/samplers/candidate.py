"""TensorFlow's candidate samplers in PyTorch: same distributions, same expected-count rules, on any device.

Each returns `(sampled_candidates [S] int64, true_expected_count [B, T] float32, sampled_expected_count [S]
float32)`. `unique=True` draws by rejection, like TF: keep a draw only if new, stop at S distinct values,
and count every draw in `num_tries`; the expected count of an id with probability p is then
`1 - (1 - p) ** num_tries`, or `p * S` when no draw was rejected (see docs/tf-semantics.md, section 2).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from contrastive.checks import value_check_due

Draw = Callable[[int, torch.Generator | None], torch.Tensor]
Result = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def make_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A `torch.Generator` on `device` from an int seed; a given generator is used as is."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device=device).manual_seed(int(seed))


def check_in_range(ids: torch.Tensor, n: int, what: str) -> None:
    """Raise a ValueError naming the first of `ids` outside `[0, n)` (`what` names the values)."""
    if ids.numel() and value_check_due(what, ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise ValueError(f"{what} {bad} is out of range [0, {n})")


def check_true_classes(true_classes: torch.Tensor, num_true: int, range_max: int) -> torch.Tensor:
    """Validate `[B, num_true]` integer classes in `[0, range_max)`; returns them as int64."""
    if not torch.is_tensor(true_classes) or true_classes.dim() != 2:
        shape = tuple(true_classes.shape) if torch.is_tensor(true_classes) else type(true_classes).__name__
        raise ValueError(f"true_classes must be a [batch, num_true] matrix, got {shape}")
    if true_classes.dtype.is_floating_point or true_classes.dtype == torch.bool:
        raise ValueError(f"true_classes must hold integer class ids, got dtype {true_classes.dtype}")
    if true_classes.shape[1] != num_true:
        raise ValueError(f"true_classes has {true_classes.shape[1]} columns but num_true={num_true}")
    tc = true_classes.long()
    check_in_range(tc, range_max, "true class")
    return tc


def check_counts(num_sampled: int, range_max: int, unique: bool) -> None:
    """TF's attribute checks, with the values in the message."""
    if num_sampled < 1:
        raise ValueError(f"num_sampled must be >= 1, got {num_sampled}")
    if range_max < 1:
        raise ValueError(f"range_max must be >= 1, got {range_max}")
    if unique and num_sampled > range_max:
        raise ValueError(f"unique sampling of num_sampled={num_sampled} ids from range_max={range_max} "
                         f"classes is impossible; use num_sampled <= {range_max} or unique=False")


def expected_count(p: torch.Tensor, num_sampled: int, num_tries: int) -> torch.Tensor:
    """TF's ExpectedCountHelper in float32: `p * S` if `num_tries == S`, else `-expm1(num_tries * log1p(-p))`."""
    p = p.float()
    if num_tries == num_sampled:
        return p * num_sampled
    return -torch.expm1(num_tries * torch.log1p(-p))


def draw_candidates(draw: Draw, num_sampled: int, unique: bool, generator: torch.Generator | None,
                    device: torch.device) -> tuple[torch.Tensor, int]:
    """`num_sampled` ids from `draw(n, gen)` (n i.i.d. draws); with `unique`, the first `num_sampled`
    distinct values of the stream, in draw order. Returns `(ids [S] int64, num_tries)`. Vectorised: the
    stream is drawn in growing chunks, never one draw at a time."""
    if not unique:
        return draw(num_sampled, generator), num_sampled
    stream = torch.empty(0, dtype=torch.long, device=device)
    chunk = 2 * num_sampled + 16
    while True:
        stream = torch.cat([stream, draw(chunk, generator)])
        values, inverse = torch.unique(stream, return_inverse=True)
        if values.numel() >= num_sampled:
            pos = torch.arange(stream.numel(), device=device)
            first = torch.full((values.numel(),), stream.numel(), device=device, dtype=torch.long)
            first = first.scatter_reduce(0, inverse, pos, reduce="amin")
            order = first.sort().values[:num_sampled]
            return stream[order], int(order[-1]) + 1
        chunk *= 2


def sample_with_probs(true_classes: torch.Tensor, num_sampled: int, unique: bool, draw: Draw,
                      prob: Callable[[torch.Tensor], torch.Tensor], seed: int | torch.Generator | None,
                      nonzero: int | None = None) -> Result:
    """Shared body of the samplers: draw, then expected counts of the true and sampled ids."""
    device = true_classes.device
    if unique and nonzero is not None and nonzero < num_sampled:
        raise ValueError(f"unique sampling needs num_sampled={num_sampled} ids of non-zero probability but only "
                         f"{nonzero} have one (TensorFlow would loop, then abort); lower num_sampled")
    sampled, tries = draw_candidates(draw, num_sampled, unique, make_generator(seed, device), device)
    return (sampled, expected_count(prob(true_classes), num_sampled, tries),
            expected_count(prob(sampled), num_sampled, tries))


def log_uniform_probs(ids: torch.Tensor, range_max: int) -> torch.Tensor:
    """Zipf P(c) = log((c+2)/(c+1)) / log(R+1), computed in float64 and rounded to float32."""
    c = ids.double()
    return (torch.log((c + 2) / (c + 1)) / math.log1p(range_max)).float()


def log_uniform_candidate_sampler(true_classes: torch.Tensor, num_true: int, num_sampled: int, unique: bool,
                                  range_max: int, seed: int | torch.Generator | None = None) -> Result:
    """Log-uniform (Zipfian) sampling of ids in `[0, range_max)`; ids must be sorted by decreasing frequency."""
    check_counts(num_sampled, range_max, unique)
    tc = check_true_classes(true_classes, num_true, range_max)
    log_range = math.log1p(range_max)

    def draw(n: int, g: torch.Generator | None) -> torch.Tensor:
        u = torch.rand(n, generator=g, device=tc.device, dtype=torch.float64)
        return ((u * log_range).exp().floor().long() - 1) % range_max

    return sample_with_probs(tc, num_sampled, unique, draw, lambda v: log_uniform_probs(v, range_max), seed)


def uniform_candidate_sampler(true_classes: torch.Tensor, num_true: int, num_sampled: int, unique: bool,
                              range_max: int, seed: int | torch.Generator | None = None) -> Result:
    """Uniform sampling of ids in `[0, range_max)`, P = float32(1 / R)."""
    check_counts(num_sampled, range_max, unique)
    tc = check_true_classes(true_classes, num_true, range_max)
    p = torch.tensor(1.0 / range_max, dtype=torch.float32, device=tc.device)

    def draw(n: int, g: torch.Generator | None) -> torch.Tensor:
        return torch.randint(0, range_max, (n,), generator=g, device=tc.device)

    return sample_with_probs(tc, num_sampled, unique, draw, lambda v: p.expand(v.shape), seed)


def all_candidate_sampler(true_classes: torch.Tensor, num_true: int, num_sampled: int, unique: bool = True,
                          seed: int | torch.Generator | None = None) -> Result:
    """Every id `0..num_sampled-1`, each with expected count 1 (so log Q = 0); `unique` is ignored."""
    check_counts(num_sampled, num_sampled, False)
    tc = check_true_classes(true_classes, num_true, num_sampled)
    ones = torch.ones(num_sampled, dtype=torch.float32, device=tc.device)
    return torch.arange(num_sampled, device=tc.device), torch.ones(tc.shape, device=tc.device), ones
