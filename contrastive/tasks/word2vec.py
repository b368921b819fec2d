"""Word vectors (skip-gram) with NCE, sampled softmax, negative sampling or a full softmax output layer,
evaluated on word similarity and analogies (beside gensim's with `task.compare_gensim=true`)."""
from __future__ import annotations

import os
from typing import Any, ClassVar

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig

from contrastive.data import SkipGramDataModule
from contrastive.losses import (
    FullSoftmaxLoss,
    NCELoss,
    NegativeSamplingLoss,
    SampledSoftmaxLoss,
)
from contrastive.models import Word2Vec
from contrastive.samplers import CandidateSampler
from contrastive.tasks.base import Task, group_class, options, takes
from contrastive.word2vec.steps import Step


class Word2VecTask(Task):
    """The skip-gram data (its vocabulary sizes the output layer and gives the unigram counts), the objective
    over that vocabulary, and the Word2Vec module."""

    name = "word2vec"
    metric = "wordsim353_spearman"  # what a sweep compares (optimized_metric=null)
    uses: ClassVar[dict[str, tuple[type, ...]]] = {
        "data": (SkipGramDataModule,),
        "objective": (NCELoss, SampledSoftmaxLoss, NegativeSamplingLoss, FullSoftmaxLoss),
        "candidates": (CandidateSampler,), "step": (Step,), "model": (Word2Vec,)}
    optional: ClassVar[tuple[str, ...]] = ("candidates",)

    def __init__(self, compare_gensim: bool = False) -> None:
        self.compare_gensim = compare_gensim

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        cls = hydra.utils.get_class(cfg.objective._target_)
        sampled = issubclass(cls, (NCELoss, SampledSoftmaxLoss))
        if sampled and cfg.get("candidates") is None:
            raise ValueError(f"objective {cls.__name__} draws its negatives with a candidate sampler: choose "
                             f"candidates={'|'.join(options('candidates'))}")
        if not sampled and cfg.get("candidates") is not None:
            what = ("draws word2vec's unigram^0.75 negatives itself" if cls is NegativeSamplingLoss
                    else "scores every class")
            raise ValueError(f"candidates ({group_class(cfg, 'candidates').__name__}) has no effect: {cls.__name__} "
                             f"{what}; use candidates=none, or objective=nce|sampled_softmax to sample with it")

    def build(self, cfg: DictConfig) -> dict[str, Any]:
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.setup("fit")
        vocab, counts = datamodule.vocab_size, datamodule.counts.tolist()  # size and start the output layer
        extra = {}
        if cfg.get("candidates") is not None:  # the sampler draws from this vocabulary
            make = hydra.utils.instantiate(cfg.candidates)
            by_count = {"unigrams": counts} if takes(make, "unigrams") else {}
            extra["sampler"] = make(range_max=vocab, num_sampled=cfg.num_negatives, **by_count)
        # called, not passed to instantiate: Hydra would copy a 100k-word count list into a config node (a minute)
        objective = hydra.utils.instantiate(cfg.objective, _partial_=True)(num_classes=vocab, dim=cfg.model.dim,
                                                                            unigrams=counts, **extra)
        model = hydra.utils.instantiate(cfg.model, vocab_size=datamodule.vocab_size, objective=objective,
                                        step=hydra.utils.instantiate(cfg.step), guard=cfg.guard)
        return {"datamodule": datamodule, "model": model}

    def evaluate(self, cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer | None) -> dict[str, Any]:
        """Similarity, analogy and throughput of the word vectors; writes eval.json and vectors.txt. Without a
        trainer (`contrastive-eval`) the training's speed figures stay as they are and gensim trains for the run's
        `trainer.max_epochs`."""
        from contrastive.eval.words import (
            gensim_baseline,
            nearest_table,
            word_metrics,
            write_word2vec,
        )
        dm, model = objects["datamodule"], objects["model"]
        words, vectors = dm.words, model.vectors.cpu()
        metrics: dict[str, Any] = word_metrics(vectors, words)
        metrics["vocab_size"], metrics["corpus_tokens"] = len(words), dm.num_tokens
        if trainer is not None:
            # raw corpus words per second of training, the way gensim counts them
            # (null when training ran in spawned processes, whose clock this process does not see)
            metrics["words_per_second"] = (trainer.current_epoch * dm.raw_tokens / model.fit_seconds
                                           if model.fit_seconds else None)
            metrics["step"] = model.step.name  # what step=auto chose (still "auto" after a spawned run)
            metrics["compile_seconds"] = model.compile_seconds  # hogwild's one-off, not in words/s
        if self.compare_gensim:
            negatives = cfg.num_negatives if cfg.get("num_negatives") and cfg.num_negatives <= 64 else 5
            epochs = trainer.current_epoch if trainer is not None else cfg.trainer.max_epochs
            gv, gw, gwps = gensim_baseline(dm.sentences(), cfg.model.dim, dm.window, dm.min_count,
                                           negatives, epochs, dm.subsample, cfg.seed)
            metrics.update(word_metrics(gv, gw, prefix="gensim_"))
            metrics["gensim_words_per_second"] = gwps
        neighbours = nearest_table(vectors, words, ["king", "war", "music", "france", "computer", "water"])
        print("\nword vectors: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        for w, ns in neighbours.items():
            print(f"  {w}: {' '.join(ns)}")
        self.report(cfg, trainer, metrics, nearest=neighbours)
        write_word2vec(os.path.join(cfg.output_dir, "vectors.txt"), words, vectors)
        return metrics
