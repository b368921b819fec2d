"""Nothing lost, nothing silent: atomic checkpoints, RNG states in checkpoints, checks before resuming."""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import pickle
import random
import shutil
import signal
import socket
import subprocess
import threading
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException

from contrastive.distributed import rank_zero_flag


def _position(checkpoint: dict[str, Any]) -> str | None:
    """Where in training a Lightning checkpoint was taken (epoch, step and the loops' progress, which tells a
    save after a batch from one after validation at the same step), or None for another dict."""
    if "global_step" not in checkpoint or "loops" not in checkpoint:
        return None
    return repr((checkpoint.get("epoch"), checkpoint["global_step"], checkpoint["loops"]))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `<path>.tmp`, then renames it over `<path>`: a kill mid-write leaves the old checkpoint whole.
    A second save of the same training position in the same folder (`step-N.ckpt`, then `last.ckpt`) is a hard
    link to the first file, not a second full copy. Loads with `weights_only=True` (tensors, numbers, strings)."""

    def __init__(self) -> None:
        self._written: tuple[str, str] | None = None  # (position, path) of the last write

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = str(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp"
        position = _position(checkpoint)
        with contextlib.suppress(OSError):
            os.remove(tmp)  # left by a kill mid-write
        try:
            if not self._link(position, path, tmp):
                with open(tmp, "wb") as f:
                    torch.save(checkpoint, f)
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            if position is not None:
                self._written = (position, path)
        except (OSError, RuntimeError) as e:  # a full disk surfaces as either, often without the path
            written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
            with contextlib.suppress(OSError):
                os.remove(tmp)  # a partial file would keep the disk full
            free = shutil.disk_usage(os.path.dirname(path) or ".").free
            raise OSError(f"could not write checkpoint {path} ({type(e).__name__}: {str(e).splitlines()[0]}); "
                          f"{written / 2**20:.0f} MiB were written before the failure and {free / 2**20:.0f} MiB "
                          "are free there. The previous checkpoint is untouched; free space (or set "
                          "checkpoint_every_n_steps higher) and resume") from e

    def _link(self, position: str | None, path: str, tmp: str) -> bool:
        """Hard-link `tmp` to the file last written at `position` in the folder of `path`, if there is one."""
        if position is None or self._written is None:
            return False
        written_at, source = self._written
        if not (written_at == position and os.path.dirname(source) == os.path.dirname(path) and source != path
                and os.path.isfile(source)):
            return False
        try:
            os.link(source, tmp)  # the data stays when `source` is rotated away
            return True
        except OSError:  # a file system without hard links: write the copy
            return False

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_file(str(path), map_location or "cpu")


def load_checkpoint_file(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """`torch.load(path, weights_only=True)`, or a ValueError naming the file when it is damaged (truncated,
    not a checkpoint) and the other checkpoints of its folder to resume from instead."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        # what torch raises for a truncated file or one that is not a checkpoint
        folder = os.path.dirname(os.path.abspath(path))
        others = sorted(f for f in os.listdir(folder) if f.endswith(".ckpt") and f != os.path.basename(path))
        # Hydra reads an unquoted `=` in a value as a second key: the override is printed quoted for the shell
        example = f"""'ckpt_path="{os.path.join(folder, others[-1])}"'""" if others else "'ckpt_path=\"<file>\"'"
        raise ValueError(f"checkpoint {path} is damaged and cannot be loaded ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]}). Resume from an earlier one with contrastive-train "
                         f"{example} (contrastive-eval, -export and -embed: --checkpoint <name>)"
                         + (f"; in {folder}: {', '.join(others)}" if others else "")) from None


def rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain numbers (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict[str, Any]) -> None:
    """Restore what `rng_states` saved."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def record_position(trainer: pl.Trainer, checkpoint: dict[str, Any], batch_epoch: int | None) -> None:
    """Make `checkpoint`'s loops and data position say where training stands after the batches of `batch_epoch`
    (the epoch of the last trained batch), so a continuation draws what an uninterrupted run draws. Lightning's
    own records get two cases wrong: an epoch that is over is restored as unfinished (the continuation trains one
    more batch of it), and an epoch that `max_steps` stopped part-way is counted as over (the continuation
    skips the rest of it)."""
    if batch_epoch is None:
        return
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    epochs, batches = loops.get("epoch_progress", {}).get("current"), loops.get("epoch_loop.batch_progress")
    position = checkpoint.get(type(trainer.datamodule).__qualname__) if trainer.datamodule is not None else None
    if not isinstance(position, dict) or "epoch" not in position:
        position = {}
    if done >= trainer.num_training_batches:  # the next epoch is about to start
        epoch, consumed = batch_epoch + 1, 0
        if epochs is not None:
            epochs.update(ready=epoch, started=epoch, processed=epoch, completed=epoch)
        if batches is not None:
            batches.update(current={"ready": 0, "started": 0, "processed": 0, "completed": 0}, is_last_batch=False)
    elif trainer.current_epoch > batch_epoch:  # max_steps stopped the epoch part-way
        epoch, consumed = batch_epoch, done
        if epochs is not None:
            epochs.update(processed=epoch, completed=epoch)
    else:
        return
    checkpoint["epoch"] = epoch
    if position:
        position.update(epoch=epoch, consumed_batches=consumed)


class RNGStateCallback(pl.Callback):
    """Saves every RNG state with each checkpoint and restores it when training resumes, after the sanity
    check, so a resumed run draws the same augmentations and negatives as an uninterrupted one; corrects where
    Lightning records the training position (`record_position`)."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._batch_epoch: int | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch_epoch = trainer.current_epoch

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()
        record_position(trainer, checkpoint, self._batch_epoch)

    def on_load_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


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


def warn_if_lr_changed(saved: dict[str, Any], lr: float | None, key: str) -> None:
    """Resuming restores the optimizer and its schedule: say so when the command line asks for another lr."""
    groups = [g for state in saved.get("optimizer_states", []) for g in state.get("param_groups", [])]
    if lr is None or not groups:
        return
    old = groups[0].get("initial_lr", groups[0].get("lr"))
    if old is not None and not math.isclose(float(old), float(lr), rel_tol=1e-9):
        warnings.warn(f"{key}={lr} is not applied on resume: the restored optimizer and schedule continue from the "
                      f"checkpoint's lr {old}; start a new run (another run_name) to train with {key}={lr}")


def check_checkpoint_matches(path: str, module: torch.nn.Module) -> dict[str, Any]:
    """The checkpoint at `path`; fail with every missing, unexpected and mis-shaped key when it was saved from
    another config."""
    saved = load_checkpoint_file(path)
    state = saved["state_dict"]
    mine = module.state_dict()
    missing = sorted(set(mine) - set(state))
    extra = sorted(set(state) - set(mine))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(mine[k].shape)}"
              for k in sorted(set(mine) & set(state)) if tuple(state[k].shape) != tuple(mine[k].shape)]
    if missing or extra or shapes:
        lines = ([f"missing in checkpoint: {', '.join(missing)}"] if missing else []) + \
                ([f"not in this model: {', '.join(extra)}"] if extra else []) + shapes
        raise ValueError(f"checkpoint {path} does not fit this configuration (was it trained with other "
                         "encoder/projector/objective options?):\n  " + "\n  ".join(lines))
    return saved


LAUNCHED_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


@contextlib.contextmanager
def run_dir_lock(path: str) -> Iterator[None]:
    """Hold `<path>/.lock` (an exclusive `flock`, released by the system if the process dies) while a run trains
    there; a second run of the same directory is refused, naming the holder. Processes a launcher started as
    rank > 0 of a job share rank 0's lock. Where the file system has no locks, a warning and no lock."""
    if any(os.environ.get(v, "0") not in ("", "0") for v in LAUNCHED_RANKS):
        yield
        return
    lock = os.path.join(path, ".lock")
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RuntimeError(f"{path} is in use by another run ({holder}); wait for it to end, or choose another "
                               "run_name (or hydra.run.dir)") from None
        except OSError as e:
            warnings.warn(f"cannot lock {lock} ({e}): two runs of this directory at once would not be refused")
            yield
            return
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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


@contextlib.contextmanager
def quiet_exact_resume(datamodule: Any) -> Iterator[None]:
    """Silence Lightning's "your dataloader is not resumable" warning for data modules that restore their
    position themselves (`exact_resume = True`, as `ResumablePosition`): their mid-epoch resume is exact, and the
    warning says otherwise."""
    with warnings.catch_warnings():
        if getattr(datamodule, "exact_resume", False):
            warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended")
        yield
