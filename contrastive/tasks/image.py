"""Contrastive pretraining of an image encoder (SimCLR, MoCo), evaluated by k-NN on frozen features."""
from __future__ import annotations

import copy
import os
from typing import Any, ClassVar

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from contrastive.data.images.base import ViewDataModule
from contrastive.encoders import DigitsCNN, MLPHead, ResNet
from contrastive.encoders.external import TimmEncoder, TorchvisionEncoder
from contrastive.eval.monitors import OnlineMonitors
from contrastive.eval.report import (
    evaluate_encoders,
    format_table,
    noise,
    plot_embedding,
    plot_loss,
)
from contrastive.losses import (
    DCL,
    AlignUniform,
    ClipLoss,
    Debiased,
    InfoNCE,
    NTXent,
    SigmoidLoss,
    SupCon,
)
from contrastive.models import MoCo, SimCLR
from contrastive.models.base import accepted_keywords
from contrastive.samplers import MemoryBank, NegativeQueue, SupportSet
from contrastive.tasks.base import (
    Task,
    group_class,
    is_project_class,
    option_class,
    options,
    takes,
)
from contrastive.tasks.contracts import probe_encoder, probe_objective
from contrastive.tasks.image_defaults import choose_defaults


class ImageTask(Task):
    """Data module, encoder (and its untrained copy), projector, objective, optional negative source, model."""

    name = "image"
    metric = "knn_top1/trained"  # what a sweep compares (optimized_metric=null)
    has_monitors = True
    has_views = True
    uses: ClassVar[dict[str, tuple[type, ...]]] = {
        "data": (ViewDataModule,), "encoder": (DigitsCNN, ResNet, TorchvisionEncoder, TimmEncoder),
        "projector": (MLPHead,),
        "objective": (InfoNCE, NTXent, SupCon, DCL, Debiased, SigmoidLoss, AlignUniform),
        "negatives": (NegativeQueue, MemoryBank, SupportSet), "model": (SimCLR, MoCo),
        "optimizer": (object,)}
    optional: ClassVar[tuple[str, ...]] = ("negatives",)
    open_slots: ClassVar[tuple[str, ...]] = ("encoder", "objective")

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        if cfg.get("negatives") is None and cfg.get("num_negatives") is not None:
            raise ValueError(f"num_negatives={cfg.num_negatives} has no effect without a negative source: the "
                             "in-batch negatives are the rest of the batch (data.batch_size); add "
                             f"negatives={'|'.join(options('negatives', (NegativeQueue, MemoryBank)))}")
        source, objective = group_class(cfg, "negatives"), group_class(cfg, "objective")
        devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
        if cfg.data.get("batch_size") == 1 and devices == 1 and nodes == 1 and not (source and source.uses):
            raise ValueError("data.batch_size=1 with one process leaves every anchor without a negative: the in-batch "
                             "loss is 0 at every step and nothing is learned; use data.batch_size >= 2 (or "
                             "negatives=queue|memory_bank)")
        if source is not None and source.uses and objective is not None:
            takes = accepted_keywords(objective)
            if not set(source.uses) <= takes or issubclass(objective, ClipLoss):
                fit = [o for o in options("objective", self.uses["objective"])
                       if set(source.uses) <= accepted_keywords(option_class("objective", o))
                       and not issubclass(option_class("objective", o), ClipLoss)]
                raise ValueError(f"{source.__name__} adds stored negatives, which {objective.__name__} does not "
                                 f"score; use objective={'|'.join(fit)} with it, or negatives=nn_support|none")

    def build(self, cfg: DictConfig) -> dict[str, Any]:
        datamodule = hydra.utils.instantiate(cfg.data, transform=None)
        choose_defaults(cfg, datamodule)
        datamodule.configure(hydra.utils.instantiate(cfg.augment), cfg.data.batch_size, cfg.data.get("size"))
        channels, asked = datamodule.channels, cfg.encoder.get("in_channels")
        if asked is not None and asked != channels:
            raise ValueError(f"encoder.in_channels={asked}, but the data gives {channels}-channel images: add "
                             f"encoder.in_channels={channels} (or null: the data's)")
        with open_dict(cfg):
            if "in_channels" in cfg.encoder and asked is None:
                cfg.encoder.in_channels = channels
        encoder = hydra.utils.instantiate(cfg.encoder)
        shape = [2, datamodule.channels, datamodule.size, datamodule.size]
        out_dim = probe_encoder(encoder, torch.zeros(shape), f"images of the data's shape {shape}")
        random_init = copy.deepcopy(encoder)
        projector = hydra.utils.instantiate(cfg.projector, in_dim=out_dim)
        negatives = None
        if cfg.get("negatives") is not None:
            make = hydra.utils.instantiate(cfg.negatives, dim=cfg.projector.out_dim)
            # a memory bank holds one slot per dataset item: its size comes from the data
            negatives = make(num_items=datamodule.num_items()) if takes(make, "num_items") else make()
        objective = hydra.utils.instantiate(cfg.objective)
        if not is_project_class(type(objective)):
            probe_objective(objective, cfg.projector.out_dim)
        model = hydra.utils.instantiate(cfg.model, encoder=encoder, projector=projector, objective=objective,
                                        optimizer=hydra.utils.instantiate(cfg.optimizer), negatives=negatives,
                                        guard=cfg.guard)
        monitors = [] if cfg.get("monitors") is False else [OnlineMonitors()]
        return {"datamodule": datamodule, "model": model, "random_init": random_init, "callbacks": monitors}

    def evaluate(self, cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer | None) -> dict[str, Any]:
        """k-NN of the trained and untrained encoders and raw pixels; writes eval.json and the plots."""
        dm, model = objects["datamodule"], objects["model"]
        dm.setup("test")
        if dm.num_classes == 0:
            print("\nthe data has no labels (no class folders): k-NN evaluation and the embedding plot are skipped")
            self.report(cfg, trainer, {}, **self.bad_images(dm), evaluation="skipped: the data has no labels")
            plot_loss(os.path.join(cfg.output_dir, "logs", "metrics.csv"), os.path.join(cfg.output_dir, "loss.png"))
            return {}
        gpu = torch.cuda.is_available() and cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto")
        per_image: dict[str, torch.Tensor] = {}
        metrics, feats = evaluate_encoders({"trained": model.encoder, "random_init": objects["random_init"]},
                                           dm, seed=cfg.seed, device="cuda" if gpu else "cpu", per_image=per_image)
        print("\ntop-1 on the test split (knn: all labels, k=20; knn10: 10 labels per class, mean of 5 draws; linear: "
              "logistic regression on frozen features)")
        print(format_table(metrics))
        print(verdict(metrics, per_image))
        self.report(cfg, trainer, metrics, test_images=len(feats["trained"][3]), **self.bad_images(dm))
        plot_embedding(feats["trained"][2], feats["trained"][3], os.path.join(cfg.output_dir, "embedding.png"),
                       "test-split embeddings of the trained encoder (t-SNE)")
        plot_loss(os.path.join(cfg.output_dir, "logs", "metrics.csv"), os.path.join(cfg.output_dir, "loss.png"))
        return metrics

    @staticmethod
    def bad_images(dm: Any) -> dict[str, Any]:
        """How many files were unreadable (found by training and evaluation so far), for eval.json and the log."""
        bad = dm.bad_images()
        if bad is None:
            return {}
        if bad:
            print(f"\n{len(bad)} unreadable image(s) were skipped and replaced, e.g. {bad[:3]}")
        return {"bad_images": len(bad), "bad_image_examples": bad[:10]}


