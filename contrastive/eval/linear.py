"""Linear probe: multinomial logistic regression on frozen features, one fixed recipe trained to convergence."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_linear_probe(train_f: torch.Tensor, train_y: torch.Tensor, weight_decay: float = 1e-4,
                     max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights `[D, C]`, bias `[C]` and the standardisation `(mean, std)` `[D]` of a softmax classifier fitted to
    `train_f: [N, D]`, `train_y: [N]` by full-batch L-BFGS (strong Wolfe line search) on the mean cross-entropy
    plus `weight_decay * |W|^2`, on the features' device; deterministic."""
    if train_f.dim() != 2 or train_y.shape != (train_f.shape[0],):
        raise ValueError(f"expected features [N, D] and labels [N], got {tuple(train_f.shape)} and "
                         f"{tuple(train_y.shape)}")
    x = train_f.float()
    y = train_y.to(x.device).long()
    if y.numel() == 0 or int(y.min()) < 0:
        raise ValueError("a linear probe needs labelled training features (labels >= 0)")
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / std
    classes = int(y.max()) + 1
    w = torch.zeros(x.shape[1], classes, device=x.device, requires_grad=True)
    b = torch.zeros(classes, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-7,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach(), mean, std


@torch.no_grad()
def linear_probe_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor,
                          test_y: torch.Tensor, weight_decay: float = 1e-4, max_iter: int = 500) -> float:
    """Top-1 accuracy on `test_f`, `test_y` of the linear probe fitted on the training features."""
    w, b, mean, std = fit_linear_probe(train_f, train_y, weight_decay, max_iter)
    logits = ((test_f.to(w.device).float() - mean) / std) @ w + b
    return float((logits.argmax(1) == test_y.to(w.device)).float().mean())
