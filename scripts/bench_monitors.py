"""What the online monitors cost: the default job's training (no final evaluation) with monitors=true and
monitors=false, alternated, in one run; wall clock of `train()` in this process.

    python scripts/bench_monitors.py [--repeats 2] [extra overrides ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time

from hydra import compose, initialize_config_module
from omegaconf import open_dict

from contrastive.train import train


def run(overrides: list[str]) -> tuple[float, dict]:
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=["evaluate=false", "logger=none", "trainer.enable_progress_bar=false",
                                          *overrides])
    with tempfile.TemporaryDirectory() as out:
        with open_dict(cfg):
            cfg.output_dir = out
        start = time.perf_counter()
        metrics, _ = train(cfg)
        return time.perf_counter() - start, metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    last: dict = {}
    for _ in range(a.repeats):
        for on in (False, True):
            seconds, metrics = run([f"monitors={str(on).lower()}", *a.overrides])
            times[on].append(seconds)
            last = metrics if on else last
    off, on = min(times[False]), min(times[True])
    print(f"training, monitors off: {off:.1f} s; on: {on:.1f} s (+{on / off - 1:.1%}); monitors' own time in the "
          f"last run: {last['val/monitor_seconds']:.1f} s; final val/knn_top1 {last['val/knn_top1']:.4f}, "
          f"val/linear_top1 {last['val/linear_top1']:.4f}")


if __name__ == "__main__":
    main()
