"""Text pairs for dual encoders: a user's TSV / CSV / JSONL file (`anchor`, `positive`, optional `negative`
columns), or an embedded set: consecutive paragraphs of the Wikipedia sample shipped in gensim (the default,
split by article into training and held-out sets) or docstring -> code pairs of the Python standard library
(split by module), or any object with `read(split)` (`data.builtin`). Tokenised with no downloads by the
`data.tokenizer` object: lower-cased words (plus hashed character n-grams) in a fixed-size vocabulary, or
WordPiece pieces learned from the training texts."""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader

from contrastive.checks import keeps_contract
from contrastive.data.resumable import EpochSampler, ResumablePosition
from contrastive.data.text.builtin_pairs import CropPairs, WikiParagraphs
from contrastive.data.text.corpus import as_corpus
from contrastive.data.text.mining import Miner
from contrastive.data.text.pair_files import HINT, PairFile, existing
from contrastive.data.text.token_store import scratch_dir, split_rows, store_pairs
from contrastive.data.text.tokenizers import HashingTokenizer

HELDOUT_MAX = 10000  # held-out rows kept as text when a file is streamed (data.heldout_max=null)
STREAM_BYTES = 256 * 2**20  # pair files larger than this are streamed into memory-mapped ids (data.stream=null)


def refuse_ignored(path: str | None, builtin: Any, stream: bool | None, heldout_max: int | None,
                   cache_dir: str | None) -> None:
    """Options that would have no effect with the others given: an error naming the option and what it needs."""
    unused = []
    if path is not None and builtin is not None:
        unused.append(f"data.builtin={type(builtin).__name__} (the embedded set used only while data.path is null)")
    for key, value in (("heldout_max", heldout_max), ("cache_dir", cache_dir)):
        if value is not None and (stream is False or path is None):
            unused.append(f"data.{key}={value} (for a streamed pairs file: data.path with data.stream=true, or "
                          "null for files over 256 MiB)")
    if unused:
        raise ValueError("these options would be ignored: " + "; ".join(unused) + ". Remove them")


