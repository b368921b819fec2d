"""End-of-pretraining evaluation: k-NN tables, eval.json, embedding and loss plots."""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
from typing import Any

import torch
from torch import nn

from contrastive.eval.knn import embed, finite_features, knn_correct, low_label_correct
from contrastive.eval.linear import linear_probe_accuracy

RAW_PIXEL_LIMIT = 2 ** 28  # raw training values (1 GiB of float32); CIFAR-10's 50,000 x 3,072 fit
RAW_SAMPLE = 20_000  # training images whose raw pixels a decoded data set keeps for the baseline


def knn_metrics(features: dict[str, tuple[torch.Tensor, ...]], seed: int = 0,
                per_image: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """`{name: (train_f, train_y, test_f, test_y)}` -> `knn_top1/<name>`, `knn10_top1/<name>` and the linear probe's
    `linear_top1/<name>`; nothing, with a warning saying why, where k-NN accuracy cannot be measured (an empty
    split, a single class). `per_image` receives each k-NN metric's per-test-image top-1 `[N]` under its key."""
    out: dict[str, float] = {}
    for name, (trf, tr_y, tef, te_y) in features.items():
        if len(tef) == 0 or len(trf) == 0:
            warnings.warn(f"k-NN of {name} skipped: the {'test' if len(tef) == 0 else 'training'} split is empty")
            continue
        if len(torch.unique(torch.cat([tr_y, te_y]))) < 2:
            warnings.warn(f"k-NN of {name} skipped: the labels hold a single class, so any classifier scores 1.0")
            continue
        right = {f"knn_top1/{name}": knn_correct(trf, tr_y, tef, te_y).double(),
                 f"knn10_top1/{name}": low_label_correct(trf, tr_y, tef, te_y, seed=seed)}
        out.update({k: float(v.mean()) for k, v in right.items()})
        if per_image is not None:
            per_image.update(right)
        out[f"linear_top1/{name}"] = linear_probe_accuracy(trf, tr_y, tef, te_y)
    return out


@torch.no_grad()
def embed_with_pixels(encoders: dict[str, nn.Module], loader: Any, device: str | torch.device,
                      most: int | None, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """`{name: (features [N, D], labels [N])}` for each encoder and `raw_pixels` (the loader's images
    flattened: at most `most` of them, a seeded sample, on the CPU), from one pass over `loader`."""
    n = len(loader.dataset)
    keep = None
    was = {name: enc.training for name, enc in encoders.items()}
    for enc in encoders.values():
        enc.eval().to(device)
    parts: dict[str, list] = {name: [] for name in [*encoders, "raw_pixels"]}
    labels, pixel_labels, start = [], [], 0
    for x, y in loader:
        if keep is None:  # the sample's size: at most `most` images and RAW_PIXEL_LIMIT values
            cap = min(n if most is None else most, RAW_PIXEL_LIMIT // max(1, x[0].numel()))
            keep = torch.zeros(n, dtype=torch.bool)
            keep[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap]] = True
        for name, enc in encoders.items():
            parts[name].append(enc(x.to(device)).float())
        mine = keep[start:start + len(y)]
        parts["raw_pixels"].append(x[mine].flatten(1).float())
        labels.append(y)
        pixel_labels.append(y[mine])
        start += len(y)
    for name, enc in encoders.items():
        enc.train(was[name])
    if not labels:
        raise ValueError("no images to embed: the split is empty")
    out = {name: (finite_features(torch.cat(parts[name])), torch.cat(labels)) for name in encoders}
    out["raw_pixels"] = (torch.cat(parts["raw_pixels"]).to(device), torch.cat(pixel_labels))
    return out


def evaluate_encoders(encoders: dict[str, nn.Module], datamodule: Any, seed: int = 0,
                      device: str | torch.device = "cpu", per_image: dict[str, torch.Tensor] | None = None
                      ) -> tuple[dict[str, float], dict[str, tuple]]:
    """k-NN metrics on the test split for each encoder and for raw pixels (per test image into `per_image`, as
    `knn_metrics`); also returns the features."""
    train_loader, test_loader = datamodule.eval_loaders()
    raw = datamodule.raw_features()
    feats: dict[str, tuple] = {}
    if raw is None:  # decoded data (image folders): raw pixels come from the same pass as the features
        train = embed_with_pixels(encoders, train_loader, device, RAW_SAMPLE, seed)
        test = embed_with_pixels(encoders, test_loader, device, None, seed)
        feats = {name: (*train[name], *test[name]) for name in encoders}
        raw = (*train["raw_pixels"], *test["raw_pixels"])
        if len(raw[0]) < len(train_loader.dataset):
            print(f"raw pixels: a seeded sample of {len(raw[0]):,} of the {len(train_loader.dataset):,} training "
                  "images at the evaluation resolution")
    for name, enc in encoders.items():
        if name not in feats:
            feats[name] = (*embed(enc, train_loader, device), *embed(enc, test_loader, device))
    if raw[0].numel() > RAW_PIXEL_LIMIT:
        print(f"raw-pixel baseline skipped: {raw[0].numel():,} training values exceed {RAW_PIXEL_LIMIT:,} "
              "(its k-NN would cost more than the rest of the evaluation)")
    else:
        feats["raw_pixels"] = raw
    return knn_metrics(feats, seed, per_image), feats


def noise(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two standard errors of the mean of the paired differences `a - b` `[N]` (each test item's score under two
    methods: an image's top-1, a query's reciprocal rank): how far apart their means could be by the choice of
    test items alone."""
    d = (a - b).double()
    return 2 * float(d.std()) / math.sqrt(len(d)) if len(d) > 1 else float("inf")


def format_table(metrics: dict[str, float]) -> str:
    """The metrics as a fixed-width text table: one row per feature source, one column per metric."""
    names = sorted({k.split("/", 1)[1] for k in metrics}, key=["trained", "random_init", "raw_pixels"].index)
    cols = sorted({k.split("/", 1)[0] for k in metrics})
    lines = [f"{'features':<14}" + "".join(f"{c:>13}" for c in cols)]
    for n in names:
        lines.append(f"{n:<14}" + "".join(f"{metrics.get(f'{c}/{n}', float('nan')):>13.4f}" for c in cols))
    return "\n".join(lines)


def finite_or_none(data: Any, where: str = "") -> Any:
    """`data` with every NaN or infinite float replaced by None (JSON has no NaN), warning with the keys."""
    if isinstance(data, dict):
        return {k: finite_or_none(v, f"{where}{k}.") for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v, where) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        warnings.warn(f"metric {where.rstrip('.')} is {data}; written as null")
        return None
    return data


def read_json(path: str) -> dict[str, Any]:
    """A JSON object from `path`, or an error naming the file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); move it aside to write a new one") from e
    if not isinstance(data, dict):
        raise TypeError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON (strict: a non-finite number becomes null, with a warning), atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(finite_or_none(data), f, indent=2, sort_keys=True, allow_nan=False)
    os.replace(tmp, path)


def plot_sample(features: torch.Tensor, labels: torch.Tensor, max_points: int = 5000,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """At most `max_points` rows, drawn without repeats with a fixed seed (t-SNE is quadratic in the points)."""
    if len(features) <= max_points:
        return features, labels
    pick = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))[:max_points]
    return features[pick], labels[pick]


def plot_embedding(features: torch.Tensor, labels: torch.Tensor, path: str, title: str) -> None:
    """A 2-D t-SNE of `features` (a sample of at most 5,000 points) coloured by class, saved as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    if len(features) < 5:
        warnings.warn(f"embedding plot skipped: {len(features)} test points are too few for t-SNE")
        return
    features, labels = plot_sample(features.cpu(), labels.cpu())
    xy = TSNE(2, init="pca", random_state=0, perplexity=min(30, len(features) - 1)).fit_transform(features.numpy())
    fig, ax = plt.subplots(figsize=(5, 5))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels.numpy(), cmap="tab10", s=6)
    ax.legend(*sc.legend_elements(), loc="best", fontsize=6, title="class")
    ax.set_title(title)
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_loss(metrics_csv: str, path: str) -> bool:
    """Plot train/val loss curves from Lightning's CSV log; False if the log has no loss."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not os.path.exists(metrics_csv):
        return False
    series: dict[str, tuple[list[int], list[float]]] = {}
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            for key in ("train/loss_step", "val/loss"):
                if row.get(key):
                    s = series.setdefault(key, ([], []))
                    s[0].append(int(row["step"]))
                    s[1].append(float(row[key]))
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, (x, y) in series.items():
        ax.plot(x, y, label=key, marker="o" if key == "val/loss" else None, ms=3)
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
