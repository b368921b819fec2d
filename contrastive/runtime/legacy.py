"""Run directories saved before the views moved to `augment` or the text options became objects (tokenizer, miner, pair source and corpus
chosen by `_target_`): their `config.yaml` names them by option values, rewritten here to the objects they meant,
so such runs still evaluate, export and embed. Used only on saved configs, never on a new run's options."""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from contrastive.gensim_files import LEE

TEXT = "contrastive.data.text."
# what each old option value built, as the config of the object that builds it now
OLD_TOKENIZERS = {"hashing": (TEXT + "tokenizers.HashingTokenizer", ("ngrams",)),
                  "subword": (TEXT + "subword.SubwordTokenizer", ("size",))}
OLD_MINERS = {"bm25": TEXT + "mining.BM25Miner", "tfidf": TEXT + "mining.TfidfMiner", "model": TEXT + "mining.ModelMiner"}
OLD_SOURCES = {"wiki_paragraphs": None, "python_docstrings": {"_target_": TEXT + "code_pairs.PythonDocstrings"}}
OLD_CORPORA = {"enwiki_sample": {"_target_": TEXT + "corpus.WikiDump", "path": None},
               "lee": {"_target_": TEXT + "corpus.GensimFile", "name": LEE}}


def _text_pairs(data: DictConfig) -> dict[str, Any]:
    new = OmegaConf.to_container(data)
    target, own = OLD_TOKENIZERS[new.pop("tokenizer", "hashing")]
    options = {"ngrams": new.pop("ngrams", []), "size": new.pop("subword_size", None)}
    new["tokenizer"] = {"_target_": target, "vocab_size": new.pop("vocab_size"), "max_len": new.pop("max_len", 256),
                        **{k: options[k] for k in own}}
    method, k = new.pop("mine_negatives", None), new.pop("mine_k", None)
    if method is not None:
        new["miner"] = {"_target_": OLD_MINERS[method], "k": k or 1}
    new["builtin"] = OLD_SOURCES[new.get("builtin") or "wiki_paragraphs"]
    new["extra_texts"] = [OLD_CORPORA.get(t, t) for t in new.get("extra_texts", [])]
    return new


def upgrade(cfg: DictConfig) -> None:
    """Rewrite, in place, a saved run's old-style options: `data.transform` (now `augment`) and the text data options (`data.tokenizer: subword`, `data.mine_negatives`,
    `data.builtin: python_docstrings`, `data.corpus: lee`) to the objects they chose."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig):
        return
    if "transform" in data and cfg.get("augment") is None:  # views set inside the data config, before `augment`
        cfg.augment = data.transform
        del data["transform"]
    if data.get("_target_") == TEXT + "text_pairs.TextPairDataModule" and "vocab_size" in data:
        cfg.data = _text_pairs(data)
    elif data.get("_target_") == TEXT + "skipgram.SkipGramDataModule" and isinstance(data.get("corpus"), str):
        data.corpus = OLD_CORPORA.get(data.corpus, data.corpus)
