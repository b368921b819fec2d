"""Word vectors side by side on one corpus: our NCE, our negative sampling, and gensim's Word2Vec(sg=1,
2 workers), with the same dimension, window, min_count, subsampling and epochs; words/second and wordsim353 /
simlex999 Spearman.

    python scripts/bench_word2vec.py [--epochs 5] [--corpus enwiki_sample]
"""
from __future__ import annotations

import argparse
import os
import tempfile

from hydra import compose, initialize_config_module
from omegaconf import open_dict

from contrastive.data.corpus import load_corpus
from contrastive.eval.words import gensim_baseline, word_metrics
from contrastive.train import train


def ours(objective: list[str], a: argparse.Namespace) -> dict[str, float]:
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=word2vec_wiki", f"data.corpus={a.corpus}",
                                          f"trainer.max_epochs={a.epochs}", "trainer.enable_progress_bar=false",
                                          "logger=none", f"model.dim={a.dim}", f"data.window={a.window}",
                                          *objective])
    with open_dict(cfg):
        cfg.output_dir = tempfile.mkdtemp()
    metrics, _ = train(cfg)
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="enwiki_sample")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    a = ap.parse_args()
    rows = {"ours, NCE (log-uniform, 64 negatives)": ours(["objective=nce", "num_negatives=64"], a),
            "ours, negative sampling (5 negatives)": ours(["objective=neg_sampling", "num_negatives=5"], a)}
    vec, words, wps = gensim_baseline(load_corpus(a.corpus), a.dim, a.window, 5, 5, a.epochs, 1e-3, 0, workers=2)
    rows["gensim Word2Vec(sg=1, negative=5, workers=2)"] = {**word_metrics(vec, words), "words_per_second": wps}
    print(f"# corpus {a.corpus}, {a.epochs} epochs, dim {a.dim}, window {a.window}, {os.cpu_count()} CPUs")
    print("| model | words/s | wordsim353 | simlex999 | analogy (coverage) |")
    print("|---|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['words_per_second']:,.0f} | {m['wordsim353_spearman']:.3f} | "
              f"{m['simlex999_spearman']:.3f} | {m['analogy_accuracy']:.3f} ({m['analogy_coverage']:.2f}) |")


if __name__ == "__main__":
    main()