def verdict(metrics: dict[str, float], per_image: dict[str, torch.Tensor] | None = None) -> str:
    """One line: does the trained encoder beat raw pixels on k-NN (all labels and 10 per class), by more than
    the test images' noise (from `per_image`, each metric's top-1 per test image), and if not, what usually helps."""
    if "knn_top1/raw_pixels" not in metrics:
        return "no raw-pixel baseline to compare with (see above)"
    keys = [k for k in ("knn_top1", "knn10_top1") if f"{k}/raw_pixels" in metrics]
    pairs = {k: (metrics[f"{k}/trained"], metrics[f"{k}/raw_pixels"]) for k in keys}
    lost = [k for k, (t, r) in pairs.items() if t < r]
    spread = {k: noise(per_image[f"{k}/trained"], per_image[f"{k}/raw_pixels"]) for k in keys
              if per_image and f"{k}/trained" in per_image and f"{k}/raw_pixels" in per_image}
    unsure = [k for k in spread if abs(pairs[k][0] - pairs[k][1]) < spread[k]]
    caveat = ""
    if unsure:
        n = len(per_image[f"{unsure[0]}/trained"])
        caveat = (f"; on {n:,} test images that is within two standard errors ("
                  + ", ".join(f"{k} ±{spread[k]:.4f}" for k in unsure)
                  + "): more test images (data.test_fraction) would tell")
    if not lost:
        gains = ", ".join(f"{k} +{t - r:.4f}" for k, (t, r) in pairs.items())
        rows = " and ".join({"knn_top1": "with all labels", "knn10_top1": "with 10 per class"}[k] for k in pairs)
        return f"the trained encoder beats raw pixels on k-NN {rows} ({gains}){caveat}"
    gaps = ", ".join(f"{k} {pairs[k][0]:.4f} < {pairs[k][1]:.4f}" for k in lost)
    return (f"WARNING: the trained encoder loses to raw pixels ({gaps}){caveat}; what usually helps: longer "
            "training (trainer.max_epochs), an augmentation recipe suited to the images, a larger batch "
            "(data.batch_size)")
