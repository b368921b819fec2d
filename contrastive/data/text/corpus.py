"""Text corpora for word vectors and unpaired documents: a user's text file or the real corpora shipped inside the
gensim wheel, as objects chosen by `_target_` (`sentences()`, and `lines()` for documents)."""
from __future__ import annotations

import os
import re
import warnings
from typing import Any

from contrastive.gensim_files import LEE, WIKI_SAMPLE, gensim_path

TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")


def tokenize(line: str) -> list[str]:
    """Lower-cased words (letters, with inner apostrophes) and numbers."""
    return TOKEN.findall(line.lower())


def read_utf8(path: str) -> str:
    """The file's text without a byte-order mark; undecodable bytes become U+FFFD, and how many is warned."""
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8-sig", errors="replace")  # -sig: a byte-order mark (Excel's UTF-8 CSV) is dropped
    warn_undecodable(path, text.count("\ufffd") - raw.decode("utf-8-sig", errors="ignore").count("\ufffd"),
                     len(raw))
    return text


def warn_undecodable(path: str, bad: int, size: int) -> None:
    """Say that `bad` byte sequences of the `size`-byte file were not UTF-8 (and, past 1%, that it may not be
    text at all)."""
    if bad > 0.01 * size:
        warnings.warn(f"{path} does not look like UTF-8 text: {bad} byte sequence(s) in {size} bytes are not "
                      "valid UTF-8 (a binary file, or text in another encoding? re-save it as UTF-8); "
                      "they are replaced with U+FFFD and the words between them are used")
    elif bad:
        warnings.warn(f"{path}: {bad} byte sequence(s) are not valid UTF-8; replaced with U+FFFD")


def read_text_file(path: str) -> list[list[str]]:
    """One sentence (or document) per non-empty line; undecodable bytes become U+FFFD, counted and warned."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"corpus file {os.path.abspath(path)} does not exist; set data.corpus to a text "
                                "file (one sentence or document per line), or use data=lee or data=enwiki_sample")
    text = read_utf8(path)
    sentences = [t for t in (tokenize(line) for line in text.splitlines()) if t]
    if not sentences:
        raise ValueError(f"corpus file {path} has no words")
    return sentences


class TextFile:
    """A UTF-8 text file, one sentence or document per line (a plain string in `data.corpus` or
    `data.extra_texts` is one of these)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def file(self) -> str:
        """The path read."""
        return self.path

    def sentences(self) -> list[list[str]]:
        """Every non-empty line as lower-cased tokens."""
        return read_text_file(self.file())

    def lines(self, min_words: int = 10) -> list[str]:
        """The lines of >= `min_words` words, whitespace normalised: unpaired documents."""
        path = self.file()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"text corpus {os.path.abspath(path)} does not exist; data.extra_texts "
                                    "takes paths to text files (one document per line)")
        return [" ".join(line.split()) for line in read_utf8(path).splitlines()
                if len(line.split()) >= min_words]


class GensimFile(TextFile):
    """A text file shipped inside the gensim wheel, by its file name (`lee_background.cor`: the Lee background
    corpus, 300 news documents, ~60k tokens)."""

    def __init__(self, name: str = LEE) -> None:
        super().__init__(name)
        self.name = name

    def file(self) -> str:
        return gensim_path(self.name)


class WikiDump:
    """A Wikipedia XML dump (`.xml.bz2`), one list of tokens per article, parsed by gensim's WikiCorpus; null
    `path`: the 106-article sample shipped inside the gensim wheel. It has no `lines`: in the text-pairs task
    its held-out articles are what retrieval is measured on."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def sentences(self) -> list[list[str]]:
        from gensim.corpora import WikiCorpus
        wiki = WikiCorpus(self.path or gensim_path(WIKI_SAMPLE), dictionary={}, processes=1)
        return [list(article) for article in wiki.get_texts()]


def as_corpus(corpus: str | Any) -> Any:
    """A corpus object: a string is a text file's path; anything else is taken as given (it keeps the contract:
    `sentences()`, and `lines(min_words)` where documents are wanted)."""
    return TextFile(corpus) if isinstance(corpus, str) else corpus
