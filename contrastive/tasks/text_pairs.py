"""A dual encoder on text pairs (CLIP's symmetric loss or InfoNCE), optionally starting from word2vec vectors
trained on the same texts; evaluated by held-out retrieval and the Lee similarity scores, beside TF-IDF."""
from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, open_dict

from contrastive.data import SkipGramDataModule, TextPairDataModule
from contrastive.data.text.corpus import tokenize
from contrastive.encoders import BagOfTokens, TransformerText
from contrastive.encoders.hf_text import HFTextEncoder
from contrastive.encoders.text import init_tokens
from contrastive.losses import DCL, AlignUniform, Debiased, InfoNCE, SigmoidLoss
from contrastive.models import DualEncoder
from contrastive.tasks.base import (
    Task,
    group_class,
    is_project_class,
    say_chosen,
    takes,
)
from contrastive.tasks.contracts import probe_encoder, probe_objective
from contrastive.word2vec.pretrain import train_word_vectors


def word_vectors(sentences: list[list[str]], dim: int, epochs: int, window: int = 5, negatives: int = 5,
                 min_count: int = 2, seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """`(words, vectors [len(words), dim])`: skip-gram with negative sampling on `sentences`."""
    # the compiled step updates pair by pair: the batch is only the work per call
    dm = SkipGramDataModule(sentences, min_count=min_count, window=window, batch_size=1024, shuffle_seed=seed)
    dm.setup()
    vectors = train_word_vectors(dm.epoch_batches, dm.counts.tolist(), dm.batches_per_epoch, dim, epochs,
                                 negatives, seed=seed)
    return dm.words, vectors


# from this many training pairs on, the two sides get their own towers with a trained linear layer: on 2,025 wiki
# pairs that lost 0.016 MRR (it memorises them), on 4,031 and 8,111 docstring -> code pairs it gained 0.02-0.03
TWO_TOWERS_FROM = 3000


def choose_towers(cfg: DictConfig, pairs: int) -> list[str]:
    """Fill a null `model.shared` and `encoder.train_proj` from the number of training pairs; returns the
    choices made (`key=value`), also printed."""
    two = pairs >= TWO_TOWERS_FROM
    made = {}
    with open_dict(cfg):
        if "shared" in cfg.model and cfg.model.shared is None:
            made["model.shared"] = cfg.model.shared = not two
        if "train_proj" in cfg.encoder and cfg.encoder.train_proj is None:
            made["encoder.train_proj"] = cfg.encoder.train_proj = two
    return say_chosen(f"{pairs:,} training pairs; {TWO_TOWERS_FROM:,} or more: a tower per side, the linear layer "
                      "trained", made)


class TextPairsTask(Task):
    """Text pairs, a text encoder (IDF-weighted from the training texts where it weighs tokens), the dual
    encoder; `word_vectors.epochs > 0` first trains word2vec on the training texts and starts the encoder's
    token vectors there."""

    name = "text_pairs"
    metric = "mrr"  # what a sweep compares (optimized_metric=null)
    uses: ClassVar[dict[str, tuple[type, ...]]] = {
        "data": (TextPairDataModule,), "encoder": (BagOfTokens, TransformerText, HFTextEncoder),
        "objective": (InfoNCE, DCL, Debiased, SigmoidLoss, AlignUniform),
        "model": (DualEncoder,), "optimizer": (object,)}
    open_slots: ClassVar[tuple[str, ...]] = ("encoder", "objective")

    def __init__(self, word_vectors: dict[str, int] | None = None) -> None:
        opts = {"epochs": 0, "window": 5, "negatives": 5, "min_count": 2, **(word_vectors or {})}
        unknown = sorted(set(opts) - {"epochs", "window", "negatives", "min_count"})
        if unknown:
            raise ValueError(f"unknown task.word_vectors option(s) {unknown}; valid: epochs, window, negatives, "
                             "min_count")
        self.word_vectors = opts

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        if cfg.get("num_negatives") is not None:
            raise ValueError(f"num_negatives={cfg.num_negatives} has no effect on text pairs: the negatives are "
                             "the rest of the batch (data.batch_size) and the file's `negative` column")

    def build(self, cfg: DictConfig) -> dict[str, Any]:
        datamodule = hydra.utils.instantiate(cfg.data)
        if self.word_vectors["epochs"] and datamodule.streaming():  # said before the long pass over the file
            raise ValueError(f"task.word_vectors.epochs={self.word_vectors['epochs']} trains on the texts, but "
                             f"data.stream keeps token ids only ({cfg.data.path}); set task.word_vectors.epochs=0 "
                             "or data.stream=false")
        made = group_class(cfg, "encoder")  # None for a factory function
        own = None  # an encoder that brings its tokenizer (a Hugging Face model) tokenizes the pairs itself
        if getattr(made, "brings_tokenizer", False):
            own = hydra.utils.instantiate(cfg.encoder)
            datamodule.tokenizer = own.tokens
            print(f"tokenizer: {type(own).__name__}'s own ({cfg.encoder.path}), in place of data.tokenizer")
        datamodule.setup("fit")
        if not datamodule.heldout and cfg.get("evaluate", True):
            raise ValueError(f"no held-out pairs to measure retrieval on: data.heldout_fraction="
                             f"{datamodule.heldout_fraction} holds none out (beside {len(datamodule.train_pairs)} "
                             "training pairs); raise data.heldout_fraction, add pairs, or set evaluate=false")
        choose_towers(cfg, len(datamodule.train_pairs))
        # the bag of tokens weighs each token by its IDF over the training texts (and BM25 by their mean length)
        stats = {k: getattr(datamodule, k) for k in ("idf", "avg_len") if made is not None and takes(made, k)}
        encoder = own or hydra.utils.instantiate(cfg.encoder, **stats)
        width = getattr(encoder, "out_dim", None)
        if made is None or not is_project_class(made):
            width = probe_encoder(encoder, datamodule.pad(["a short text", "and another"]), "token ids [2, L] (0 pads)")
        out = {"datamodule": datamodule, "random_init": copy.deepcopy(encoder)}
        if self.word_vectors["epochs"] and not hasattr(encoder, "token_table"):
            print(f"word vectors: skipped (task.word_vectors.epochs={self.word_vectors['epochs']}): "
                  f"{type(encoder).__name__} starts from its own token embeddings")
        elif self.word_vectors["epochs"]:
            self.init_word_vectors(encoder, datamodule, cfg.seed)
            out["word2vec_init"] = copy.deepcopy(encoder)
        if datamodule.miner is not None and datamodule.miner.needs_encoder:  # as training starts (after word2vec)
            from contrastive.eval.retrieval import embed_texts
            frozen = copy.deepcopy(encoder).eval()  # eval mode for mining; the encoder itself trains on
            datamodule.add_mined(lambda texts, side: embed_texts(frozen, datamodule, texts))
        objective = hydra.utils.instantiate(cfg.objective)
        if not is_project_class(type(objective)):
            probe_objective(objective, int(width))
        out["model"] = hydra.utils.instantiate(cfg.model, encoder=encoder, objective=objective,
                                               optimizer=hydra.utils.instantiate(cfg.optimizer), guard=cfg.guard)
        return out

    def init_word_vectors(self, encoder: torch.nn.Module, dm: TextPairDataModule, seed: int) -> None:
        """Train word2vec on the data module's training texts and start the encoder's word tokens there."""
        o = self.word_vectors
        t = time.perf_counter()
        words, vectors = word_vectors([tokenize(x) for x in dm.train_texts], encoder.token_table.shape[1],
                                      o["epochs"], o["window"], o["negatives"], o["min_count"], seed=seed)
        ids = [dm.tokenizer.token_id(w) for w in words]  # a subword vocabulary lacks some words whole
        keep = [i for i, t in enumerate(ids) if t is not None]
        init_tokens(encoder, torch.tensor([ids[i] for i in keep], dtype=torch.long), vectors[keep])
        print(f"word vectors: {len(words):,} words trained for {o['epochs']} epochs in {time.perf_counter() - t:.1f} s")

    def evaluate(self, cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer) -> dict[str, Any]:
        """Held-out retrieval (recall@k, MRR) and Lee correlation: trained and untrained encoders, TF-IDF and BM25 (retrieval only)."""
        from contrastive.eval.retrieval import (
            bm25_scores,
            embed_texts,
            lee_pearson,
            ranking_metrics,
            retrieval_metrics,
            text_table,
            text_verdict,
            tfidf_embed,
        )
        dm, model = objects["datamodule"], objects["model"]
        anchors, positives = [p["anchor"] for p in dm.heldout], [p["positive"] for p in dm.heldout]

        def embedder(module: torch.nn.Module) -> Any:
            module.eval()
            return lambda texts: embed_texts(lambda ids: module(ids.to(model.device)), dm, texts)

        per_query: dict[str, torch.Tensor] = {}  # each held-out query's reciprocal rank, for the verdict's noise
        metrics: dict[str, Any] = {"heldout_pairs": len(anchors)}
        metrics.update(retrieval_metrics(embedder(model.encoder)(anchors),
                                         embedder(model.positive_encoder)(positives), per_query=per_query))
        metrics["lee_pearson"] = lee_pearson(embedder(model.encoder))
        # untrained, and after the word2vec stage before the pairs (what the word vectors alone give)
        for suffix in ("_random_init", "_word2vec_init"):
            if suffix[1:] in objects:
                embed = embedder(objects[suffix[1:]].to(model.device))
                metrics.update(retrieval_metrics(embed(anchors), embed(positives), suffix=suffix, per_query=per_query))
                metrics[f"lee_pearson{suffix}"] = lee_pearson(embed)
        fit = dm.fit_texts  # the training texts (a sample of them when the file was streamed)
        metrics.update(retrieval_metrics(tfidf_embed(fit, anchors), tfidf_embed(fit, positives), prefix="tfidf_",
                                         per_query=per_query))
        metrics["tfidf_lee_pearson"] = lee_pearson(lambda texts: tfidf_embed(fit + texts, texts))
        metrics.update(ranking_metrics(bm25_scores(anchors, positives), prefix="bm25_", per_query=per_query))
        print(f"\nheld-out retrieval: each of {len(anchors):,} held-out anchors ranks all held-out positives "
              "(MRR, recall@k); lee_pearson: correlation with the Lee human similarity scores")
        print(text_table(metrics))
        print(text_verdict(metrics, per_query))
        self.report(cfg, trainer, metrics)
        return metrics
