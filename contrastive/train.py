"""The Hydra entry point: `contrastive-train [overrides]`. `train(cfg)` is a plain function."""
from __future__ import annotations

import math
import os
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from contrastive.runtime.checkpoints import (
    AtomicCheckpointIO,
    check_checkpoint_matches,
    run_dir_lock,
    warn_if_lr_changed,
)
from contrastive.runtime.logfile import console_to_log_file
from contrastive.runtime.preemption import SaveOnSigterm, stop_after_training
from contrastive.runtime.rng import RNGStateCallback, quiet_exact_resume
from contrastive.runtime.sweep import optimized_metric
from contrastive.runtime.threads import policy_for


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


def check_run_options(cfg: DictConfig) -> None:
    """Values Hydra accepts but training cannot use: fail naming the key before anything is built."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise TypeError(f"seed must be an integer, got {cfg.seed!r}")
    accelerator = cfg.trainer.get("accelerator")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"trainer.accelerator={accelerator} needs a CUDA GPU and none is visible; use trainer=cpu, "
                         "or trainer=ddp_cpu for several processes on the CPU")
    replaced = {"callbacks": "add yours as +callbacks.NAME._target_=my_module.MyCallback (callbacks=... for ours)",
                "logger": "choose logger=csv|tensorboard|wandb|mlflow (several: logger=[csv,wandb]) or add yours "
                          "as +logger.NAME._target_=...",
                "plugins": "the project sets them (atomic checkpoint writing, SLURM)"}
    for key, how in replaced.items():
        if cfg.trainer.get(key) is not None:
            raise ValueError(f"trainer.{key} would replace what the project gives the Trainer (checkpoints, resume, "
                             f"preemption, logs); {how}")
    lr = OmegaConf.select(cfg, "optimizer.lr")  # an optimizer is a torch class: checked here (step.lr by Step)
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"optimizer.lr must be a positive finite number, got {lr!r}")


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: `ckpt_path`, or `<output_dir>/checkpoints/last.ckpt` with `resume=true`
    (which must exist) or `resume=auto` (if it exists: a relaunched preempted job continues, a new one starts)."""
    if cfg.get("ckpt_path"):
        if not os.path.isfile(cfg.ckpt_path):
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
        return str(cfg.ckpt_path)
    resume = cfg.get("resume")
    if resume not in (True, False, "auto", None):
        raise ValueError(f"resume must be true, false or auto, got {resume!r}")
    last = os.path.join(cfg.output_dir, "checkpoints", "last.ckpt")
    if resume == "auto":
        return last if os.path.isfile(last) else None
    if resume:
        if not os.path.isfile(last):
            raise FileNotFoundError(f"resume=true but {last} does not exist; pass the run's directory with "
                                    "hydra.run.dir=<run dir> (or output_dir=<run dir>), or ckpt_path=<file>")
        return last
    return None


def build(cfg: DictConfig) -> dict[str, Any]:
    """The task's objects (`datamodule`, `model`, reference copies), after checking that the config fits it."""
    task = hydra.utils.instantiate(cfg.task)
    task.check(cfg)
    return {**task.build(cfg), "task": task}


