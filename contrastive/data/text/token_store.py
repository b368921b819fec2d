"""Pair files larger than memory: one pass tokenizes every row into memory-mapped token ids (`TokenStore`),
and `StoredPairs` serves the training rows from there; only the held-out rows are kept as text."""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from contrastive.data.text.pair_files import iter_pairs

BLOCK = 1024  # rows tokenized together
FIT_SAMPLE = 20000  # training texts kept (a uniform sample) for the TF-IDF baseline


class TokenStore:
    """The token ids of many texts: `add(ids)` while writing, then `close()`; `store[i]` is text i's ids (a view
    into the memory-mapped file)."""

    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "ids.int32")
        self._file = open(self.path, "wb")  # noqa: SIM115 (written by add(), closed by close())
        self._offsets = array("q", [0])

    def add(self, ids: list[int]) -> int:
        """Store one text's ids; its index."""
        self._file.write(np.asarray(ids, dtype=np.int32).tobytes())
        self._offsets.append(self._offsets[-1] + len(ids))
        return len(self._offsets) - 2

    def close(self) -> None:
        self._file.close()
        self.offsets = np.frombuffer(self._offsets, dtype=np.int64)
        self.ids = np.memmap(self.path, dtype=np.int32, mode="r") if self.offsets[-1] else np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]


class StoredPairs(Dataset):
    """Training rows `{anchor, positive, negatives, id}` as token-id arrays read from a `TokenStore`."""

    def __init__(self, store: TokenStore, rows: np.ndarray, neg_start: np.ndarray, negs: np.ndarray,
                 ids: np.ndarray) -> None:
        self.store, self.rows, self.neg_start, self.negs, self.ids = store, rows, neg_start, negs, ids

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        a, p = self.rows[i]
        negs = self.negs[self.neg_start[i]:self.neg_start[i + 1]]
        return {"anchor": self.store[a], "positive": self.store[p], "negatives": [self.store[j] for j in negs],
                "id": int(self.ids[i])}


def split_rows(path: str, fraction: float, cap: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """`(row, held_out)` for every row of a pair file: each row is held out with probability `fraction`
    (seeded), until `cap` rows are."""
    rng, held = np.random.default_rng(seed), 0
    for row in iter_pairs(path):
        out = held < cap and rng.random() < fraction
        held += out
        yield row, out


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def scratch_dir(directory: str | None) -> str:
    """`directory`'s folder for this process (`rank<N>`: DDP processes each write their own), or a temporary
    folder removed when the process exits."""
    if directory:
        return os.path.join(directory, f"rank{os.environ.get('RANK', os.environ.get('LOCAL_RANK', '0'))}")
    tmp = tempfile.mkdtemp(prefix="contrastive-tokens-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


def store_pairs(path: str, tokenize: Callable[[list[str]], list[list[int]]], vocab_size: int, fraction: float,
                cap: int, seed: int, directory: str) -> dict[str, Any]:
    """One pass over a pair file: the training rows' token ids into a store, document frequencies and the mean
    length in tokens of their anchors and positives, a sample of their texts, and the held-out rows as text."""
    store, heldout, df, n_docs, n_tokens = TokenStore(directory), [], np.zeros(vocab_size, np.int64), 0, 0
    rows, neg_start, negs, hashes = array("q"), array("q", [0]), array("q"), array("q")
    sample: list[str] = []
    rng = np.random.default_rng(seed + 1)
    block: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal n_docs, n_tokens
        texts = [t for r in block for t in (r["anchor"], r["positive"], *r["negatives"])]
        it = iter(tokenize(texts))
        for r in block:
            a, p = next(it), next(it)
            for ids in (a, p):
                df[np.unique(np.asarray(ids, dtype=np.int64))] += 1
                n_tokens += len(ids)
            rows.extend((store.add(a), store.add(p)))
            negs.extend(store.add(next(it)) for _ in r["negatives"])
            neg_start.append(len(negs))
            hashes.append(_hash(r["positive"]))
            for t in (r["anchor"], r["positive"]):  # reservoir sampling
                n_docs += 1
                if len(sample) < FIT_SAMPLE:
                    sample.append(t)
                elif (j := int(rng.integers(n_docs))) < FIT_SAMPLE:
                    sample[j] = t
        block.clear()

    for row, held_out in split_rows(path, fraction, cap, seed):
        if held_out:
            heldout.append(row)
            continue
        block.append(row)
        if len(block) == BLOCK:
            flush()
    flush()
    store.close()
    ids = np.unique(np.frombuffer(hashes, dtype=np.int64), return_inverse=True)[1] if hashes else np.zeros(0, int)
    pairs = StoredPairs(store, np.frombuffer(rows, dtype=np.int64).reshape(-1, 2),
                        np.frombuffer(neg_start, dtype=np.int64), np.frombuffer(negs, dtype=np.int64), ids)
    return {"pairs": pairs, "heldout": heldout, "df": df, "n_docs": n_docs, "fit_texts": sample,
            "avg_len": n_tokens / max(n_docs, 1)}
