"""`contrastive-eval RUN_DIR [--checkpoint FILE] [data.KEY=VALUE ...]`: evaluate a trained run again, on any of its checkpoints,
merged into the run's `eval.json` (the end of `contrastive-train` runs the same evaluation). An image run: k-NN and
the linear probe for the trained encoder, its random initialisation and raw pixels. A text-pair run: held-out
retrieval and the Lee scores beside the random initialisation, the word2vec stage (trained again from the run's
seed), TF-IDF and BM25, with the table and the verdict line. A word-vector run: similarity and analogies (and gensim
beside them where the run compared), `vectors.txt` written again from the checkpoint."""
from __future__ import annotations

import argparse
import os
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from contrastive.cli.run_dir import Run, add_trust_option, opened
from contrastive.runtime.checkpoints import check_checkpoint_matches
from contrastive.runtime.safe_config import trusting
from contrastive.train import seeded_build

_MISSING = object()


def apply_data_overrides(cfg: DictConfig, overrides: list[str]) -> None:
    """`data.KEY=VALUE` items (a data folder that moved: `data.root=NEW`) set on the run's config; the key must
    exist there, and nothing outside `data.` may change (the evaluation would no longer be the run's)."""
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key.startswith("data.") or OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            have = ", ".join(f"data.{k}" for k in cfg.data if k != "_target_")
            raise ValueError(f"{item!r}: contrastive-eval takes data.KEY=VALUE for a key of the run's data ({have})")
        OmegaConf.update(cfg, key, yaml.safe_load(value) if value else value)


def evaluate_run(source: str | Run, checkpoint: str = "last.ckpt", overrides: list[str] | None = None) -> dict[str, Any]:
    """The task's evaluation of `source` (a run directory or a checkpoint file in it); updates eval.json.
    `overrides`: `data.KEY=VALUE` items, e.g. where the data folder or pairs file is now."""
    run = opened(source, checkpoint)
    run_dir, ckpt, cfg = run.path, run.checkpoint, run.config
    apply_data_overrides(cfg, overrides or [])
    with open_dict(cfg):
        cfg.output_dir = run_dir
    objects = seeded_build(cfg)  # the same random initialisation (and word2vec stage) as the run's
    objects["model"].load_state_dict(check_checkpoint_matches(ckpt, objects["model"])["state_dict"])
    try:
        metrics = objects["task"].evaluate(cfg, objects, None)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}\nif the run's data has moved, name its new place: contrastive-eval {run.source} "
                                "data.root=NEW (or data.file_list=NEW, data.path=NEW)") from None
    objects["task"].report(cfg, None, {}, evaluated_checkpoint=os.path.abspath(ckpt))
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description="Evaluate a trained run again: an image run (k-NN, linear probe), a "
                                             "text-pair run (held-out retrieval) or a word-vector run")
    ap.add_argument("run_dir", help="a run directory of contrastive-train, or one of its checkpoint files")
    ap.add_argument("--checkpoint", default="last.ckpt", help="which file in <run_dir>/checkpoints")
    ap.add_argument("overrides", nargs="*", metavar="data.KEY=VALUE",
                    help="a change to the run's data options, e.g. data.root=NEW where the data folder moved")
    add_trust_option(ap)
    a = ap.parse_args()
    with trusting(a.trust.split(",")):
        run = Run(a.run_dir, a.checkpoint)
        evaluate_run(run, overrides=a.overrides)
    print(f"updated {os.path.join(run.path, 'eval.json')}")


if __name__ == "__main__":
    main()
