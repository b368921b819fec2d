"""Word vectors side by side on one corpus: our NCE, our negative sampling, and gensim's Word2Vec(sg=1,
2 workers), with the same dimension, window, min_count, subsampling and epochs; words/second and wordsim353 /
simlex999 Spearman, then `--rounds` alternating throughput duels of ours and gensim (the training loop, progress
bar and loggers off, beside the kernel-only figure: raw words over the seconds spent inside the compiled step).
`--zipf-tokens N` adds a throughput-only run on a synthetic corpus of N tokens (Zipf law, exponent 1.1, over 200k
word types, sentences of 20 words; seed 0), 1 epoch each. `--user-rounds R` then runs what a user runs, R times
on each corpus: `contrastive-train experiment=word2vec_wiki task.compare_gensim=true` as a new process with every
default (progress bar, loggers, checkpoints), whose eval.json holds ours and gensim's words/s from the same run.

    python scripts/bench_word2vec.py [--epochs 5] [--data enwiki_sample] [--zipf-tokens 10000000] [--rounds 3]
    python scripts/bench_word2vec.py --rounds 0 --zipf-tokens 10000000 --user-rounds 3 --user-only
    python scripts/bench_word2vec.py --batched-only --device cuda --zipf-tokens 2000000   # the batched paths, GPU
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import hydra
import numpy as np
from hydra import compose, initialize_config_module
from omegaconf import open_dict

from contrastive.eval.words import gensim_baseline, word_metrics
from contrastive.train import train
from contrastive.word2vec import hogwild


def zipf_corpus(path: str, tokens: int, types: int = 200_000, exponent: float = 1.1, length: int = 20) -> None:
    """Write `tokens` Zipf-distributed words (`w0` most frequent), `length` words per line."""
    p = np.arange(1, types + 1, dtype=np.float64) ** -exponent
    ids = np.random.default_rng(0).choice(types, size=tokens // length * length, p=p / p.sum())
    words = np.char.add("w", np.arange(types).astype(str))
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(" ".join(row) + "\n" for row in words[ids].reshape(-1, length))


def sentences(data: str) -> list[list[str]]:
    """The corpus of the skip-gram data config `data`, as token lists."""
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        return hydra.utils.instantiate(compose("train", overrides=["experiment=word2vec_wiki", f"data={data}"]).data
                                       ).sentences()


def ours(objective: list[str], a: argparse.Namespace, corpus: str | None = None, epochs: int | None = None,
         evaluate: bool = True, trainer: tuple[str, ...] = ()) -> dict[str, float]:
    data = ["data=text_file", f"data.corpus={corpus}"] if corpus else [f"data={a.data}"]
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=word2vec_wiki", *data, f"evaluate={evaluate}", *trainer,
                                          f"trainer.max_epochs={epochs or a.epochs}", "trainer.enable_progress_bar=false",
                                          "logger=none", f"model.dim={a.dim}", f"data.window={a.window}",
                                          *objective])
    with open_dict(cfg):
        cfg.output_dir = tempfile.mkdtemp()
    spent = [0.0]
    inner = hogwild.hogwild_stream

    def timed(*args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        spent[0] += time.perf_counter() - t
        return out
    hogwild.hogwild_stream = timed
    try:
        metrics, objects = train(cfg)
    finally:
        hogwild.hogwild_stream = inner
    if not evaluate:  # throughput only
        dm, model = objects["datamodule"], objects["model"]
        words = dm.raw_tokens * (epochs or a.epochs)
        return {"words_per_second": words / model.fit_seconds, "kernel_words_per_second": words / max(spent[0], 1e-9)}
    return metrics


def user_visible(a: argparse.Namespace, zipf: str | None) -> None:
    """`a.user_rounds` default runs of contrastive-train with task.compare_gensim=true on each corpus, alternating
    corpora; each round's words/s of ours and of gensim come from the same run's eval.json."""
    corpora = {f"data={a.data}": [f"data={a.data}"]} | ({"Zipf": ["data=text_file", f"data.corpus={zipf}"]}
                                                          if zipf else {})
    print("\n# user-visible: contrastive-train experiment=word2vec_wiki task.compare_gensim=true, every default\n"
          "| corpus | round | ours words/s | gensim words/s | ours / gensim | wordsim353 | gensim wordsim353 |\n"
          "|---|---|---|---|---|---|---|")
    for r in range(a.user_rounds):
        for name, data in corpora.items():
            out = tempfile.mkdtemp()
            subprocess.run([sys.executable, "-m", "contrastive.train", "experiment=word2vec_wiki", *data,
                            "task.compare_gensim=true", f"hydra.run.dir={out}"], check=True, capture_output=True)
            with open(os.path.join(out, "eval.json")) as f:
                m = json.load(f)
            ours_wps, theirs = m["words_per_second"], m["gensim_words_per_second"]
            ws = [m[k] for k in ("wordsim353_spearman", "gensim_wordsim353_spearman")]  # None: no word of it
            print(f"| {name} | {r + 1} | {ours_wps:,.0f} | {theirs:,.0f} | {ours_wps / theirs:.2f} | "
                  + " | ".join("-" if v is None else f"{v:.3f}" for v in ws) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="enwiki_sample", help="a skip-gram data config: enwiki_sample or lee")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--zipf-tokens", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="throughput duels after the table: ours (NCE, 5 negatives) and gensim alternately")
    ap.add_argument("--batched-only", action="store_true", help="only the batched paths, Zipf corpus, on --device")
    ap.add_argument("--user-rounds", type=int, default=0, help="default contrastive-train runs per corpus, at the end")
    ap.add_argument("--user-only", action="store_true", help="only the user-visible rounds")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    if a.batched_only:
        return batched_on_device(a)
    zipf = None
    if a.zipf_tokens:
        zipf = os.path.join(tempfile.mkdtemp(), "zipf.txt")
        zipf_corpus(zipf, a.zipf_tokens)
    if a.user_only:
        return user_visible(a, zipf)
    nce, ns = ["objective=nce", "num_negatives=5"], ["objective=neg_sampling", "candidates=none",
                                                       "num_negatives=5"]
    batched = ["data.batch_size=2048"]
    rows = {"ours, NCE (log-uniform, 5 negatives), hogwild": ours(nce + ["step=hogwild"], a),
            "ours, negative sampling (5 negatives), hogwild": ours(ns + ["step=hogwild"], a),
            "ours, NCE (log-uniform, 64 negatives), hogwild": ours(["objective=nce", "num_negatives=64",
                                                                  "step=hogwild"], a),
            "ours, NCE (5 negatives per pair), per_pair (the GPU path, here on CPU)": ours(
                nce + ["step=per_pair"], a),
            "ours, NCE (5 negatives shared by the batch), sgd, batch 2048": ours(nce + batched + ["step=sgd"], a),
            "ours, NCE (5 negatives shared by the batch), adam, batch 2048": ours(nce + batched + ["step=adam"], a)}
    vec, words, wps = gensim_baseline(sentences(a.data), a.dim, a.window, 5, 5, a.epochs, 1e-3, 0, workers=2)
    rows["gensim Word2Vec(sg=1, negative=5, workers=2)"] = {**word_metrics(vec, words), "words_per_second": wps}
    print(f"# data={a.data}, {a.epochs} epochs, dim {a.dim}, window {a.window}, {os.cpu_count()} CPUs; words/s "
          "excludes hogwild's one-off compilation (~5 s)")
    ratio = rows[next(iter(rows))]["words_per_second"] / rows["gensim Word2Vec(sg=1, negative=5, workers=2)"][
        "words_per_second"]
    k64 = rows[next(iter(rows))]["words_per_second"] / rows["ours, NCE (log-uniform, 64 negatives), hogwild"][
        "words_per_second"]
    print(f"# ours (NCE, 5 negatives, hogwild) / gensim words/s: {ratio:.2f}; NCE 64 negatives takes {k64:.1f}x the "
          "time of 5")
    if a.rounds:
        duel(nce + ["step=hogwild"], a, sentences(a.data))
    print("| model | words/s | wordsim353 | simlex999 | analogy (coverage) |")
    print("|---|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {m['words_per_second']:,.0f} | {m['wordsim353_spearman']:.3f} | "
              f"{m['simlex999_spearman']:.3f} | {m['analogy_accuracy']:.3f} ({m['analogy_coverage']:.2f}) |")
    if zipf:
        path = zipf
        from contrastive.data.text.corpus import read_text_file
        rates = {"ours, NCE (5), hogwild": ours(nce, a, corpus=path, epochs=1, evaluate=False),
                 "ours, negative sampling (5), hogwild": ours(ns, a, corpus=path, epochs=1, evaluate=False)}
        _, _, g = gensim_baseline(read_text_file(path), a.dim, a.window, 5, 5, 1, 1e-3, 0, workers=2)
        print(f"\n# synthetic Zipf corpus, {a.zipf_tokens:,} tokens, 1 epoch: words/s; ours (NCE) / gensim: "
              f"{rates['ours, NCE (5), hogwild']['words_per_second'] / g:.2f}")
        for name, m in rates.items():
            print(f"| {name} | {m['words_per_second']:,.0f} |")
        print(f"| gensim (negative=5, workers=2) | {g:,.0f} |")
    if a.user_rounds:
        user_visible(a, zipf)


def duel(objective: list[str], a: argparse.Namespace, sentences: list[list[str]]) -> None:
    """words/s of ours and of gensim, alternately `a.rounds` times (training only, no evaluation): on a shared
    machine one run of each can land in a slow and a fast moment; the median of the per-round ratios cannot."""
    ratios = []
    for r in range(a.rounds):
        got = ours(objective, a, evaluate=False)
        mine = got["words_per_second"]
        theirs = gensim_baseline(sentences, a.dim, a.window, 5, 5, a.epochs, 1e-3, r, workers=2)[2]
        ratios.append(mine / theirs)
        print(f"# round {r + 1}: ours {mine:,.0f} (kernel only {got['kernel_words_per_second']:,.0f}), gensim "
              f"{theirs:,.0f} words/s: {ratios[-1]:.2f}", flush=True)
    print(f"# median ours / gensim over {a.rounds} rounds: {sorted(ratios)[len(ratios) // 2]:.2f}")


def batched_on_device(a: argparse.Namespace) -> None:
    """words/s of the batched word2vec paths on `--device`, Zipf corpus, 1 epoch.
    Batched SGD is left out: at batch 16,384 it diverged (an infinite loss at step 12 on an H200)."""
    import torch
    path = os.path.join(tempfile.mkdtemp(), "zipf.txt")
    zipf_corpus(path, a.zipf_tokens or 2_000_000)
    gpu = ("trainer=gpu" if a.device == "cuda" else "trainer=cpu", "trainer.precision=32-true", "trainer.devices=1")
    name = torch.cuda.get_device_name() if a.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"# {name}; synthetic Zipf corpus, {a.zipf_tokens or 2_000_000:,} tokens, 1 epoch, "
          f"dim {a.dim}: words/s (the skip-gram pairs are made on the CPU; batch 65,536 for per_pair, 16,384 for "
          "adam)")
    print("| model | words/s |")
    print("|---|---|")
    for name, over in (("NCE (5 negatives per pair), per_pair", ["objective=nce", "num_negatives=5",
                                                                 "step=per_pair"]),
                       ("negative sampling (5 per pair), per_pair", ["objective=neg_sampling", "candidates=none",
                                                                     "num_negatives=5", "step=per_pair"]),
                       ("NCE (64 negatives per pair), per_pair", ["objective=nce", "num_negatives=64",
                                                                  "step=per_pair"]),
                       ("NCE (64 negatives shared by the batch), adam", ["objective=nce", "num_negatives=64",
                                                                         "step=adam",
                                                                         "data.batch_size=16384"]),
                       ("negative sampling (64 per pair), adam", ["objective=neg_sampling", "candidates=none",
                                                                  "num_negatives=64", "step=adam",
                                                                  "data.batch_size=16384"])):
        m = ours(over, a, corpus=path, epochs=1, evaluate=False, trainer=gpu)
        print(f"| {name} | {m['words_per_second']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
