"""The linear probe against scikit-learn's multinomial logistic regression (the textbook solution)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from contrastive.eval.linear import fit_linear_probe, linear_probe_accuracy


def _blobs(n: int, d: int, classes: int, seed: int, spread: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * spread
    y = torch.arange(n) % classes
    return centres[y] + torch.randn(n, d, generator=g) * 3 + 5, y  # offset and scale: standardisation matters


def test_probe_matches_sklearn_logistic_regression():
    x, y = _blobs(600, 12, 4, seed=0)
    wd = 1e-3
    w, b, mean, std = fit_linear_probe(x, y, weight_decay=wd)
    z = ((x - mean) / std).numpy()
    # ours: mean CE + wd |W|^2;  sklearn: C * sum CE + |W|^2 / 2  ->  C = 1 / (2 wd N)
    ref = LogisticRegression(C=1 / (2 * wd * len(y)), tol=1e-10, max_iter=10_000).fit(z, y.numpy())
    ours = (torch.from_numpy(z) @ w + b).numpy()
    theirs = ref.decision_function(z)
    # softmax is unchanged by a constant per row: compare centred logits
    centred = (ours - ours.mean(1, keepdims=True)) - (theirs - theirs.mean(1, keepdims=True))
    assert np.abs(centred).max() < 1e-3
    assert (ours.argmax(1) == ref.predict(z)).all()


def test_probe_accuracy_on_held_out_data_and_bad_input():
    x, y = _blobs(800, 8, 3, seed=1, spread=4.0)
    assert linear_probe_accuracy(x[:600], y[:600], x[600:], y[600:]) > 0.95
    noise = torch.randn(800, 8, generator=torch.Generator().manual_seed(2))
    assert linear_probe_accuracy(noise[:600], y[:600], noise[600:], y[600:]) < 0.5  # chance is 1/3
    with pytest.raises(ValueError, match=r"expected features \[N, D\] and labels \[N\]"):
        fit_linear_probe(x, y[:5])
    with pytest.raises(ValueError, match="needs labelled training features"):
        fit_linear_probe(x, torch.full((800,), -1))


def test_test_features_are_standardised_with_the_training_statistics():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = _blobs(800, 8, 3, seed=3, spread=4.0)
    shifted = x[600:] + 6.0  # a shift the training features never had: scaled with their statistics, it shows
    wd = 1e-3
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (2 * wd * 600), tol=1e-10, max_iter=10_000))
    ref.fit(x[:600].numpy(), y[:600].numpy())
    theirs = float((ref.predict(shifted.numpy()) == y[600:].numpy()).mean())
    ours = linear_probe_accuracy(x[:600], y[:600], shifted, y[600:], weight_decay=wd)
    assert abs(ours - theirs) <= 0.01 and theirs < 0.9  # standardised with its own statistics it would be > 0.95
