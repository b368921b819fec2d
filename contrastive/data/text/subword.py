"""A WordPiece subword tokenizer learned from the training texts with the `tokenizers` library (nothing is
downloaded): rare words, identifiers and misspellings share pieces with known words."""
from __future__ import annotations

from collections.abc import Iterable

PAD, UNK = "[PAD]", "[UNK]"  # ids 0 and 1: 0 pads, as with the hashing tokenizer


class SubwordTokenizer:
    """Token ids in `[1, size)` from a WordPiece vocabulary of `size` pieces, learned by `train(texts)`
    (lower-cased, split on whitespace and punctuation); `to_str()` / `load(s)` carry it in checkpoints."""

    def __init__(self, size: int = 30000, max_len: int = 256, vocab_size: int | None = None) -> None:
        if vocab_size is not None and size > vocab_size:
            raise ValueError(f"data.subword_size={size} pieces do not fit the encoder's vocab_size={vocab_size}; "
                             "lower subword_size or raise vocab_size")
        self.size, self.max_len, self.vocab_size = size, max_len, vocab_size or size
        self._tok = None

    def train(self, texts: Iterable[str]) -> None:
        """Learn the pieces from `texts`."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=self.size, special_tokens=[PAD, UNK],
                                                                 show_progress=False))
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
        ids = self._tokenizer().encode(text, add_special_tokens=False).ids[: self.max_len]
        return ids or [self._tokenizer().token_to_id(UNK)]

    def batch(self, texts: list[str]) -> list[list[int]]:
        """`__call__` over many texts at once (the library's threads)."""
        unk = self._tokenizer().token_to_id(UNK)
        return [e.ids[: self.max_len] or [unk] for e in self._tokenizer().encode_batch(texts,
                                                                                      add_special_tokens=False)]
