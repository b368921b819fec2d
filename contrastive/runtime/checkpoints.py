"""Checkpoint files: written atomically and once per position, read with errors that name the file, checked
against the model before resuming; one run at a time in a run directory."""
from __future__ import annotations

import contextlib
import fcntl
import math
import os
import pickle
import shutil
import socket
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


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
