"""Image folders and file lists: indexing without decoding, bad files found in the workers, own val/test
folders, unlabelled folders, the crop-first decoder."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contrastive.data import ImageFolderDataModule
from contrastive.data.images.fast_decode import CropFirstViews, crop_box, load_rgb
from contrastive.data.images.transforms import SimCLRTransform
from contrastive.train import train
from tests.conftest import make_cfg


def write_images(folder: Path, n: int, size: tuple[int, int] = (12, 10), ext: str = "png", seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{k}.{ext}")


def epoch(dm: ImageFolderDataModule) -> list[tuple]:
    dm.setup("fit")
    return [tuple(t.clone() for t in b) for b in dm.train_dataloader()]


def test_setup_decodes_nothing_and_runs_once(tmp_path, monkeypatch):
    write_images(tmp_path / "a", 6), write_images(tmp_path / "b", 6)
    dm = ImageFolderDataModule(str(tmp_path), size=8, batch_size=2, num_workers=0)
    # the recipe and channels are chosen from a few files' headers: no pixels are decoded
    monkeypatch.setattr(Image.Image, "load", lambda *a, **k: pytest.fail("setup decoded an image"))
    dm.setup("fit")
    train_set = dm.train_set
    dm.setup("test")
    assert dm.train_set is train_set and dm.num_classes == 2 and dm.num_items() == 12


def test_bad_files_are_skipped_in_the_workers_and_replaced_deterministically(tmp_path, monkeypatch):
    write_images(tmp_path / "a", 6)
    good = (tmp_path / "a" / "0.png").read_bytes()
    (tmp_path / "a" / "trunc.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "a" / "junk.png").write_bytes(b"not an image")
    write_images(tmp_path / "b", 1, size=(40, 40))  # over the lowered pixel limit below: a decompression bomb
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)
    torch.manual_seed(0)
    runs = []
    for _ in range(2):
        dm = ImageFolderDataModule(str(tmp_path), size=8, batch_size=3, num_workers=0, val_fraction=0,
                                   test_fraction=0, augment_on="cpu")
        with pytest.warns(UserWarning, match=r"skipped unreadable image .*(junk|trunc|0)\.png"):
            batches = epoch(dm)
        assert [len(b[0]) for b in batches] == [3, 3, 3]  # batches stay full
        assert sorted(Path(p).name for p in dm.bad_images()) == ["0.png", "junk.png", "trunc.png"]
        runs.append(batches)
    # the same replacements in a second run: labels and positions equal
    assert all(torch.equal(a[2], b[2]) and torch.equal(a[3], b[3]) for a, b in zip(*runs))
    dm = ImageFolderDataModule(str(tmp_path), size=8, batch_size=3, num_workers=2, on_bad_image="error",
                               val_fraction=0, test_fraction=0)
    with pytest.raises(ValueError, match=r"unreadable image .*(junk|trunc|0)\.png .*data.on_bad_image=skip"):
        epoch(dm)


def test_flags_set_in_worker_processes_are_counted_in_eval_json(tmp_path):
    write_images(tmp_path / "img" / "a", 12), write_images(tmp_path / "img" / "b", 12, seed=1)
    (tmp_path / "img" / "b" / "junk.png").write_bytes(b"junk")
    train(make_cfg(tmp_path / "run", ["data=image_folder", "encoder.in_channels=3", f"data.root={tmp_path / 'img'}", "data.size=8",
                                      "data.batch_size=4", "data.num_workers=2", "trainer.limit_train_batches=6",
                                      "data.val_fraction=0", "data.test_fraction=0.2", "logger=none"]))
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert saved["bad_images"] == 1 and saved["bad_image_examples"][0].endswith("junk.png")


def test_a_split_with_no_readable_file_says_so(tmp_path):
    (tmp_path / "a").mkdir()
    for k in range(4):
        (tmp_path / "a" / f"{k}.png").write_bytes(b"junk")
    dm = ImageFolderDataModule(str(tmp_path), size=8, batch_size=2, num_workers=0, val_fraction=0, test_fraction=0)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"none of the 4 images of this split of .* can "
                                                                   r"be read"):
        epoch(dm)


def test_val_and_test_roots_and_their_classes(tmp_path):
    for split, n in (("train", 8), ("val", 3), ("test", 2)):
        write_images(tmp_path / split / "cat", n), write_images(tmp_path / split / "dog", n, seed=1)
    dm = ImageFolderDataModule(str(tmp_path / "train"), size=8, batch_size=2, num_workers=0,
                               val_root=str(tmp_path / "val"), test_root=str(tmp_path / "test"))
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.eval_test_set)) == (16, 6, 4)  # no fraction carved out
    dm = ImageFolderDataModule(str(tmp_path / "train"), size=8, num_workers=0, val_root=str(tmp_path / "val"))
    dm.setup()
    assert len(dm.eval_test_set) == 6 and sorted(y for _, y in dm.eval_test_set) == [0, 0, 0, 1, 1, 1]
    write_images(tmp_path / "val" / "cow", 1)
    with pytest.raises(ValueError, match=r"has class folder\(s\) \['cow'\] that the training data lacks"):
        ImageFolderDataModule(str(tmp_path / "train"), val_root=str(tmp_path / "val")).setup()


def test_a_val_root_missing_a_class_keeps_the_training_label_numbers(tmp_path):
    for c, seed in (("ant", 0), ("bee", 1), ("cow", 2)):
        write_images(tmp_path / "train" / c, 4, seed=seed)
    write_images(tmp_path / "val" / "ant", 2, seed=3), write_images(tmp_path / "val" / "cow", 2, seed=4)
    dm = ImageFolderDataModule(str(tmp_path / "train"), size=8, num_workers=0, val_root=str(tmp_path / "val"))
    dm.setup()
    labels = {dm.indexes["val"].path(int(p)).split("/")[-2]: y for p, (_, y) in zip(dm.eval_val_set.positions,
                                                                                    dm.eval_val_set, strict=True)}
    assert labels == {"ant": 0, "cow": 2}  # cow is class 2 of the training data, not 1 of the val folder


def test_probe_and_knn_training_rows_never_hold_validation_or_test_images(tmp_path):
    write_images(tmp_path / "a", 20), write_images(tmp_path / "b", 20, seed=1)
    dm = ImageFolderDataModule(str(tmp_path), size=8, num_workers=0, val_fraction=0.2, test_fraction=0.2)
    dm.setup()
    train_rows, val_rows, test_rows = (set(d.positions.tolist()) for d in (dm.eval_train_set, dm.eval_val_set,
                                                                           dm.eval_test_set))
    assert train_rows == set(dm.train_set.positions.tolist()) and len(train_rows) == 24
    assert not train_rows & val_rows and not train_rows & test_rows and not val_rows & test_rows


def test_an_unreadable_file_seen_through_the_val_and_the_test_split_is_counted_once(tmp_path):
    write_images(tmp_path / "train" / "a", 4), write_images(tmp_path / "train" / "b", 4, seed=1)
    write_images(tmp_path / "val" / "a", 2, seed=2), write_images(tmp_path / "val" / "b", 2, seed=3)
    (tmp_path / "val" / "b" / "junk.png").write_bytes(b"not an image")
    dm = ImageFolderDataModule(str(tmp_path / "train"), size=8, num_workers=0, val_root=str(tmp_path / "val"))
    dm.setup()  # with val_root alone, evaluation's test split is the val folder
    with pytest.warns(UserWarning, match="junk.png"):
        seen = [len(list(ds)) for ds in (dm.eval_val_set, dm.eval_test_set)]
    assert seen == [5, 5]  # the junk file's slot is filled by the next readable one
    assert dm.bad_images() == [str(tmp_path / "val" / "b" / "junk.png")]


def test_unlabelled_folder_trains_and_skips_label_evaluation(tmp_path, capsys):
    write_images(tmp_path / "img", 40)
    with pytest.warns(UserWarning, match="has no labels"):
        metrics, objects = train(make_cfg(tmp_path / "run", [
            "data=image_folder", "encoder.in_channels=3", f"data.root={tmp_path / 'img'}", "data.size=8", "data.batch_size=8",
            "data.num_workers=0", "logger=none"]))
    assert objects["trainer"].global_step == 2 and metrics.get("knn_top1/trained") is None
    assert "no labels (no class folders): k-NN evaluation and the embedding plot are skipped" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["evaluation"] == "skipped: the data has no labels"


@pytest.mark.slow
def test_an_unlabelled_folder_run_exits_0_through_the_console_entry_point(tmp_path):
    from tests.conftest import FAST, run_console
    write_images(tmp_path / "img", 40)
    r = run_console([*FAST, "data=image_folder", "encoder.in_channels=3", f"data.root={tmp_path / 'img'}",
                     "data.size=8", "data.batch_size=8", "data.num_workers=0", "logger=none",
                     f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no knn_top1/trained for a sweep to compare: the evaluation skipped it" in r.stdout
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_file_lists_with_and_without_labels_and_their_errors(tmp_path):
    write_images(tmp_path / "pics", 6)
    (tmp_path / "plain.txt").write_text("".join(f"pics/{k}.png\n" for k in range(6)))
    (tmp_path / "labelled.csv").write_text("path,label\n" + "".join(f"pics/{k}.png,{'ab'[k % 2]}\n" for k in range(6)))
    dm = ImageFolderDataModule(file_list=str(tmp_path / "plain.txt"), size=8, num_workers=0)
    dm.setup()
    assert dm.num_classes == 0 and dm.num_items() == 6
    dm = ImageFolderDataModule(file_list=str(tmp_path / "labelled.csv"), size=8, num_workers=0, val_fraction=0,
                               test_fraction=0)
    dm.setup()
    assert dm.num_classes == 2 and sorted(y for _, y in dm.eval_train_set) == [0, 0, 0, 1, 1, 1]
    (tmp_path / "missing.txt").write_text("pics/0.png\npics/nope.png\n")
    with pytest.raises(FileNotFoundError, match=r"names 1 file\(s\) that do not exist \(line 2: .*nope\.png\)"):
        ImageFolderDataModule(file_list=str(tmp_path / "missing.txt")).setup()
    (tmp_path / "ragged.csv").write_text("pics/0.png,a\npics/1.png\n")
    with pytest.raises(ValueError, match=r"ragged\.csv, line 2: expected the same columns on every line"):
        ImageFolderDataModule(file_list=str(tmp_path / "ragged.csv")).setup()
    with pytest.raises(ValueError, match="set exactly one of data.root"):
        ImageFolderDataModule(root=str(tmp_path), file_list=str(tmp_path / "plain.txt"))


def test_empty_folder_and_loose_files_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no images under .*empty"):
        ImageFolderDataModule(str(tmp_path / "empty")).setup()
    write_images(tmp_path / "mixed" / "a", 2)
    write_images(tmp_path / "mixed", 3)
    with pytest.warns(UserWarning, match=r"3 image\(s\) directly under .*mixed are in no class folder"):
        ImageFolderDataModule(str(tmp_path / "mixed")).setup()


def test_crop_first_views_decode_a_jpeg_at_reduced_size_with_the_same_crop(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (30, 40, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 240 x 320
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    drafts = []
    real_draft = Image.Image.draft
    monkeypatch.setattr("PIL.JpegImagePlugin.JpegImageFile.draft",
                        lambda self, mode, size: drafts.append(size) or real_draft(self, mode, size))
    plain = {"hflip_p": 0.0, "jitter_p": 0.0, "gray_p": 0.0, "blur_p": 0.0, "mean": (0, 0, 0), "std": (1, 1, 1)}
    views = CropFirstViews(SimCLRTransform(32, crop_scale=(0.5, 1.0), **plain))
    torch.manual_seed(3)
    fast = views(str(tmp_path / "a.jpg"))
    torch.manual_seed(3)
    boxes = [crop_box(320, 240, (0.5, 1.0)) for _ in range(2)]
    full = load_rgb(str(tmp_path / "a.jpg"))
    for (top, left, h, w), v in zip(boxes, fast):
        want = torch.from_numpy(np.asarray(full.resize((32, 32), Image.BILINEAR, box=(left, top, left + w,
                                                                                    top + h)))).permute(2, 0, 1)
        assert v.shape == (3, 32, 32) and (v * 255 - want.float()).abs().mean() < 6  # same crop, same content
    assert drafts and max(drafts[0]) < 320  # asked for a reduced decode
    assert Image.open(tmp_path / "a.jpg").size == (320, 240)


def test_a_reduced_jpeg_decode_keeps_size_pixels_in_every_crop(tmp_path, monkeypatch):
    from contrastive.data.images import fast_decode
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(tmp_path / "big.jpg", quality=90)
    cut = []
    real = fast_decode.F.resized_crop
    monkeypatch.setattr(fast_decode.F, "resized_crop", lambda img, top, left, h, w, *a, **k: (
        cut.append((h, w, img.shape[-2:])), real(img, top, left, h, w, *a, **k))[1])
    views = CropFirstViews(SimCLRTransform(24, crop_scale=(0.08, 1.0)))
    for seed in range(40):
        torch.manual_seed(seed)
        views(str(tmp_path / "big.jpg"))
    assert len(cut) == 80 and min(min(h, w) for h, w, _ in cut) >= 24
    assert min(shape[1] for _, _, shape in cut) < 800  # reduced decodes happened


def test_crop_box_stays_inside_the_image():
    torch.manual_seed(0)
    for w, h in ((320, 240), (50, 400), (7, 7)):
        for _ in range(50):
            top, left, ch, cw = crop_box(w, h, (0.08, 1.0))
            assert 0 <= top and 0 <= left and top + ch <= h and left + cw <= w and ch > 0 and cw > 0


@pytest.mark.parametrize("shape, k", [((3, 224, 224), 23), ((3, 40, 52), 5), ((2, 3, 17, 9), 7)])
def test_separable_blur_equals_torchvision_blur(shape, k):
    from torchvision import tv_tensors
    from torchvision.transforms.v2 import functional as TF

    from contrastive.data.images.transforms import SeparableGaussianBlur
    x = tv_tensors.Image(torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)))
    for sigma in (0.1, 0.9, 2.0):
        ours = SeparableGaussianBlur(k, (sigma, sigma))
        got, want = ours(x), TF.gaussian_blur(x, [k, k], [sigma, sigma])
        assert isinstance(got, tv_tensors.Image) and got.dtype == torch.uint8 and got.shape == want.shape
        assert (got.int() - want.int()).abs().max() <= 1  # uint8 rounding of the same float result
        xf = x.float() / 255
        assert torch.allclose(ours(xf), TF.gaussian_blur(xf, [k, k], [sigma, sigma]), atol=1e-5)


def test_image_folders_get_the_raw_pixel_rows_from_a_seeded_sample_of_one_pass(tmp_path, monkeypatch):
    from contrastive.eval import report
    from contrastive.tasks.image import verdict
    write_images(tmp_path / "a", 20)
    write_images(tmp_path / "b", 20, seed=1)
    dm = ImageFolderDataModule(root=str(tmp_path), size=8, batch_size=4, num_workers=0)
    dm.setup("fit")
    dm.setup("test")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    monkeypatch.setattr(report, "RAW_SAMPLE", 7)
    from contrastive.data.images import image_folder
    decoded: list[str] = []
    real = image_folder.PlainView.__call__
    monkeypatch.setattr(image_folder.PlainView, "__call__", lambda self, path: decoded.append(path) or real(self, path))
    per_image: dict[str, torch.Tensor] = {}
    metrics, feats = report.evaluate_encoders({"trained": net, "random_init": copy.deepcopy(net)}, dm,
                                              per_image=per_image)
    # each k-NN metric is the mean of its per-test-image top-1 (what the verdict's noise is measured from)
    assert {k for k in metrics if k.startswith("knn")} == set(per_image)
    assert all(len(v) == len(feats["trained"][3]) and float(v.mean()) == metrics[k] for k, v in per_image.items())
    # one decode of each evaluation image serves both encoders and the raw-pixel sample
    assert sorted(decoded) == sorted(dm.indexes["train"].path(int(p)) for p in
                                     [*dm.eval_train_set.positions, *dm.eval_test_set.positions])
    monkeypatch.setattr(image_folder.PlainView, "__call__", real)
    assert {"knn_top1/raw_pixels", "knn10_top1/raw_pixels", "linear_top1/raw_pixels"} <= set(metrics)
    train_x, train_y, test_x, _ = feats["raw_pixels"]
    images = torch.cat([x for x, _ in dm.eval_loaders()[0]]).flatten(1)
    assert train_x.shape == (7, 3 * 8 * 8) and len(test_x) == len(feats["trained"][2])
    # the sample is rows of the evaluation images, the same ones on every call
    assert all(bool((images == row).all(1).any()) for row in train_x)
    assert torch.equal(report.evaluate_encoders({"trained": net}, dm)[1]["raw_pixels"][0], train_x)
    assert set(train_y.tolist()) <= {0, 1}
    said = verdict({"knn_top1/trained": 0.90, "knn_top1/raw_pixels": 0.94, "knn10_top1/trained": 0.8,
                    "knn10_top1/raw_pixels": 0.7})
    assert said.startswith("WARNING: the trained encoder loses to raw pixels (knn_top1 0.9000 < 0.9400)")


def test_the_verdict_says_when_a_gap_is_within_the_noise_of_the_test_images():
    from contrastive.tasks.image import verdict

    def said(trained: list[float], raw: list[float]) -> str:
        per_image = {"knn_top1/trained": torch.tensor(trained), "knn_top1/raw_pixels": torch.tensor(raw)}
        return verdict({k: float(v.mean()) for k, v in per_image.items()}, per_image)
    # 200 aligned faces hold 20 test images: raw pixels get all, the encoder 19 (one image is 0.05)
    faces = said([1.0] * 19 + [0.0], [1.0] * 20)
    assert faces.startswith("WARNING: the trained encoder loses to raw pixels (knn_top1 0.9500 < 1.0000); on 20 "
                            "test images that is within two standard errors (knn_top1 ±0.1000)"), faces
    # paired: both wrong on the same 10 of 400 images, raw pixels on 6 more: a clear win though 0.015 is small
    # (two accuracies measured apart, 0.975 and 0.96 on 400 images, would be within 0.025 of each other)
    clear = said([1.0] * 390 + [0.0] * 10, [1.0] * 384 + [0.0] * 16)
    assert clear == "the trained encoder beats raw pixels on k-NN with all labels (knn_top1 +0.0150)", clear
    # the same two accuracies where the two disagree on 18 images (raw pixels right on 6 the encoder misses)
    mixed = said([0.0] * 6 + [1.0] * 394, [1.0] * 6 + [0.0] * 12 + [1.0] * 382)
    assert "within" in mixed and mixed.startswith("the trained encoder beats raw pixels"), mixed
