"""The real corpora and evaluation files shipped inside the gensim wheel (the `text` extra), named in one place
for the data modules and the evaluations."""
from __future__ import annotations

WIKI_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"  # 106 articles
LEE = "lee_background.cor"  # the Lee background corpus: 300 news documents
WORDSIM353, SIMLEX999, ANALOGIES = "wordsim353.tsv", "simlex999.txt", "questions-words.txt"
LEE_DOCS, LEE_SCORES = "lee.cor", "similarities0-1.txt"  # 50 documents and their human similarity scores


def gensim_path(name: str) -> str:
    """Path of a file shipped inside the gensim wheel."""
    try:
        from gensim.test.utils import datapath
    except ImportError as e:
        raise ImportError(f"{name!r} ships with gensim: pip install 'contrastive[text]'") from e
    return datapath(name)
