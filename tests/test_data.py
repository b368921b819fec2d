"""Data modules on real formats written by the test: CIFAR-10 pickles, a folder of PNGs, and digits."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from contrastive.data import Cifar10DataModule, DigitsDataModule, ImageFolderDataModule
from contrastive.data.images.cifar10 import FOLDER
from contrastive.data.images.digit_augment import (
    digit_views,
    random_affine,
    random_erase,
)


def write_cifar(root, n_train_per_batch=8, n_test=6):
    """A tiny CIFAR-10 in the real python-pickle layout (5 training batches + test batch + meta)."""
    d = root / FOLDER
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", n_train_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def patch_integrity(monkeypatch):
    # torchvision checks the official md5 sums; our tiny files are real-format but not the real bytes
    import torchvision
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def test_cifar10_reads_real_format(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    patch_integrity(monkeypatch)
    dm = Cifar10DataModule(root=str(tmp_path), batch_size=4, num_workers=0, val_size=5)
    dm.setup("fit")
    assert len(dm.train_set) == 35 and len(dm.val_set) == 5 and len(dm.eval_test_set) == 6
    v1, v2, _y, _i = next(iter(dm.train_dataloader()))
    assert v1.shape == v2.shape == (4, 3, 32, 32) and v1.dtype == torch.float32
    assert not torch.equal(v1, v2)  # independent views
    trx, _tr_y, tex, _te_y = dm.raw_features()
    assert trx.shape == (40, 3072) and tex.shape == (6, 3072) and 0 <= float(trx.min()) and float(trx.max()) <= 1


def test_cifar10_missing_files_say_where_and_what_to_do(tmp_path):
    dm = Cifar10DataModule(root=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(FileNotFoundError, match=r"nowhere/cifar-10-batches-py.*data.download=true"):
        dm.prepare_data()


def write_image_folder(root, per_class: int, height: int = 20, width: int = 24) -> None:
    """`root/cat/*.png` and `root/dog/*.png`, `per_class` random RGB images each."""
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir()
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / c / f"{k}.png")


def test_image_folder_reads_pngs(tmp_path):
    write_image_folder(tmp_path, 10)
    dm = ImageFolderDataModule(root=str(tmp_path), size=16, batch_size=4, num_workers=0, augment_on="cpu",
                               test_fraction=0.1)
    dm.setup("fit")
    assert dm.num_classes == 2 and len(dm.train_set) == 16 and len(dm.eval_test_set) == 2
    v1, _v2, y, _ = next(iter(dm.train_dataloader()))
    assert v1.shape == (4, 3, 16, 16) and set(y.tolist()) <= {0, 1}
    x, y = next(iter(dm.eval_loaders()[1]))
    assert x.shape == (2, 3, 16, 16)


def test_image_folder_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataModule(root=str(tmp_path / "none")).setup()


def test_digits_split_is_fixed_and_disjoint():
    a, b = DigitsDataModule(), DigitsDataModule()
    a.setup(), b.setup()
    tr, va, te = (set(t.tolist()) for t in a.idx)
    assert len(tr) + len(va) + len(te) == 1797 and not (tr & va or tr & te or va & te)
    assert all(torch.equal(x, y) for x, y in zip(a.idx, b.idx))
    assert len(te) == 359 and len(va) == 180


def test_digit_views_shapes_ranges_and_seed():
    x = torch.rand(16, 1, 8, 8)
    v = digit_views(x, size=16, generator=torch.Generator().manual_seed(0))
    w = digit_views(x, size=16, generator=torch.Generator().manual_seed(0))
    u = digit_views(x, size=16, generator=torch.Generator().manual_seed(1))
    assert v.shape == (16, 1, 16, 16) and torch.equal(v, w) and not torch.equal(v, u)
    # per-sample independence: identical inputs give different views
    same = digit_views(x[:1].repeat(8, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    assert (same[1:] - same[:1]).abs().flatten(1).amax(1).min() > 0


def test_random_affine_identity_and_erase():
    x = torch.rand(4, 1, 8, 8)
    same = random_affine(x, 8, scale=(1, 1), degrees=0, shear=0, translate=0)
    assert torch.allclose(same, x, atol=1e-5)
    erased = random_erase(torch.ones(64, 1, 10, 10), p=1.0, generator=torch.Generator().manual_seed(0))
    frac = 1 - erased.flatten(1).mean(1)
    assert bool((frac > 0).all()) and float(frac.max()) <= 0.35 ** 2 + 0.2
    assert torch.equal(random_erase(torch.ones(8, 1, 10, 10), p=0.0), torch.ones(8, 1, 10, 10))
