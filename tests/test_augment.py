"""Augmentation recipes (augment=...): each applies the ops docs/augment.md lists, on both paths; the choice from
the data and the size defaults; grayscale folders seen as one channel."""
from __future__ import annotations

import re
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from contrastive.data import ImageFolderDataModule
from contrastive.data.images.defaults import (
    ImageFacts,
    choose_recipe,
    held_out_share,
    recipe_config,
    recipe_names,
    size_defaults,
)
from contrastive.tasks.image_defaults import scaled_lr
from contrastive.train import train
from tests.conftest import make_cfg

DOC = Path(__file__).parents[1] / "docs" / "augment.md"


def documented_ops() -> dict[str, list[str]]:
    """recipe -> its ops, in order, from the table in docs/augment.md."""
    table = DOC.read_text().split("| recipe | ops, in order |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\w+) \| ([a-z, ]+) \|", table, re.MULTILINE)
    return {name: [op.strip() for op in ops.split(",")] for name, ops in rows}


def recorded(steps: list, log: list[str]) -> list:
    """`steps` with each op wrapped to append its name to `log` when it runs."""
    def wrap(name, op):
        def run(*args):
            log.append(name)
            return op(*args)
        return run
    return [(name, wrap(name, op)) for name, op in steps]


def build(name: str, size: int = 12):
    return hydra.utils.instantiate({**recipe_config(name), "size": size})


def test_every_recipe_is_documented_and_every_documented_recipe_exists():
    assert sorted(documented_ops()) == recipe_names() == ["cifar", "digits", "grayscale_small", "imagenet"]


