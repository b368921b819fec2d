"""The Hydra entry point: `contrastive-train [overrides]`. `train(cfg)` is a plain function."""
from __future__ import annotations

import copy
import logging
import os
import time
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from contrastive.eval.report import evaluate_encoders, format_table, plot_embedding, plot_loss, write_json
from contrastive.reliability import AtomicCheckpointIO, RNGStateCallback, check_checkpoint_matches

log = logging.getLogger("contrastive")


def check_output_dir(path: str) -> None:
    """Fail before training if `path` cannot be created or written."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise OSError(f"output directory {path} is not writable ({e}); set output_dir=... or "
                      "hydra.run.dir=... to a writable folder") from e


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: `ckpt_path`, or `<output_dir>/checkpoints/last.ckpt` with `resume=true`."""
    if cfg.get("ckpt_path"):
        if not os.path.isfile(cfg.ckpt_path):
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
        return str(cfg.ckpt_path)
    if cfg.get("resume"):
        last = os.path.join(cfg.output_dir, "checkpoints", "last.ckpt")
        if not os.path.isfile(last):
            raise FileNotFoundError(f"resume=true but {last} does not exist; pass the run's directory with "
                                    "hydra.run.dir=<run dir> (or output_dir=<run dir>), or ckpt_path=<file>")
        return last
    return None


