"""The contract between an output-layer loss and the compiled per-pair word2vec step."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class PairPlan(NamedTuple):
    """What the per-pair step reads from a loss: its output table `weight [V, d]` (updated in place), the
    number of negatives per pair, the negatives' distribution as non-negative `weights [V]`
    (float64, normalised by the step), whether each pair's draws are distinct (`unique`, counting tries as TF
    does), the output biases `[V]` (a view the step updates in place, or None) and whether a logit gets the bias
    minus the log expected count (`correct`: NCE) or neither (word2vec's negative sampling)."""

    weight: torch.Tensor
    num_sampled: int
    weights: np.ndarray
    unique: bool
    bias: torch.Tensor | None
    correct: bool
