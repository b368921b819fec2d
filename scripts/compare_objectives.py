"""Each contrastive objective as one override on the default image job and the default text-pairs task, mean over
seeds, as Markdown tables (k-NN, 10-label k-NN and linear probe for images; MRR and recall@1 for text).

    python scripts/compare_objectives.py                                  # both tables, seeds 0-2
    python scripts/compare_objectives.py --part image --seeds 0 --image dcl=objective=dcl

Each option is `name=override override ...` added to `contrastive-train [experiment=...]`; every run writes its
eval.json under --out, and a run whose eval.json is already there is read, not repeated."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

IMAGE = ["ntxent=", "infonce=objective=infonce", "supcon=objective=supcon", "dcl=objective=dcl",
         "dclw=objective=dclw", "debiased=objective=debiased", "hcl=objective=hcl", "sigmoid=objective=sigmoid",
         "nnclr=negatives=nn_support", "align_uniform=objective=align_uniform"]
TEXT = ["clip=", "infonce=objective=infonce", "dcl=objective=dcl", "dclw=objective=dclw",
        "debiased=objective=debiased", "hcl=objective=hcl", "sigmoid=objective=sigmoid",
        "align_uniform=objective=align_uniform"]
PARTS = {"image": ("simclr_digits", ["knn_top1/trained", "knn10_top1/trained", "linear_top1/trained"]),
         "text": ("text_pairs_wiki", ["mrr", "recall_at_1"])}


def run(experiment: str, name: str, overrides: str, seed: int, out: str) -> dict:
    """One training run's eval.json."""
    run_dir = os.path.join(out, experiment, name, f"seed{seed}")
    path = os.path.join(run_dir, "eval.json")
    if not os.path.isfile(path):
        train = os.path.join(os.path.dirname(sys.executable), "contrastive-train")
        subprocess.run([train, f"experiment={experiment}", f"seed={seed}", f"hydra.run.dir={run_dir}",
                        "trainer.enable_progress_bar=false", *overrides.split()], check=True,
                       stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def table(experiment: str, options: list[str], columns: list[str], seeds: list[int], out: str) -> str:
    """The Markdown table of `options`: mean (and standard deviation) over `seeds` of each column."""
    lines = [f"| objective (`{experiment}`, {len(seeds)} seeds) | override | "
             + " | ".join(f"`{c}`" for c in columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for option in options:
        name, _, overrides = option.partition("=")
        runs = [run(experiment, name, overrides, s, out) for s in seeds]
        for seed, r in zip(seeds, runs, strict=True):
            print(f"{experiment} {name} seed {seed}: " + ", ".join(f"{c} {r[c]:.4f}" for c in columns), flush=True)
        cells = [f"{statistics.mean(r[c] for r in runs):.4f}"
                 + (f" ± {statistics.stdev(r[c] for r in runs):.4f}" if len(runs) > 1 else "") for c in columns]
        lines.append(f"| {name} | `{overrides or '(default)'}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["image", "text", "both"], default="both")
    ap.add_argument("--image", nargs="+", default=IMAGE)
    ap.add_argument("--text", nargs="+", default=TEXT)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default="outputs/compare_objectives")
    a = ap.parse_args()
    tables = []
    for part in ("image", "text"):
        if a.part in (part, "both"):
            experiment, columns = PARTS[part]
            tables.append(table(experiment, getattr(a, part), columns, a.seeds, a.out))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