def user_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The callbacks of the `callbacks` group (`callbacks=early_stopping`, `+callbacks.NAME._target_=...`)."""
    made = []
    for name, node in (cfg.get("callbacks") or {}).items():
        callback = hydra.utils.instantiate(node)
        if not isinstance(callback, pl.Callback):
            raise TypeError(f"callbacks.{name} built a {type(callback).__name__}, not a Lightning Callback")
        made.append(callback)
    return made


def make_trainer(cfg: DictConfig, extra: list[pl.Callback] | None = None) -> pl.Trainer:
    """The Trainer from `cfg.trainer` with checkpointing into `<output_dir>/checkpoints`, the loggers and the
    task's `extra` callbacks (the image task's online monitors)."""
    ckpt_dir = os.path.join(cfg.output_dir, "checkpoints")
    callbacks: list[pl.Callback] = [
        # no version counter: a resumed run overwrites last.ckpt instead of leaving a stale last-v1.ckpt beside it
        pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch}-{step}", monitor="val/loss",
                                     mode="min", save_top_k=1, save_last=True, enable_version_counter=False),
        pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="step-{step}", save_last=True,
                                     every_n_train_steps=cfg.checkpoint_every_n_steps, save_top_k=1,
                                     enable_version_counter=False),
        RNGStateCallback(),
        SaveOnSigterm(os.path.join(ckpt_dir, "last.ckpt")),
        *policy_for(cfg),
        *(extra or []),
        *user_callbacks(cfg),
    ]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]
    if loggers:
        callbacks.append(pl.callbacks.LearningRateMonitor("step"))
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():  # SaveOnSigterm handles SIGUSR1 at a batch end (Lightning's saves mid-step)
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)


def seeded_build(cfg: DictConfig) -> dict[str, Any]:
    """`build(cfg)` after seeding every generator from `cfg.seed` and setting deterministic algorithms as the
    Trainer will, so what a task trains in build (the word-vector stage) is the same on every call."""
    pl.seed_everything(cfg.seed, workers=True)
    deterministic = OmegaConf.select(cfg, "trainer.deterministic")
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=deterministic == "warn")
    return build(cfg)


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Pretrain as configured, then evaluate; returns `(metrics, objects)`."""
    check_run_options(cfg)
    check_output_dir(cfg.output_dir)
    with run_dir_lock(cfg.output_dir):
        return _train(cfg)


def _train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    ckpt = resume_path(cfg)
    objects = seeded_build(cfg)
    if ckpt is not None:
        saved = check_checkpoint_matches(ckpt, objects["model"])
        key = "optimizer.lr" if OmegaConf.select(cfg, "optimizer.lr") is not None else "step.lr"
        warn_if_lr_changed(saved, OmegaConf.select(cfg, key), key)
    trainer = make_trainer(cfg, objects.get("callbacks"))
    if trainer.is_global_zero and ckpt is None:
        OmegaConf.save(cfg, os.path.join(cfg.output_dir, "config.yaml"), resolve=True)
    with quiet_exact_resume(objects["datamodule"]):
        trainer.fit(objects["model"], datamodule=objects["datamodule"], ckpt_path=ckpt)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if cfg.get("evaluate", True) and trainer.is_global_zero:
        with stop_after_training(cfg.output_dir):
            metrics.update(objects["task"].evaluate(cfg, objects, trainer))
    for logger in trainer.loggers:  # loggers that hold a run open (W&B) close it after the evaluation's numbers
        getattr(logger, "finish", lambda: None)()
    objects["trainer"] = trainer
    return metrics, objects


if not OmegaConf.has_resolver("run_dir"):  # hydra.run.dir: outputs/<run_name>, else outputs/<date>/<time>
    OmegaConf.register_new_resolver("run_dir", lambda name, stamp: f"outputs/{name or stamp}")


def sweep_value(cfg: DictConfig, metrics: dict[str, float], task: Any) -> float | None:
    """The number a sweep compares: `optimized_metric`, or the task's own (k-NN top-1, MRR, wordsim353)."""
    key = optimized_metric(cfg, task)
    if key in metrics:
        return metrics[key]
    if cfg.get("optimized_metric") and metrics:  # a key the evaluation never writes: most likely a typo
        raise KeyError(f"optimized_metric={key} is not among this run's metrics: {sorted(metrics)}")
    # the evaluation skipped it (no labels, a single class): the run itself succeeded
    print(f"no {key} for a sweep to compare: the evaluation skipped it (see above); returning NaN")
    return float("nan")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns `optimized_metric` for sweepers (None with evaluate=false)."""
    with console_to_log_file():
        metrics, objects = train(cfg)
        if not cfg.get("evaluate", True) or not objects["trainer"].is_global_zero:
            return None  # evaluation runs on rank 0 only
        return sweep_value(cfg, metrics, objects["task"])


if __name__ == "__main__":
    main()