class TextPairDataModule(ResumablePosition, pl.LightningDataModule):
    """Batches `{anchor [B, L], positive [B, L], negatives [B, K, L] or None, ids [B]}` of token ids (0 pads);
    `ids` numbers distinct positive texts, so a text repeated in a batch is masked, not pushed apart."""

    def __init__(self, path: str | None = None, heldout_fraction: float = 0.2, batch_size: int = 128,
                 tokenizer: Any = None, split_seed: int = 0, shuffle_seed: int = 0, crops_per_text: int = 0,
                 extra_texts: tuple[Any, ...] = (), miner: Miner | None = None, builtin: Any = None,
                 stream: bool | None = None, heldout_max: int | None = None, cache_dir: str | None = None) -> None:
        super().__init__()
        self.stream, self.heldout_max, self.cache_dir = stream, heldout_max or HELDOUT_MAX, cache_dir
        self._stream_options = [f"data.{k}={v}" for k, v in (("heldout_max", heldout_max), ("cache_dir", cache_dir))
                                if v is not None]
        refuse_ignored(path, builtin, stream, heldout_max, cache_dir)
        # null: a user's file at `path`, else the Wikipedia paragraphs; any object with `read(split)` serves
        self.source = PairFile(path) if path else keeps_contract(
            builtin or WikiParagraphs(), "data.builtin", ("read",), "use data=wiki_pairs or data=code_pairs")
        if crops_per_text < 0:
            raise ValueError(f"crops_per_text must be >= 0, got {crops_per_text}")
        self.miner = miner if miner is None else keeps_contract(
            miner, "data.miner", ("mine", "k", "needs_encoder"), "choose one with data/miner=bm25|tfidf|model")
        self.extra_texts = [as_corpus(c) for c in extra_texts]
        for i, c in enumerate(self.extra_texts):
            keeps_contract(c, f"data.extra_texts[{i}]", ("lines",), "give paths to text files (one document per "
                           "line) or a GensimFile (the Lee corpus); a WikiDump's articles are the held-out set")
        self.crops_per_text = crops_per_text
        self.path, self.heldout_fraction, self.batch_size = path, heldout_fraction, batch_size
        self.tokenizer = keeps_contract(tokenizer or HashingTokenizer(), "data.tokenizer",
                                        ("__call__", "batch", "token_id", "vocab_size"),
                                        "choose one with data/tokenizer=hashing|subword")
        self.split_seed, self.shuffle_seed = split_seed, shuffle_seed

    def streaming(self) -> bool:
        """Whether `path` is read row by row into memory-mapped token ids (`stream`; null: files over
        STREAM_BYTES)."""
        if not self.path:
            return False
        return self.stream if self.stream is not None else os.path.getsize(existing(
            self.path, "pairs file", HINT)) > STREAM_BYTES

    def _setup_stream(self) -> None:
        """Tokenize the file once into memory-mapped ids; only held-out rows stay as text."""
        used = [f"{k}={v}" for k, v in (("crops_per_text", self.crops_per_text), ("extra_texts", self.extra_texts),
                                        ("miner", self.miner)) if v]
        if used:
            raise ValueError(f"data.stream reads {self.path} row by row and keeps token ids only; {', '.join(used)} "
                             "need(s) the texts in memory: set data.stream=false or leave them out")
        t = time.perf_counter()
        args = (self.heldout_fraction, self.heldout_max, self.split_seed)
        if not getattr(self.tokenizer, "trained", True):  # a tokenizer that learns from the texts
            self.tokenizer.train(t for r, held in split_rows(self.path, *args) if not held
                                 for t in (r["anchor"], r["positive"]))
        got = store_pairs(self.path, self.tokenizer.batch, self.tokenizer.vocab_size, *args,
                          scratch_dir(self.cache_dir))
        self.train_pairs, self.heldout, self.fit_texts = got["pairs"], got["heldout"], got["fit_texts"]
        self.train_texts, self.crops, self.positives = None, None, None
        self.idf = self._idf(torch.from_numpy(got["df"]).float(), got["n_docs"])
        self.avg_len = got["avg_len"]
        print(f"tokenized {len(self.train_pairs):,} training pairs of {self.path} into memory-mapped ids "
              f"({len(self.heldout):,} held out) in {time.perf_counter() - t:.1f} s")
        self._check_batch_fits()

    def _check_batch_fits(self) -> None:
        if len(self.train_pairs) < self.batch_size:
            raise ValueError(f"{len(self.train_pairs)} training pairs, fewer than data.batch_size={self.batch_size}; "
                             "lower the batch size or add pairs")

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The held-out and the training indices of `n` groups (pairs, articles or modules): a seeded permutation,
        `heldout_fraction` of it held out."""
        perm = np.random.default_rng(self.split_seed).permutation(n)
        k = round(n * self.heldout_fraction)
        return perm[:k], perm[k:]

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_pairs"):
            return
        if self.streaming():
            self._setup_stream()
            return
        if self._stream_options:
            raise ValueError(f"{', '.join(self._stream_options)} would be ignored: {self.path} is read into memory "
                             "(under 256 MiB); set data.stream=true to stream it, or remove them")
        self.heldout, self.train_pairs, texts = self.source.read(self._split)
        self._check_batch_fits()
        positives: dict[str, int] = {}
        for p in self.train_pairs:
            p["id"] = positives.setdefault(p["positive"], len(positives))
        if len(positives) < 2 or len(positives) < 0.5 * len(self.train_pairs):
            # a repeated positive is masked as a negative of its copies: with few distinct ones the batches hold
            # few negatives (with one, none: the loss is 0 and nothing is learned)
            warnings.warn(f"{len(self.train_pairs)} training pairs hold only {len(positives)} distinct positive "
                          "text(s); repeated ones are not negatives of each other, so the batches hold few "
                          "negatives" + (" (none: the loss is 0)" if len(positives) < 2 else "") +
                          "; remove the duplicates or add pairs")
        self.positives = list(positives)  # the distinct positive texts, by id
        if self.miner is not None and not self.miner.needs_encoder:
            self.add_mined()
        texts += [line for corpus in self.extra_texts for line in corpus.lines()]
        self.crops = CropPairs(texts, self.crops_per_text, len(positives), self.shuffle_seed) if self.crops_per_text \
            else None
        self.train_texts = texts  # every training text once
        self.fit_texts = [t for p in self.train_pairs for t in (p["anchor"], p["positive"])]  # TF-IDF's
        if not getattr(self.tokenizer, "trained", True):
            self.tokenizer.train(texts)
        # every text's token ids, computed once: the IDF counts them, and collate reads the pairs' every epoch
        # instead of tokenizing again (crops are fresh text at every access and are tokenized as they come)
        pair_texts = list(dict.fromkeys(t for p in self.train_pairs for t in (p["anchor"], p["positive"],
                                                                              *p.get("negatives", ()))))
        unique = list(dict.fromkeys([*texts, *pair_texts]))
        ids = dict(zip(unique, self.tokenizer.batch(unique)))
        self.idf = self._counted_idf([ids[t] for t in texts])
        self.avg_len = float(np.mean([len(ids[t]) for t in texts]))  # tokens per training text, for BM25's tf
        self.token_cache = {t: np.asarray(ids[t], dtype=np.int32) for t in pair_texts}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must carry: the training position, and to tokenize as in training a learned
        tokenizer's vocabulary (`to_str`)."""
        subword = {"subword": self.tokenizer.to_str()} if hasattr(self.tokenizer, "to_str") else {}
        return {**super().state_dict(), **subword}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state.items() if k != "subword"})
        if "subword" in state and hasattr(self.tokenizer, "load"):
            self.tokenizer.load(state["subword"])

    def add_mined(self, embed: Callable[[list[str], str], Any] | None = None) -> None:
        """Append `miner.k` mined hard negatives to every training pair's negatives (the distinct training
        positives scored by the miner; `embed(texts, side)` for one that needs the encoder)."""
        t = time.perf_counter()
        anchors = [p["anchor"] for p in self.train_pairs]
        found = self.miner.mine(anchors, [p["id"] for p in self.train_pairs], self.positives, embed)
        for p, got in zip(self.train_pairs, found):
            p["negatives"] = p.get("negatives", []) + [self.positives[j] for j in got]
        print(f"mined {self.miner.k} {self.miner.name} negative(s) for each of {len(anchors):,} pairs in "
              f"{time.perf_counter() - t:.1f} s")

    def token_idf(self, docs: list[str]) -> torch.Tensor:
        """Smoothed inverse document frequency `[vocab_size]` of the hashed tokens over `docs` (as scikit-learn:
        log((1 + n) / (1 + df)) + 1)."""
        return self._counted_idf(self.tokenizer.batch(docs))

    def _counted_idf(self, docs: list[list[int]]) -> torch.Tensor:
        df = np.zeros(self.tokenizer.vocab_size, dtype=np.int64)
        for ids in docs:
            df[np.unique(np.asarray(ids, dtype=np.int64))] += 1
        return self._idf(torch.from_numpy(df).float(), len(docs))

    @staticmethod
    def _idf(df: torch.Tensor, n: int) -> torch.Tensor:
        return torch.log((1 + n) / (1 + df)) + 1

    def pad(self, texts: list[str | np.ndarray]) -> torch.Tensor:
        """`[len(texts), L]` token ids, right-padded with 0, of texts or token-id arrays (a training pair's texts
        from the cache)."""
        cache = getattr(self, "token_cache", {})
        ids = [t if isinstance(t, np.ndarray) else cache[t] if t in cache else np.asarray(self.tokenizer(t), np.int32)
               for t in texts]
        out = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, :len(row)] = torch.tensor(row)  # a copy: memory-mapped ids are read-only
        return out

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        k = max(len(r["negatives"]) for r in rows)
        negs = None
        if k:  # rows with fewer hard negatives repeat their last one; rows with none get empty texts
            flat = [(r["negatives"] + r["negatives"][-1:] * k)[:k] if r["negatives"] else [""] * k for r in rows]
            negs = self.pad([t for f in flat for t in f]).view(len(rows), k, -1)
        return {"anchor": self.pad([r["anchor"] for r in rows]), "positive": self.pad([r["positive"] for r in rows]),
                "negatives": negs, "ids": torch.tensor([r.get("id", -1) for r in rows])}

    def train_dataloader(self) -> DataLoader:
        data = self.train_pairs if self.crops is None else ConcatDataset([self.train_pairs, self.crops])
        sampler = EpochSampler(len(data), self.shuffle_seed)  # an order per epoch, resumable mid-epoch
        if self._resume:  # set by load_state_dict when Lightning restores a checkpoint
            sampler.resume_at(self._resume["epoch"], self._resume["consumed_batches"] * self.batch_size)
            self._resume = None
        # its own generator: starting an epoch's iterator must not draw from the global RNG a checkpoint restores
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler, drop_last=True, collate_fn=self.collate,
                          generator=torch.Generator().manual_seed(self.shuffle_seed))
