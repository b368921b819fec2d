"""How many threads a CPU training process computes with: its share of the cores it may run on, after the data
loader workers, and, with `threads=adaptive`, whichever count steps fastest while the machine is shared.

torch's CPU operators wait at the end of each parallel region for every one of their threads: when another
process holds a core, a thread that lands on it stalls every region of the step (a 2 ms NCE step reads 5-9 ms
with one busy core, 2.3 ms on one thread). The adaptive policy measures that and steps its count down or up."""
from __future__ import annotations

import os
import statistics
import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torch

POLICIES = ("auto", "adaptive")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share(cores: int, processes: int, workers: int) -> int:
    """Threads for each of `processes` training processes on `cores`, each with `workers` loader workers that
    keep a core busy while they decode: the cores left over, shared evenly, at least 1."""
    return max(1, (cores - processes * workers) // max(1, processes))


def set_threads(n: int) -> None:
    """Set torch's intra-op threads to `n` (the compiled word2vec step splits its pairs among as many)."""
    torch.set_num_threads(n)


def resolve(setting: int | str, processes: int, workers: int, deterministic: bool = False) -> int:
    """The thread count to start with for `threads=setting` (`auto`, `adaptive` or a number); OMP_NUM_THREADS,
    when set, is taken as the user's choice for the automatic ones."""
    if isinstance(setting, bool) or not (isinstance(setting, int) and setting >= 1 or setting in POLICIES):
        raise ValueError(f"threads must be one of {POLICIES} or a number >= 1, got {setting!r}")
    if setting == "adaptive" and deterministic:
        raise ValueError("threads=adaptive changes the thread count during training, and with it how floats are "
                         "summed: it cannot give trainer.deterministic=true's repeatable runs; use threads=auto")
    if isinstance(setting, int):
        return setting
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return share(available_cores(), processes, workers)


class ThreadTuner:
    """Times steps; after `every` steps it runs `probe` steps with one thread fewer and `probe` with one more
    (within 1..`most`) and moves to a count whose mean step was `margin` faster than the current count's over
    the steps since the last probe. A probe that changes nothing doubles the wait before the next (up to 32x
    `every`), so a steady machine pays for few probes, and a probe step twice as slow as usual ends its probe.
    Means, not medians: a stalled thread shows as rare steps 50x longer than the rest."""

    def __init__(self, start: int, most: int, every: int = 100, probe: int = 5, margin: float = 0.2) -> None:
        self.current, self.most, self.every, self.probe, self.margin = start, most, every, probe, margin
        self.wait, self.since, self.trying, self._t0 = every, 0, start, 0.0
        self.times: dict[int, list[float]] = {}
        set_threads(start)

    def _plan(self) -> int:
        """The count the next step runs with: the current one, or a neighbour during a probe."""
        if self.since < self.wait:
            return self.current
        other = self.current - 1 if self.since < self.wait + self.probe else self.current + 1
        return other if 1 <= other <= self.most else self.current

    def before(self) -> None:
        """Call before a step."""
        want = self._plan()
        if want != self.trying:
            set_threads(want)
            self.trying = want
        self._t0 = time.perf_counter()

    def after(self) -> None:
        """Call after a step (a CPU step: nothing to synchronise)."""
        took = time.perf_counter() - self._t0
        self.times.setdefault(self.trying, []).append(took)
        self.since += 1
        usual = self.times.get(self.current)
        # a probe step twice as slow as the usual ends the probe at once: a stalled thread costs one step, not five
        if self.since == self.wait + 2 * self.probe or (self.trying != self.current and usual
                                                         and took > 2 * statistics.fmean(usual)):
            self._decide()

    def _decide(self) -> None:
        mean = {n: statistics.fmean(ts) for n, ts in self.times.items()}
        now = mean.get(self.current, float("inf"))
        best = min(mean, key=mean.__getitem__)
        if mean[best] < (1 - self.margin) * now:
            self.current, self.wait = best, self.every
        else:
            self.wait = min(2 * self.wait, 32 * self.every)
        self.times, self.since = {}, 0
        set_threads(self.current)
        self.trying = self.current


class ThreadPolicy(pl.Callback):
    """Sets each training process's threads when it starts (after Lightning's own split among DDP processes,
    which does not count loader workers); with `threads=adaptive`, a ThreadTuner around every training step."""

    def __init__(self, setting: int | str, processes: int, workers: int, deterministic: bool = False) -> None:
        self.start = resolve(setting, processes, workers, deterministic)  # a bad setting fails before training
        self.setting, self.tuner = setting, None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.setting == "adaptive":
            self.tuner = ThreadTuner(self.start, available_cores())
        else:
            set_threads(self.start)

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.tuner is not None:
            self.tuner.before()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.tuner is not None:
            self.tuner.after()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.tuner is not None and self.tuner.current != self.start:
            warnings.warn(f"threads=adaptive: training ended on {self.tuner.current} threads, started on "
                          f"{self.start} (step times changed: other processes use these cores)")


def policy_for(cfg: Any) -> list[pl.Callback]:
    """The ThreadPolicy for a CPU run's config (`threads`, `trainer.devices`, `data.num_workers`); none on GPUs,
    where the host threads only feed the device."""
    if cfg.trainer.get("accelerator") != "cpu":
        return []
    devices = cfg.trainer.get("devices", 1)
    processes = devices if isinstance(devices, int) and devices > 0 else 1
    workers = int(cfg.data.get("num_workers", 0) or 0)
    cores = available_cores()
    if processes > cores:
        warnings.warn(f"trainer.devices={processes} processes on {cores} cores: they take turns on a core, and each "
                      f"step waits for the slowest (several times slower than one process); use trainer.devices<={cores}")
    return [ThreadPolicy(cfg.get("threads", "auto"), processes, workers, bool(cfg.trainer.get("deterministic")))]
