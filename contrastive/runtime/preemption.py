"""Stops that lose nothing: SIGTERM, SIGUSR1 (SLURM, which then requeues the job) and Ctrl-C save the current
step; a stop during the final evaluation says that training is saved."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from contrastive.distributed import rank_zero_flag


class SaveOnSigterm(pl.Callback):
    """SIGTERM (what SLURM and Kubernetes send before a kill), SIGINT (Ctrl-C; exit code 1, so a sweep stops too)
    and, in a SLURM job, SIGUSR1 (`--signal=USR1@90`): save `path` at the end of the current batch, on every rank
    at the same step, and exit. After SIGUSR1 the job is also requeued (`scontrol requeue`); the same command
    with `resume=auto` continues from there."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.requeue = self.interrupted = self._saved = False
        self._previous_sigint: Any = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if os.environ.get("SLURM_JOB_ID"):
            signal.signal(signal.SIGUSR1, self._on_usr1)
        self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._restore_sigint()

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _on_usr1(self, signum: int, frame: Any) -> None:
        self.requeue = True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupted:  # a second Ctrl-C stops at once, as without this handler
            self._restore_sigint()
            raise KeyboardInterrupt
        self.interrupted = True
        print("\nCtrl-C: saving at the end of this batch, then stopping (Ctrl-C again stops at once, unsaved)",
              flush=True)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        stop = rank_zero_flag(trainer.received_sigterm or self.requeue or self.interrupted, module.device)
        if not stop:
            return
        self._save(trainer)
        if self.interrupted:  # Lightning shuts down as for any Ctrl-C (exit code 1: a sweep stops too)
            self._restore_sigint()
            raise KeyboardInterrupt
        raise SIGTERMException  # Lightning's own way out: every rank stops here, exit code 0

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        # Lightning's own loops also stop on SIGTERM outside a training batch (an epoch's end, a validation):
        # save there too. One process only: under DDP the ranks may not meet at this point
        self._restore_sigint()
        if isinstance(exception, SIGTERMException) and not self._saved and trainer.world_size == 1:
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path)
        self._saved = True
        what = "SIGUSR1" if self.requeue else "SIGINT (Ctrl-C)" if self.interrupted else "SIGTERM"
        if trainer.is_global_zero:
            print(f"{what}: saved step {trainer.global_step} to {self.path}; run the same command with "
                  "resume=auto to continue", flush=True)
            if self.requeue:
                requeue_slurm_job()


def requeue_slurm_job() -> None:
    """`scontrol requeue <job>` for this SLURM job (an array task by its array id); a failure is printed."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, check=False)
        print(f"requeued SLURM job {job}" if done.returncode == 0 else
              f"scontrol requeue {job} failed ({done.returncode}): {done.stderr.strip()}", flush=True)
    except FileNotFoundError:
        print(f"scontrol not found: SLURM job {job} was not requeued; resubmit it with resume=auto", flush=True)


@contextlib.contextmanager
def stop_after_training(run_dir: str) -> Iterator[None]:
    """While the finished run evaluates, SIGTERM or Ctrl-C stop it with a message saying that training is saved
    and how to evaluate it (without this, SIGTERM ends the process silently once Lightning's handler is gone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        name = "SIGINT (Ctrl-C)" if signum == signal.SIGINT else signal.Signals(signum).name
        raise SystemExit(f"{name} during the final evaluation: training had finished and is saved in "
                         f"{os.path.join(run_dir, 'checkpoints', 'last.ckpt')}; evaluate it with "
                         f"contrastive-eval {run_dir} (or the same command with resume=auto)")

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