@pytest.mark.parametrize("name", ["cifar", "digits", "grayscale_small", "imagenet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_each_recipe_applies_the_ops_it_lists_per_image_and_per_batch(name, channels):
    want = documented_ops()[name]
    recipe = build(name)
    image = torch.randint(0, 256, (channels, 20, 18), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cpu: list[str] = []
    cpu_steps = recipe.steps
    recipe.steps = recorded(cpu_steps, cpu)
    one = recipe(image)
    assert cpu == want, f"{name} per image applied {cpu}, docs/augment.md lists {want}"
    assert one.shape == (channels, 12, 12) and one.dtype == torch.float32 and torch.isfinite(one).all()
    device: list[str] = []
    recipe.batch(image[None])  # builds the batched twin where the recipe has one of its own
    twin = getattr(recipe, "_device", None) or recipe
    twin.steps = recorded(twin.steps, device) if twin is not recipe else recorded(cpu_steps, device)
    many = recipe.batch(image[None].repeat(4, 1, 1, 1), torch.Generator().manual_seed(1))
    assert device == want, f"{name} per batch applied {device}, docs/augment.md lists {want}"
    assert many.shape == (4, channels, 12, 12)
    assert not torch.allclose(many[0], many[1])  # independent draws per sample


def test_a_planted_missing_op_fails_the_check():
    recipe = build("grayscale_small")
    recipe.steps = [s for s in recipe.steps if s[0] != "erase"]
    log: list[str] = []
    recipe.steps = recorded(recipe.steps, log)
    recipe(torch.zeros(1, 8, 8, dtype=torch.uint8))
    assert log != documented_ops()["grayscale_small"]


@pytest.mark.parametrize("facts, name", [
    (ImageFacts(1, 8, 1000), "digits"), (ImageFacts(1, 28, 5000), "grayscale_small"),
    (ImageFacts(3, 32, 50000), "cifar"), (ImageFacts(3, 64, 100), "cifar"), (ImageFacts(3, 500, 100), "imagenet")])
def test_the_recipe_follows_channels_and_side(facts, name):
    assert choose_recipe(facts) == name


def test_size_defaults_keep_digits_and_bound_small_and_large_sets():
    assert size_defaults(1258) == {"batch_size": 256, "max_epochs": 100, "warmup_epochs": 10}
    assert size_defaults(1258, side=64) == size_defaults(1258)  # large views: the same views in all
    assert size_defaults(5032, side=16)["max_epochs"] == 100  # 16-px views cost a quarter: four times as many
    assert size_defaults(1437, side=16)["max_epochs"] == 300  # the digits folder (capped)
    small, large = size_defaults(40), size_defaults(1_281_167)
    assert small["batch_size"] == 8 and small["max_epochs"] == 300  # 5 batches an epoch, capped epochs
    assert large["max_epochs"] == 5 and large["batch_size"] == 256
    assert scaled_lr(0.3, 64, "contrastive.optim.LARS") == pytest.approx(0.075)


def test_the_digits_set_keeps_its_tuned_epochs_where_a_folder_follows_the_size_rule(tmp_path, capsys):
    from contrastive.tasks.image_defaults import choose_defaults
    cfg = make_cfg(tmp_path / "run", ["logger=none"])
    cfg.trainer.max_epochs = None  # as simclr_digits leaves it
    made = choose_defaults(cfg, hydra.utils.instantiate(cfg.data))
    assert "trainer.max_epochs=100" in made and cfg.model.warmup_epochs == 10
    assert "tuned for 100 epochs" in capsys.readouterr().out
    assert size_defaults(1258, 16)["max_epochs"] == 300  # the same images as a folder: 16-px views, 4x the views
    assert [held_out_share(n) for n in (60, 200, 768, 1797)] == [0.5, 0.5, 100 / 768, 0.1]  # >= 100 test images
    assert scaled_lr(1e-3, 64, "torch.optim.AdamW") == pytest.approx(5e-4)


def gray_folder(root: Path, per_class: int, side: int = 20) -> None:
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for k in range(per_class):
            a = rng.integers(0, 60, (side, side), dtype=np.uint8)
            a[:, c * side // 2:(c + 1) * side // 2] += 150  # the class is which half is bright
            Image.fromarray(a, mode="L").save(root / f"c{c}" / f"{k}.png")


def test_a_grayscale_folder_is_one_channel_with_its_recipe_and_sizes_chosen_and_recorded(tmp_path, capsys):
    from contrastive.tasks.image_defaults import choose_defaults
    gray_folder(tmp_path / "img", 30)
    cfg = make_cfg(tmp_path / "run", ["data=image_folder", f"data.root={tmp_path / 'img'}", "data.num_workers=0",
                                      "logger=none"])
    cfg.data.batch_size = cfg.trainer.max_epochs = None  # as the defaults leave them
    made = choose_defaults(cfg, hydra.utils.instantiate(cfg.data))
    # 60 images: half held out for testing (30 test images, 6 for validation, 24 to train on)
    assert made[:6] == ["data.test_fraction=0.5", "data.channels=1", "data.size=20", "augment=grayscale_small",
                        "data.batch_size=4", "optimizer.lr=0.000125 (set for batch 256: 0.001)"]
    assert cfg.trainer.max_epochs == 300 and cfg.model.warmup_epochs == 30
    assert "chosen from the data (24 grayscale training images, shorter side 20 px (median)): data.test_fraction=0.5" \
        in capsys.readouterr().out
    cfg = make_cfg(tmp_path / "run", ["data=image_folder", f"data.root={tmp_path / 'img'}", "data.num_workers=0",
                                      "logger=none"])
    cfg.data.batch_size = None
    metrics, objects = train(cfg)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["augment"]["_target_"].endswith("AffineRecipe") and saved["augment"]["size"] == 20
    assert saved["data"]["batch_size"] == 4 and saved["trainer"]["max_epochs"] == 1
    assert saved["data"]["test_fraction"] == 0.5 and len(objects["datamodule"].eval_test_set) == 30
    assert saved["encoder"]["in_channels"] == 1 and objects["datamodule"].channels == 1
    v1, *_ = next(iter(objects["datamodule"].train_dataloader()))
    assert v1.shape == (4, 1, 20, 20)
    assert metrics["knn_top1/raw_pixels"] > 0.9  # the raw-pixel row, on one channel
    assert saved["optimizer"]["lr"] == pytest.approx(1e-3 * (4 / 256) ** 0.5)


@pytest.mark.parametrize("name", ["grayscale_small", "imagenet"])
def test_any_recipe_runs_on_a_folder_with_either_augment_on(tmp_path, name):
    gray_folder(tmp_path / "img", 6)
    for where in ("cpu", "device"):
        dm = ImageFolderDataModule(str(tmp_path / "img"), size=16, batch_size=4, num_workers=0, augment_on=where,
                                   transform=build(name, 16), channels=3)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))
        if where == "device":
            batch = (dm.make_view(batch[0]), dm.make_view(batch[0]))
        assert batch[0].shape == (4, 3, 16, 16) and batch[0].dtype == torch.float32


def test_an_explicit_recipe_is_kept_and_a_text_task_refuses_one(tmp_path):
    cfg = make_cfg(tmp_path / "a", ["augment=cifar", "logger=none", "evaluate=false"])
    _, objects = train(cfg)
    assert type(objects["datamodule"].transform).__name__ == "SimCLRTransform"
    with pytest.raises(ValueError, match="augment is set, but task=text_pairs has no image views"):
        train(make_cfg(tmp_path / "b", ["experiment=text_pairs_wiki", "augment=cifar"]))
