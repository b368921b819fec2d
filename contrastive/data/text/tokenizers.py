"""The hashing tokenizer: lower-cased words plus hashed character n-grams in a fixed-size vocabulary, with no
vocabulary to learn or download."""
from __future__ import annotations

import zlib
from collections.abc import Callable

from contrastive.data.text.corpus import tokenize

WORD_CACHE = 2**20  # distinct words whose ids a hashing tokenizer keeps


class _Memo(dict):
    """`memo[key]` computes `fn(key)` the first time and keeps it."""

    def __init__(self, fn: Callable[[str], list[int]]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: str) -> list[int]:
        value = self[key] = self.fn(key)
        return value


class HashingTokenizer:
    """Token ids in `[1, vocab_size)` (0 pads): each word, plus its character n-grams (with `<` `>` marks),
    hashed with CRC32, so no vocabulary needs building or downloading."""

    def __init__(self, vocab_size: int = 65536, ngrams: tuple[int, ...] = (), max_len: int = 256) -> None:
        self.vocab_size, self.ngrams, self.max_len = vocab_size, tuple(ngrams), max_len
        self._words = _Memo(self.word_ids)  # each word's ids, hashed once (words repeat: Zipf)

    def token_id(self, s: str) -> int:
        """The id of a word (or a `#`-marked n-gram) `s`."""
        return 1 + zlib.crc32(s.encode("utf-8")) % (self.vocab_size - 1)

    def word_ids(self, w: str) -> list[int]:
        """A word's id, then its n-grams' ids."""
        m = f"<{w}>"
        return [self.token_id(w)] + [self.token_id("#" + m[i:i + n]) for n in self.ngrams for i in range(len(m) - n + 1)]

    def __call__(self, text: str) -> list[int]:
        words = self._words
        if len(words) > WORD_CACHE:
            words.clear()
        ids = [i for w in tokenize(text)[: self.max_len] for i in words[w]]
        return ids[: self.max_len] or [self.token_id("<empty>")]

    def batch(self, texts: list[str]) -> list[list[int]]:
        """`__call__` over many texts."""
        return [self(t) for t in texts]
