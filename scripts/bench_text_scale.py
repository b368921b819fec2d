"""Text pairs at scale, on generated text (words drawn from a Zipf vocabulary, so nothing is downloaded):

1. tokenization against training: 100,000 pairs; the time to tokenize every training text once (what setup
   does now, with each tokenizer) beside one epoch of the default text encoder's training steps (forward,
   backward, AdamW) over the same pairs, which read the cached ids;
2. streaming: setting up 1,000,000 pairs with data.stream=true (one pass into memory-mapped ids) vs in memory,
   each in a fresh process: time and peak RSS;
3. embedding: contrastive-embed over 1,000,000 short texts with a small trained run; its peak RSS (the
   process's own high-water mark) and texts/s.

    python scripts/bench_text_scale.py                    # all three
    python scripts/bench_text_scale.py --pairs 20000 --texts 100000   # a quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch


def _name(i: int) -> str:
    """A distinct letter-only word for each i >= 26 (its base-26 digits as letters)."""
    out = ""
    while i:
        out, i = "etaoinshrdlcumwfgypbvkjxqz"[i % 26] + out, i // 26
    return out


def words(n_texts: int, lo: int, hi: int, seed: int) -> list[str]:
    """`n_texts` texts of lo..hi words from a 50,000-word Zipf vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = np.array([_name(i + 26) for i in range(50000)])
    lengths = rng.integers(lo, hi + 1, n_texts)
    ids = np.minimum(rng.zipf(1.2, lengths.sum()), 50000) - 1
    cuts = np.cumsum(lengths)[:-1]
    return [" ".join(vocab[x]) for x in np.split(ids, cuts)]


def write_pairs(path: str, n: int) -> None:
    anchors, positives = words(n, 8, 20, 0), words(n, 20, 60, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write("anchor\tpositive\n")
        f.writelines(f"{a}\t{p}\n" for a, p in zip(anchors, positives))


def epoch_seconds(dm: Any, encoder_opts: dict) -> float:
    """One epoch of dual-encoder steps (CLIP loss, AdamW) over the data module's training pairs."""
    from contrastive.encoders import BagOfTokens
    from contrastive.losses import ClipLoss
    from contrastive.models import DualEncoder
    enc = BagOfTokens(vocab_size=dm.tokenizer.vocab_size, idf=dm.idf, **encoder_opts)
    model = DualEncoder(enc, ClipLoss(), optimizer=None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t = time.perf_counter()
    for batch in dm.train_dataloader():
        loss = model._loss(batch, "train")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def tokenize_vs_epoch(path: str) -> None:
    from contrastive.data import TextPairDataModule
    opts = {"dim": 100, "out_dim": 100, "identity_proj": True, "train_proj": False, "sublinear_tf": True,
            "lexical": True, "dense_weight": 0.8}  # encoder=bag_of_tokens as configured
    print("| tokenizer | setup (read + tokenize once) s | tokenizing every training text s | one epoch s | "
          "tokenizing / epoch |\n|---|---|---|---|---|")
    from contrastive.data.text.subword import SubwordTokenizer
    from contrastive.data.text.tokenizers import HashingTokenizer
    for name, tok in (("hashing", HashingTokenizer(65536, ())), ("subword", SubwordTokenizer(vocab_size=65536))):
        t = time.perf_counter()
        dm = TextPairDataModule(path, batch_size=128, tokenizer=tok, stream=False)
        dm.setup()
        setup = time.perf_counter() - t
        texts = list(dm.token_cache)
        t = time.perf_counter()
        dm.tokenizer.batch(texts)
        tokenize = time.perf_counter() - t
        epoch = epoch_seconds(dm, opts)
        print(f"| {name} | {setup:.1f} | {tokenize:.2f} | {epoch:.1f} | {100 * tokenize / epoch:.1f}% |", flush=True)


def stream_child(path: str, stream: str) -> None:
    from contrastive.data import TextPairDataModule
    t = time.perf_counter()
    dm = TextPairDataModule(path, batch_size=128, stream=stream == "True")  # hashed words, 65,536 ids
    dm.setup()
    print(f"| {stream} | {len(dm.train_pairs):,} | {time.perf_counter() - t:.1f} | {peak_rss_gib():.2f} |", flush=True)


def peak_rss_gib() -> float:
    """This process's peak resident set: VmHWM (ru_maxrss of an exec'd child starts at its parent's, since
    Linux carries the old address space's high-water mark across exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmHWM")) / 2**20
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def embed_child(run_dir: str, texts: str, out: str) -> None:
    from contrastive.cli.embed import embed_text_file
    t = time.perf_counter()
    n, lexical = embed_text_file(run_dir, texts, out, progress=False)
    dt = time.perf_counter() - t
    peak = peak_rss_gib()
    size = (os.path.getsize(out) + (os.path.getsize(lexical) if lexical else 0)) / 2**20
    print(f"contrastive-embed: {n:,} texts in {dt:.1f} s = {n / dt:,.0f} texts/s; peak RSS {peak:.2f} GiB; "
          f"output {size:,.0f} MiB (dense .npy + sparse .npz)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100000)
    ap.add_argument("--texts", type=int, default=1000000)
    ap.add_argument("--only", choices=["tokenize", "stream", "embed"], default=None)
    ap.add_argument("--stream-pairs", type=int, default=1000000)
    ap.add_argument("--embed-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--stream-child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.embed_child:
        return embed_child(*a.embed_child)
    if a.stream_child:
        return stream_child(*a.stream_child)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = os.path.join(tmp, "pairs.tsv")
        write_pairs(pairs, a.pairs)
        if a.only in (None, "tokenize"):
            tokenize_vs_epoch(pairs)
        if a.only in (None, "stream"):
            big = os.path.join(tmp, "big.tsv")
            write_pairs(big, a.stream_pairs)
            print(f"\n{a.stream_pairs:,} pairs, {os.path.getsize(big) / 2**20:,.0f} MiB, each setup in a fresh process:"
                  "\n| data.stream | training pairs | setup s | peak RSS GiB |\n|---|---|---|---|", flush=True)
            for stream in ("False", "True"):
                subprocess.run([sys.executable, __file__, "--stream-child", big, stream], check=True)
        if a.only in (None, "embed"):
            run = os.path.join(tmp, "run")
            train = os.path.join(os.path.dirname(sys.executable), "contrastive-train")
            subprocess.run([train, "experiment=text_pairs_wiki", f"data.path={pairs}", "data.extra_texts=[]",
                            "task.word_vectors.epochs=0", "trainer.max_epochs=1", "trainer.limit_train_batches=20",
                            "evaluate=false", f"hydra.run.dir={run}"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            texts = os.path.join(tmp, "texts.txt")
            with open(texts, "w", encoding="utf-8") as f:
                f.writelines(t + "\n" for t in words(a.texts, 3, 12, 2))
            subprocess.run([sys.executable, __file__, "--embed-child", run, texts, os.path.join(tmp, "out.npy")],
                           check=True)


if __name__ == "__main__":
    main()
