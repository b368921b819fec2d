"""The image task's choices from the data: the augmentation recipe (`augment=auto`) and, where the config leaves
them null, the view size, batch size, epochs and warm-up (and the learning rate scaled to the chosen batch);
each choice written into the run's config (so `config.yaml` records it) and stated in the log."""
from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from contrastive.data.images.defaults import (
    BASE_BATCH,
    choose_recipe,
    loader_workers,
    recipe_config,
    size_defaults,
    view_size,
)
from contrastive.tasks.base import say_chosen


def scaled_lr(lr: float, batch: int, optimizer_target: str) -> float:
    """`lr` (set for batches of BASE_BATCH) for `batch`: linear scaling for SGD-like optimizers (Goyal et al.
    2017), square-root scaling for Adam-like ones (Malladi et al. 2022)."""
    ratio = batch / BASE_BATCH
    return lr * (math.sqrt(ratio) if "adam" in optimizer_target.lower() else ratio)


def choose_defaults(cfg: DictConfig, datamodule: Any) -> list[str]:
    """Fill the run's null options and `augment=auto` from `datamodule.facts()`; returns the choices made
    (`key=value`), also printed."""
    wanted = [OmegaConf.select(cfg, k, default=0) is None for k in
              ("data.size", "data.channels", "data.test_fraction", "data.num_workers", "data.batch_size",
               "trainer.max_epochs", "model.warmup_epochs")]
    if not any(wanted) and not cfg.augment.get("auto"):
        return []  # all set (a saved run's config): nothing to read from the data
    facts = datamodule.facts()
    made: dict[str, Any] = {}
    with open_dict(cfg):
        if "num_workers" in cfg.data and cfg.data.num_workers is None:
            made["data.num_workers"] = cfg.data.num_workers = loader_workers()
        if "test_fraction" in cfg.data and cfg.data.test_fraction is None and hasattr(datamodule, "fractions"):
            made["data.test_fraction"] = cfg.data.test_fraction = round(datamodule.fractions[1], 4)
        if "channels" in cfg.data and cfg.data.channels is None:
            made["data.channels"] = cfg.data.channels = facts.channels
        if "size" in cfg.data and cfg.data.size is None:
            made["data.size"] = cfg.data.size = view_size(facts)
        if cfg.augment.get("auto"):
            name = choose_recipe(facts)
            cfg.augment = OmegaConf.create(recipe_config(name))
            made["augment"] = name
        sizes = size_defaults(facts.count, cfg.data.get("size") or view_size(facts))
        if facts.epochs:
            sizes.update(max_epochs=facts.epochs, warmup_epochs=max(1, round(facts.epochs / 10)))
        if cfg.data.get("batch_size") is None:
            made["data.batch_size"] = cfg.data.batch_size = sizes["batch_size"]
            lr = OmegaConf.select(cfg, "optimizer.lr")
            if lr is not None and sizes["batch_size"] != BASE_BATCH:
                cfg.optimizer.lr = scaled_lr(lr, sizes["batch_size"], cfg.optimizer.get("_target_", ""))
                made["optimizer.lr"] = f"{cfg.optimizer.lr:.3g} (set for batch {BASE_BATCH}: {lr:g})"
        if cfg.trainer.get("max_epochs") is None and cfg.trainer.get("max_steps", -1) in (-1, None):
            made["trainer.max_epochs"] = cfg.trainer.max_epochs = sizes["max_epochs"]
        if "warmup_epochs" in cfg.model and cfg.model.warmup_epochs is None:
            epochs = cfg.trainer.get("max_epochs")
            tenth = max(1, round(epochs / 10)) if epochs and epochs > 0 else sizes["warmup_epochs"]
            made["model.warmup_epochs"] = cfg.model.warmup_epochs = tenth
    return say_chosen(str(facts), made)
