"""Held-out retrieval of the text-pairs task under each option, mean over seeds, as a Markdown table.

    python scripts/compare_text_options.py                       # the default task, hashed words, mined negatives
    python scripts/compare_text_options.py --seeds 0 --options "base=" "bm25=data/miner=bm25"
    python scripts/compare_text_options.py --experiment text_pairs_torch --options "default="

Each option is `name=override override ...` added to `contrastive-train experiment=<experiment>`; every run
writes its eval.json under --out."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from contrastive.eval.retrieval import TEXT_COLUMNS, text_table

OPTIONS = ["default=", "hashing=data/tokenizer=hashing", "bm25=data/miner=bm25",
           "tfidf=data/miner=tfidf", "model=data/miner=model"]

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="text_pairs_wiki")
    ap.add_argument("--options", nargs="+", default=OPTIONS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default="outputs/compare_text_options")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every run")
    a = ap.parse_args()
    train = os.path.join(os.path.dirname(sys.executable), "contrastive-train")
    rows = []
    for option in a.options:
        name, _, overrides = option.partition("=")
        runs = []
        for seed in a.seeds:
            run_dir = os.path.join(a.out, a.experiment, name, f"seed{seed}")
            t = time.perf_counter()
            subprocess.run([train, f"experiment={a.experiment}", f"seed={seed}", f"hydra.run.dir={run_dir}",
                            *overrides.split(), *a.extra], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(run_dir, "eval.json")) as f:
                runs.append(json.load(f))
            print(f"{name} seed {seed}: mrr {runs[-1]['mrr']:.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
        rows.append((name, overrides, runs))
    print(f"\n| option ({len(a.seeds)} seed(s), mean) | " + " | ".join(TEXT_COLUMNS) + " | tfidf_mrr | bm25_mrr |")
    print("|---" * (len(TEXT_COLUMNS) + 3) + "|")
    for name, overrides, runs in rows:
        cells = [f"{statistics.mean(r[c] for r in runs):.3f}" for c in [*TEXT_COLUMNS, "tfidf_mrr", "bm25_mrr"]]
        print(f"| {name} `{overrides}` | " + " | ".join(cells) + " |")
    print("\nEach option's encoders, mean over seeds:")
    for name, _, runs in rows:
        mean = {k: statistics.mean(r[k] for r in runs) for k, v in runs[0].items() if isinstance(v, float)}
        print(f"\n{name}\n{text_table(mean)}")
    for name, _, runs in rows:
        gain = [r["mrr"] - r.get("mrr_word2vec_init", float("nan")) for r in runs]
        lexical = [r["mrr"] / max(r["tfidf_mrr"], r["bm25_mrr"]) for r in runs]
        print(f"{name}: trained - word2vec stage per seed " + ", ".join(f"{g:+.3f}" for g in gain)
              + "; trained / better of TF-IDF and BM25 per seed " + ", ".join(f"{x:.2f}x" for x in lexical))
    print("per seed mrr: " + "; ".join(f"{n}: " + ", ".join(f"{r['mrr']:.3f}" for r in runs) for n, _, runs in rows))


if __name__ == "__main__":
    main()
