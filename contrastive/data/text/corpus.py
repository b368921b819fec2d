"""Text corpora for word vectors: a user's text file or the real corpora shipped inside the gensim wheel."""
from __future__ import annotations

import os
import re
import warnings

from contrastive.gensim_files import CORPORA, gensim_path

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
                                f"file (one sentence or document per line) or one of {sorted(CORPORA)}")
    text = read_utf8(path)
    sentences = [t for t in (tokenize(line) for line in text.splitlines()) if t]
    if not sentences:
        raise ValueError(f"corpus file {path} has no words")
    return sentences


def load_corpus(corpus: str) -> list[list[str]]:
    """Sentences as token lists: `enwiki_sample` (106 Wikipedia articles, parsed with gensim's WikiCorpus),
    `lee` (the Lee background corpus), or a path to a text file."""
    if corpus == "enwiki_sample":
        from gensim.corpora import WikiCorpus
        wiki = WikiCorpus(gensim_path(CORPORA[corpus]), dictionary={}, processes=1)
        return [list(article) for article in wiki.get_texts()]
    if corpus == "lee":
        return read_text_file(gensim_path(CORPORA[corpus]))
    return read_text_file(corpus)
