"""The CPU thread policy: each process's share of the cores after the loader workers, a clear error for bad
settings, and the adaptive tuner moving to the thread count that steps fastest."""
from __future__ import annotations

import time

import pytest
import torch

from contrastive.runtime import threads
from contrastive.runtime.threads import ThreadTuner, resolve, share
from contrastive.train import train
from tests.conftest import make_cfg


def test_each_process_gets_its_share_of_the_cores_left_by_the_workers(monkeypatch):
    assert (share(2, 1, 0), share(2, 2, 0), share(2, 1, 2), share(16, 2, 3), share(4, 8, 0)) == (2, 1, 1, 5, 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert resolve("auto", 2, 1) == 3 and resolve("adaptive", 1, 0) == 8 and resolve(3, 1, 0) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert resolve("auto", 2, 1) == 5  # the user's own setting wins
    assert resolve(3, 2, 1) == 3  # ... over the automatic choice, not over an explicit threads=N


@pytest.mark.parametrize("bad", ["fast", 0, -2, True, 1.5])
def test_bad_thread_settings_are_named(bad):
    with pytest.raises(ValueError, match=f"threads must be one of .* got {bad!r}"):
        resolve(bad, 1, 0)
    with pytest.raises(ValueError, match="threads=adaptive .* trainer.deterministic=true"):
        resolve("adaptive", 1, 0, deterministic=True)


def run_steps(tuner, steps, slow_on):
    """Steps that take 6 ms on `slow_on` threads and 1 ms otherwise."""
    for _ in range(steps):
        tuner.before()
        time.sleep(0.006 if tuner.trying == slow_on else 0.001)
        tuner.after()


@pytest.mark.parametrize("slow_on, ends_on", [(2, 1), (1, 2)])
def test_the_tuner_moves_to_the_faster_count_and_probes_less_when_nothing_changes(monkeypatch, slow_on, ends_on):
    counts = []
    monkeypatch.setattr(threads, "set_threads", counts.append)
    tuner = ThreadTuner(2, 2, every=4, probe=3)
    run_steps(tuner, 40, slow_on)
    assert tuner.current == ends_on and set(counts) <= {1, 2}
    assert tuner.wait > tuner.every  # the probes since the move changed nothing: they come less often


def test_a_probe_that_stalls_ends_after_one_step(monkeypatch):
    monkeypatch.setattr(threads, "set_threads", lambda n: None)
    tuner = ThreadTuner(1, 2, every=4, probe=5)
    run_steps(tuner, 4 + 5 + 1, slow_on=2)  # 4 steps on 1 thread, the down probe (none below 1), one up step
    assert tuner.since == 0 and tuner.wait == 8 and tuner.current == 1  # decided, backed off, stayed


def test_the_tuner_follows_a_neighbour_that_leaves(monkeypatch):
    monkeypatch.setattr(threads, "set_threads", lambda n: None)
    tuner = ThreadTuner(2, 2, every=4, probe=3)
    run_steps(tuner, 40, slow_on=2)  # a busy core: one thread is faster
    assert tuner.current == 1
    run_steps(tuner, 120, slow_on=1)  # the core is free again
    assert tuner.current == 2


def test_a_cpu_run_uses_the_configured_threads(tmp_path, monkeypatch):
    used = []
    monkeypatch.setattr(threads, "set_threads", used.append)
    before = torch.get_num_threads()
    train(make_cfg(tmp_path, ["threads=1", "trainer.max_steps=1", "evaluate=false"]))
    assert used == [1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be one of"):
        train(make_cfg(tmp_path / "bad", ["threads=many"]))
