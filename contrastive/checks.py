"""Checks shared by every layer: whether a built object keeps its slot's contract (`keeps_contract`), and when a
check of tensor values (labels in range, positive counts and temperatures) may read them on the host.
On the CPU that is free and every call checks. On an accelerator it is a sync that stalls the device, so each
check site checks its first calls and then one call in `EVERY`; a value the checks miss there still fails loudly
(an index out of range is a device-side assert, a log of 0 a non-finite loss that the guard stops on)."""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch

FIRST, EVERY = 10, 100
_calls: Counter[str] = Counter()


def value_check_due(site: str, tensor: torch.Tensor) -> bool:
    """True when the check named `site` should read `tensor`'s values now."""
    if tensor.device.type == "cpu":
        return True
    n = _calls[site]
    _calls[site] += 1
    return n < FIRST or n % EVERY == 0


def keeps_contract(obj: Any, option: str, members: tuple[str, ...], how: str) -> Any:
    """`obj` if it has every attribute in `members`; else an error naming the option, what it got, what is
    missing and `how` to choose a valid one (a string where an object was wanted, say)."""
    missing = [m for m in members if not hasattr(obj, m)]
    if missing:
        got = repr(obj) if isinstance(obj, (str, int, float)) else f"a {type(obj).__name__}"
        raise ValueError(f"{option}={got} lacks {', '.join(missing)} (the option takes an object with "
                         f"{', '.join(members)}); {how}")
    return obj
