"""Weighted k-NN classification on frozen features (Wu et al., 2018, cosine + exp(sim / T) votes)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def embed(encoder: nn.Module, loader: DataLoader, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Features `[N, D]` (kept on `device`, where the k-NN runs) and labels `[N]` (CPU) of every `(x, y)` batch
    of `loader`, in eval mode."""
    was_training = encoder.training
    encoder.eval().to(device)
    feats, labels = [], []
    for x, y in loader:
        feats.append(encoder(x.to(device)).float())
        labels.append(y)
    encoder.train(was_training)
    if not feats:
        raise ValueError("no images to embed: the split is empty")
    return finite_features(torch.cat(feats)), torch.cat(labels)


def finite_features(out: torch.Tensor) -> torch.Tensor:
    """`out` `[N, D]`, or an error counting the rows that are not finite."""
    bad = int((~torch.isfinite(out)).any(1).sum())
    if bad:
        raise ValueError(f"{bad} of {out.shape[0]} feature vectors are not finite (NaN or inf): the encoder's "
                         "weights or BatchNorm statistics hold non-finite values; evaluate an earlier checkpoint")
    return out


@torch.no_grad()
def knn_correct(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Whether cosine k-NN with votes weighted by exp(similarity / temperature) gets each test row right
    `[N]` (bool, on the CPU), on the device of `train_f`, `chunk` test rows at a time (memory: chunk x train)."""
    if train_f.shape[0] == 0:
        raise ValueError("k-NN needs at least one labelled training feature")
    dev = train_f.device
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, train_f.shape[0])
    bank, bank_y = F.normalize(train_f.float(), dim=1), train_y.to(dev)
    right = []
    for i in range(0, test_f.shape[0], chunk):
        q = F.normalize(test_f[i:i + chunk].to(dev).float(), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)  # [n, k]
        votes = torch.zeros(q.shape[0], num_classes, device=dev).scatter_add_(1, bank_y[idx], (sim / temperature).exp())
        right.append((votes.argmax(1) == test_y[i:i + chunk].to(dev)).cpu())
    return torch.cat(right) if right else torch.zeros(0, dtype=torch.bool)


def knn_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                 k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Top-1 accuracy of `knn_correct`."""
    right = knn_correct(train_f, train_y, test_f, test_y, k, temperature, chunk)
    return int(right.sum()) / test_f.shape[0]


def low_label_correct(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                      per_class: int = 10, draws: int = 5, seed: int = 0, k: int = 20) -> torch.Tensor:
    """Each test row's k-NN top-1 `[N]` averaged over `draws` random labelled subsets of `per_class` training
    images per class."""
    rng = np.random.default_rng(seed)
    y = train_y.numpy()
    right = []
    for _ in range(draws):
        pick = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())),
                                          replace=False) for c in np.unique(y)])
        right.append(knn_correct(train_f[pick], train_y[pick], test_f, test_y, k=k).double())
    return torch.stack(right).mean(0)


def low_label_knn(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                  per_class: int = 10, draws: int = 5, seed: int = 0, k: int = 20) -> float:
    """Mean k-NN top-1 over `draws` random labelled subsets of `per_class` training images per class."""
    return float(low_label_correct(train_f, train_y, test_f, test_y, per_class, draws, seed, k).mean())