def build(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate what the task needs: for images, data module, encoder (plus an untrained copy), projector,
    objective and model; for word vectors, the skip-gram data (its vocabulary sizes the objective) and model."""
    if cfg.task == "word2vec":
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.setup("fit")
        objective = hydra.utils.instantiate(cfg.objective, num_classes=datamodule.vocab_size, dim=cfg.model.dim,
                                            unigrams=datamodule.counts.tolist())
        model = hydra.utils.instantiate(cfg.model, vocab_size=datamodule.vocab_size, objective=objective,
                                        guard=cfg.guard)
        return dict(datamodule=datamodule, model=model)
    if cfg.task == "text_pairs":
        datamodule = hydra.utils.instantiate(cfg.data)
        datamodule.setup("fit")
        # the bag-of-tokens encoder weighs tokens by their IDF over the training texts
        extra = {"idf": datamodule.idf} if cfg.encoder._target_.endswith("BagOfTokens") else {}
        encoder = hydra.utils.instantiate(cfg.encoder, **extra)
        out = dict(datamodule=datamodule, random_init=copy.deepcopy(encoder))
        if cfg.word_vectors.epochs:
            init_word_vectors(encoder, datamodule, cfg.word_vectors, cfg.seed)
            out["word2vec_init"] = copy.deepcopy(encoder)
        objective, optimizer = hydra.utils.instantiate(cfg.objective), hydra.utils.instantiate(cfg.optimizer)
        out["model"] = hydra.utils.instantiate(cfg.model, encoder=encoder, objective=objective, optimizer=optimizer,
                                               guard=cfg.guard)
        return out
    if cfg.task != "image":
        raise ValueError(f"task must be 'image', 'word2vec' or 'text_pairs', got {cfg.task!r}")
    datamodule = hydra.utils.instantiate(cfg.data)
    encoder = hydra.utils.instantiate(cfg.encoder)
    random_init = copy.deepcopy(encoder)
    projector = hydra.utils.instantiate(cfg.projector, in_dim=encoder.out_dim)
    objective = hydra.utils.instantiate(cfg.objective)
    optimizer = hydra.utils.instantiate(cfg.optimizer)
    negatives = None
    if "_target_" in cfg.sampler:  # a queue or memory bank; candidate samplers belong to NCE objectives
        num_items = datamodule.num_items() if "MemoryBank" in cfg.sampler._target_ else None
        negatives = hydra.utils.instantiate(cfg.sampler)(dim=cfg.projector.out_dim, num_items=num_items)
    model = hydra.utils.instantiate(cfg.model, encoder=encoder, projector=projector, objective=objective,
                                    optimizer=optimizer, negatives=negatives, guard=cfg.guard)
    return dict(datamodule=datamodule, model=model, random_init=random_init)


def init_word_vectors(encoder: torch.nn.Module, dm: Any, opts: DictConfig, seed: int) -> None:
    """Train word2vec on the data module's training texts and start the encoder's word tokens there."""
    if not hasattr(encoder, "token_table"):
        raise ValueError(f"word_vectors.epochs={opts.epochs} starts a text encoder's token vectors; "
                         f"{type(encoder).__name__} has none: use encoder=bag_of_tokens|transformer_text or "
                         "word_vectors.epochs=0")
    from contrastive.data.corpus import tokenize
    from contrastive.encoders.text import init_tokens
    from contrastive.models.word_vectors import train_word_vectors
    t = time.perf_counter()
    words, vectors = train_word_vectors([tokenize(x) for x in dm.train_texts], encoder.token_table.shape[1],
                                        opts.epochs, opts.window, opts.negatives, opts.min_count, seed=seed)
    init_tokens(encoder, torch.tensor([dm.tokenizer.token_id(w) for w in words]), vectors)
    print(f"word vectors: {len(words):,} words trained for {opts.epochs} epochs in {time.perf_counter() - t:.1f} s")


def make_trainer(cfg: DictConfig) -> pl.Trainer:
    """The Trainer from `cfg.trainer` with checkpointing into `<output_dir>/checkpoints` and the loggers."""
    ckpt_dir = os.path.join(cfg.output_dir, "checkpoints")
    callbacks: list[pl.Callback] = [
        pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch}-{step}", monitor="val/loss",
                                     mode="min", save_top_k=1, save_last=True),
        pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="step-{step}", save_last=True,
                                     every_n_train_steps=cfg.checkpoint_every_n_steps, save_top_k=1,
                                     enable_version_counter=False),
        RNGStateCallback(),
    ]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    if loggers:
        callbacks.append(pl.callbacks.LearningRateMonitor("step"))
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                   plugins=[AtomicCheckpointIO()])


def report(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, Any], **extra: Any) -> None:
    """Write `eval.json` (metrics plus `extra`) in the run directory and log the numeric metrics as `eval/*`."""
    write_json(os.path.join(cfg.output_dir, "eval.json"), {**metrics, **extra})
    numbers = {f"eval/{k}": v for k, v in metrics.items() if isinstance(v, float)}
    for lg in trainer.loggers:
        lg.log_metrics(numbers, step=trainer.global_step)


def evaluate_words(cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer) -> dict[str, Any]:
    """Similarity, analogy and throughput of the word vectors (beside gensim's with compare_gensim=true);
    writes eval.json and vectors.txt."""
    from contrastive.eval.words import gensim_baseline, nearest_table, word_metrics, write_word2vec
    dm, model = objects["datamodule"], objects["model"]
    words, vectors = dm.words, model.vectors.cpu()
    metrics: dict[str, Any] = word_metrics(vectors, words)
    # raw corpus words per second of training, the way gensim counts them
    # (null when training ran in spawned processes, whose clock this process does not see)
    metrics["words_per_second"] = trainer.current_epoch * dm.raw_tokens / model.fit_seconds if model.fit_seconds \
        else None
    metrics["vocab_size"], metrics["corpus_tokens"] = len(words), dm.num_tokens
    metrics["optimizer"] = model.method  # what model.optimizer=auto chose (still "auto" after a spawned run)
    metrics["compile_seconds"] = model.compile_seconds  # hogwild's one-off, not in words/s
    if cfg.get("compare_gensim"):
        from contrastive.data.corpus import load_corpus
        gv, gw, gwps = gensim_baseline(load_corpus(dm.corpus), cfg.model.dim, dm.window, dm.min_count,
                                       cfg.num_negatives if cfg.num_negatives <= 64 else 5, trainer.current_epoch,
                                       dm.subsample, cfg.seed)
        metrics.update(word_metrics(gv, gw, prefix="gensim_"))
        metrics["gensim_words_per_second"] = gwps
    neighbours = nearest_table(vectors, words, ["king", "war", "music", "france", "computer", "water"])
    print("\nword vectors: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    for w, ns in neighbours.items():
        print(f"  {w}: {' '.join(ns)}")
    report(cfg, trainer, metrics, nearest=neighbours)
    write_word2vec(os.path.join(cfg.output_dir, "vectors.txt"), words, vectors)
    return metrics


def evaluate_pairs(cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer) -> dict[str, Any]:
    """Held-out retrieval (recall@k, MRR) and Lee correlation: trained and untrained encoders and TF-IDF."""
    from contrastive.embed import embed_texts
    from contrastive.eval.retrieval import lee_pearson, retrieval_metrics, tfidf_embed
    dm, model = objects["datamodule"], objects["model"]
    anchors, positives = [p["anchor"] for p in dm.heldout], [p["positive"] for p in dm.heldout]

    def embedder(module: torch.nn.Module) -> Any:
        module.eval()
        return lambda texts: embed_texts(lambda ids: module(ids.to(model.device)), dm, texts)

    metrics: dict[str, Any] = {"heldout_pairs": len(anchors)}
    metrics.update(retrieval_metrics(embedder(model.encoder)(anchors), embedder(model.positive_encoder)(positives)))
    metrics["lee_pearson"] = lee_pearson(embedder(model.encoder))
    # untrained, and after the word2vec stage before the pairs (what the word vectors alone give)
    for suffix in ("_random_init", "_word2vec_init"):
        if suffix[1:] in objects:
            embed = embedder(objects[suffix[1:]].to(model.device))
            metrics.update(retrieval_metrics(embed(anchors), embed(positives), suffix=suffix))
            metrics[f"lee_pearson{suffix}"] = lee_pearson(embed)
    fit = [t for p in dm.train_pairs for t in (p["anchor"], p["positive"])]
    metrics.update(retrieval_metrics(tfidf_embed(fit, anchors), tfidf_embed(fit, positives), prefix="tfidf_"))
    metrics["tfidf_lee_pearson"] = lee_pearson(lambda texts: tfidf_embed(fit + texts, texts))
    print("\ntext pairs: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    report(cfg, trainer, metrics)
    return metrics


def evaluate(cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer) -> dict[str, float]:
    """k-NN evaluation of the trained and untrained encoders and raw pixels; writes eval.json and plots."""
    dm, model = objects["datamodule"], objects["model"]
    dm.setup("test")
    device = "cuda" if torch.cuda.is_available() and cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto") else "cpu"
    metrics, feats = evaluate_encoders({"trained": model.encoder, "random_init": objects["random_init"]},
                                       dm, seed=cfg.seed, device=device)
    print("\nk-NN top-1 on the test split (knn: all labels, k=20; knn10: 10 labels per class, mean of 5 draws)")
    print(format_table(metrics))
    report(cfg, trainer, metrics)
    plot_embedding(feats["trained"][2], feats["trained"][3], os.path.join(cfg.output_dir, "embedding.png"),
                   "test-split embeddings of the trained encoder (t-SNE)")
    plot_loss(os.path.join(cfg.output_dir, "logs", "metrics.csv"), os.path.join(cfg.output_dir, "loss.png"))
    return metrics


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Pretrain as configured, then evaluate; returns `(metrics, objects)`."""
    check_output_dir(cfg.output_dir)
    ckpt = resume_path(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    objects = build(cfg)
    if ckpt is not None:
        check_checkpoint_matches(ckpt, objects["model"])
    trainer = make_trainer(cfg)
    if trainer.is_global_zero and ckpt is None:
        OmegaConf.save(cfg, os.path.join(cfg.output_dir, "config.yaml"), resolve=True)
    trainer.fit(objects["model"], datamodule=objects["datamodule"], ckpt_path=ckpt)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if cfg.get("evaluate", True) and trainer.is_global_zero:
        run_eval = {"word2vec": evaluate_words, "text_pairs": evaluate_pairs}.get(cfg.task, evaluate)
        metrics.update(run_eval(cfg, objects, trainer))
    objects["trainer"] = trainer
    return metrics, objects


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns the final validation loss for sweepers."""
    metrics, _ = train(cfg)
    return metrics.get("val/loss")


if __name__ == "__main__":
    main()
