"""After a sweep (`contrastive-train -m ...`): one table of every job's overrides and its numbers, printed and
written to `<sweep dir>/sweep.md`, best `optimized_metric` first."""
from __future__ import annotations

import os
from typing import Any

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from contrastive.eval.report import read_json


def optimized_metric(cfg: DictConfig, task: Any) -> str:
    """The eval.json key a sweep compares: `optimized_metric`, or the task's (class or object) own."""
    return cfg.get("optimized_metric") or task.metric


def sweep_rows(sweep_dir: str) -> list[dict[str, Any]]:
    """`{"overrides": "a=1 b=2", **eval.json}` for each job folder of `sweep_dir` that wrote an eval.json."""
    rows = []
    for name in sorted(os.listdir(sweep_dir), key=lambda n: (len(n), n)):
        job = os.path.join(sweep_dir, name)
        overrides, results = os.path.join(job, ".hydra", "overrides.yaml"), os.path.join(job, "eval.json")
        if os.path.isfile(overrides) and os.path.isfile(results):
            rows.append({"job": name, "overrides": " ".join(OmegaConf.load(overrides)), **read_json(results)})
    return rows


def sweep_table(rows: list[dict[str, Any]], metric: str) -> str:
    """A markdown table: job, overrides, `metric` and the other top-level numbers of the image task."""
    shown = [metric] + [k for k in ("knn_top1/trained", "knn10_top1/trained", "linear_top1/trained", "mrr",
                                    "wordsim353_spearman") if k != metric and any(k in r for r in rows)]
    ordered = sorted(rows, key=lambda r: -(r.get(metric) if isinstance(r.get(metric), float) else float("-inf")))
    lines = ["| job | overrides | " + " | ".join(f"`{k}`" for k in shown) + " |", "|---" * (len(shown) + 2) + "|"]
    for r in ordered:
        cells = [f"{r[k]:.4f}" if isinstance(r.get(k), float) else "" for k in shown]
        lines.append(f"| {r['job']} | `{r['overrides']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


class SweepTable(Callback):
    """Hydra callback (configured in train.yaml): the table of a finished sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        rows = sweep_rows(sweep_dir) if os.path.isdir(sweep_dir) else []
        if not rows:
            return
        metric = optimized_metric(config, hydra.utils.get_class(config.task._target_))
        table = sweep_table(rows, metric)
        with open(os.path.join(sweep_dir, "sweep.md"), "w") as f:
            f.write(table + "\n")
        print(f"\nsweep of {len(rows)} job(s), best {metric} first ({sweep_dir}/sweep.md):\n{table}")
