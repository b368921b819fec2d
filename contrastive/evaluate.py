"""`contrastive-eval RUN_DIR [--checkpoint FILE]`: evaluate a trained image run again, on any of its checkpoints:
k-NN and the linear probe for the trained encoder, its random initialisation and raw pixels, merged into the
run's `eval.json` (the end of `contrastive-train` runs the same evaluation)."""
from __future__ import annotations

import argparse
import os
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import open_dict

from contrastive.export import locate
from contrastive.reliability import check_checkpoint_matches
from contrastive.safe_config import load_run_config
from contrastive.tasks import ImageTask
from contrastive.train import build


def evaluate_run(source: str, checkpoint: str = "last.ckpt") -> dict[str, Any]:
    """The image task's evaluation of `source` (a run directory or a checkpoint file in it); updates eval.json."""
    run_dir, ckpt = locate(source, checkpoint)
    cfg = load_run_config(os.path.join(run_dir, "config.yaml"))
    if not isinstance(hydra.utils.instantiate(cfg.task), ImageTask):
        raise TypeError(f"{run_dir} is not an image run: text-pair and word-vector runs are evaluated at the end "
                         "of training (eval.json)")
    with open_dict(cfg):
        cfg.output_dir = run_dir
    pl.seed_everything(cfg.seed)  # the same random initialisation as the run's untrained copy
    objects = build(cfg)
    objects["model"].load_state_dict(check_checkpoint_matches(ckpt, objects["model"])["state_dict"])
    metrics = objects["task"].evaluate(cfg, objects, None)
    objects["task"].report(cfg, None, {}, evaluated_checkpoint=os.path.abspath(ckpt))
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description="Evaluate a trained image run again (k-NN and linear probe)")
    ap.add_argument("run_dir", help="a run directory of contrastive-train, or one of its checkpoint files")
    ap.add_argument("--checkpoint", default="last.ckpt", help="which file in <run_dir>/checkpoints")
    a = ap.parse_args()
    evaluate_run(a.run_dir, a.checkpoint)
    print(f"updated {os.path.join(locate(a.run_dir, a.checkpoint)[0], 'eval.json')}")


if __name__ == "__main__":
    main()
