"""The embedded Wikipedia pair source (consecutive paragraphs of the sample shipped in gensim), and crops of one
text as its own pair (a plain text file or corpus, no pairs needed)."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from contrastive.data.text.pair_files import Split
from contrastive.gensim_files import WIKI_SAMPLE, gensim_path


def wiki_articles(min_words: int = 20) -> list[list[str]]:
    """The paragraphs (>= `min_words` words, whitespace normalised) of each article of the Wikipedia sample."""
    import bz2

    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    articles = []
    with bz2.BZ2File(gensim_path(WIKI_SAMPLE)) as f:
        for _, text, _ in extract_pages(f):
            paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", filter_wiki(text))
                     if len(p.split()) >= min_words]
            if paras:
                articles.append(paras)
    return articles


def paragraph_pairs(paras: list[str]) -> list[dict[str, Any]]:
    """Disjoint pairs of consecutive paragraphs (1st, 2nd), (3rd, 4th), ...: no paragraph is both a query and
    a document."""
    return [{"anchor": a, "positive": b, "negatives": []} for a, b in zip(paras[0::2], paras[1::2])]


class WikiParagraphs:
    """Consecutive paragraphs of the Wikipedia sample as a pair source, split by article, so no held-out
    paragraph was seen in training."""

    def read(self, split: Split) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """`(held-out pairs, training pairs, training texts)`; `split(n)`: held-out and training indices."""
        articles = [a for a in wiki_articles() if len(a) >= 2]
        held, train = split(len(articles))
        return ([p for i in held for p in paragraph_pairs(articles[i])],
                [p for i in train for p in paragraph_pairs(articles[i])], [t for i in train for t in articles[i]])


def crop(words: list[str], rng: np.random.Generator, low: float = 0.1, high: float = 0.5, min_words: int = 5) -> str:
    """A random contiguous span of `words` covering a fraction of them drawn uniformly from [low, high]."""
    k = min(len(words), max(min_words, round(rng.uniform(low, high) * len(words))))
    start = int(rng.integers(0, len(words) - k + 1))
    return " ".join(words[start:start + k])


class CropPairs(Dataset):
    """`per_text` pairs of two independent random crops of each text (Contriever's independent cropping),
    fresh crops at every access; `id` numbers the source text from `first_id`."""

    def __init__(self, texts: list[str], per_text: int, first_id: int = 0, seed: int = 0) -> None:
        self.words = [t.split() for t in texts]
        self.per_text, self.first_id = per_text, first_id
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.words) * self.per_text

    def __getitem__(self, i: int) -> dict[str, Any]:
        words = self.words[i // self.per_text]
        return {"anchor": crop(words, self.rng), "positive": crop(words, self.rng), "negatives": [],
                "id": self.first_id + i // self.per_text}
