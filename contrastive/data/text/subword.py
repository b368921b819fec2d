"""A WordPiece subword tokenizer learned from the training texts (nothing is downloaded): rare words,
identifiers and misspellings share pieces with known words. The `tokenizers` library normalizes, splits and
encodes; the pieces are chosen by a deterministic count, so a seeded run repeats."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1: 0 pads, as with the hashing tokenizer
SIZE = 30000  # pieces learned by default (at most vocab_size)


class SubwordTokenizer:
    """Token ids in `[1, size)` from a WordPiece vocabulary of `size` pieces, learned by `train(texts)`
    (lower-cased, split on whitespace and punctuation); `to_str()` / `load(s)` carry it in checkpoints."""

    def __init__(self, size: int | None = None, max_len: int = 256, vocab_size: int | None = None) -> None:
        size = size or min(SIZE, vocab_size or SIZE)
        if vocab_size is not None and size > vocab_size:
            raise ValueError(f"data.tokenizer.size={size} pieces do not fit the encoder's vocab_size={vocab_size}; "
                             "lower data.tokenizer.size or raise data.tokenizer.vocab_size")
        self.size, self.max_len, self.vocab_size = size, max_len, vocab_size or size
        self._tok = None

    def train(self, texts: Iterable[str]) -> None:
        """Learn the pieces from `texts`: every character (alone and as a `##` continuation), the words seen at
        least twice, then the leading pieces and `##` trailing pieces most common among the other words (ties in
        alphabetical order), up to `size`. The library's own trainers break ties by hash order, which changes
        from run to run."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
        normalizer, split = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        words: Counter[str] = Counter()
        for text in texts:
            words.update(w for w, _ in split.pre_tokenize_str(normalizer.normalize_str(text)))
        alphabet = sorted({ch for w in words for ch in w})
        base = [PAD, UNK, *alphabet, *("##" + ch for ch in alphabet)]
        budget = max(self.size - len(base), 0)
        by_count = sorted(words, key=lambda w: (-words[w], w))
        whole = [w for w in by_count if words[w] >= 2 and len(w) > 1][:budget]  # words seen twice stay whole
        kept = set(whole)
        pieces: Counter[str] = Counter()  # the rarer words' leading and trailing pieces
        for w in by_count:
            if w not in kept:
                for i in range(2, len(w)):
                    pieces[w[:i]] += words[w]
                    pieces["##" + w[i - 1:]] += words[w]
        taken = kept | set(base)
        rest = sorted((p for p in pieces if p not in taken), key=lambda p: (-pieces[p], p))
        vocab = {p: i for i, p in enumerate([*base, *whole, *rest][: max(self.size, len(base))])}
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token=UNK))
        tok.normalizer, tok.pre_tokenizer = normalizer, split
        self._tok = tok

    def to_str(self) -> str:
        """The learned tokenizer as JSON."""
        return self._tokenizer().to_str()

    def load(self, state: str) -> None:
        """Take back a tokenizer saved by `to_str`."""
        from tokenizers import Tokenizer
        self._tok = Tokenizer.from_str(state)

    @property
    def trained(self) -> bool:
        """Whether pieces have been learned or loaded."""
        return self._tok is not None

    def _tokenizer(self):  # the tokenizers library is imported lazily
        if self._tok is None:
            raise RuntimeError("the subword tokenizer has not been trained: call setup() on the data module, or "
                               "load a run's checkpoint (it carries the learned pieces)")
        return self._tok

    def token_id(self, word: str) -> int | None:
        """The id of a whole word that is one piece of the vocabulary, else None."""
        return self._tokenizer().token_to_id(word.lower())

    def __call__(self, text: str) -> list[int]:
        return self.batch([text])[0]

    def batch(self, texts: list[str]) -> list[list[int]]:
        """`__call__` over many texts at once (the library's threads)."""
        unk = self._tokenizer().token_to_id(UNK)
        return [e.ids[: self.max_len] or [unk] for e in self._tokenizer().encode_batch(texts,
                                                                                      add_special_tokens=False)]
