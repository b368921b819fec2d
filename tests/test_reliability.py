"""Kill-and-resume equality, atomic checkpoints, the NaN guard, config and data errors."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from contrastive.losses import NTXent
from contrastive.runtime.checkpoints import AtomicCheckpointIO
from contrastive.train import train
from tests.conftest import make_cfg, run_console

RUN = ["trainer.max_epochs=3", "trainer.limit_train_batches=5", "trainer.limit_val_batches=1",
       "trainer.check_val_every_n_epoch=1", "data.batch_size=128", "checkpoint_every_n_steps=1",
       "trainer.deterministic=true", "evaluate=false", "trainer.enable_progress_bar=false", "logger=none"]


def _launch(run_dir: Path, extra: list[str], cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if cwd is not None:  # `python -m` imports from the working directory: a test's own callback module there
        env["PYTHONPATH"] = os.pathsep.join([str(Path.cwd()), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-m", "contrastive.train", *RUN, f"hydra.run.dir={run_dir}", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)


def _final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 15
    return ckpt["state_dict"]


_UNINTERRUPTED: dict[str, dict[str, torch.Tensor]] = {}


def _uninterrupted(tmp_path_factory: pytest.TempPathFactory, extra: list[str]) -> dict[str, torch.Tensor]:
    """The final weights of the run trained without a stop (once per configuration; how often it checkpoints
    does not change what it trains)."""
    key = " ".join(extra)
    if key not in _UNINTERRUPTED:
        run = tmp_path_factory.mktemp("uninterrupted")
        r = run_console([*RUN, f"hydra.run.dir={run}", *extra], run)
        assert r.returncode == 0, r.stderr[-2000:]
        _UNINTERRUPTED[key] = _final_state(run)
    return _UNINTERRUPTED[key]


def _resume_and_compare(run: Path, extra: list[str], saved_step: int, reference: dict[str, torch.Tensor]) -> None:
    """Continue the stopped run in `run`: it must train only the steps after `saved_step` (it logs each one; a
    seeded restart from step 0 would end with the same weights) and end where the uninterrupted run ended."""
    resumed = run_console([*RUN, f"hydra.run.dir={run}", *extra, "logger=default", "trainer.log_every_n_steps=1"],
                          run.parent)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(run / "logs" / "metrics.csv", newline="") as f:
        steps = sorted({int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss_step")})
    assert steps == list(range(saved_step, 15)), f"saved at step {saved_step}, resumed run trained {steps}"
    stale = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("last-v")]
    assert not stale, f"the resume left a second, stale copy of last.ckpt: {stale}"
    final = _final_state(run)
    assert final.keys() == reference.keys()
    worst = max(float((reference[k].double() - final[k].double()).abs().max())
                for k in final if final[k].is_floating_point())
    assert worst <= 1e-6, f"resumed run differs by {worst} (stopped at step {saved_step})"


@pytest.mark.parametrize("extra", [[], ["experiment=moco_digits", "num_negatives=300"],
                                   ["experiment=word2vec_wiki", "data=lee", "model.dim=32"]],
                         ids=["simclr", "moco", "word2vec"])
@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, tmp_path_factory, extra):
    reference = _uninterrupted(tmp_path_factory, extra)
    victim = _launch(tmp_path / "killed", extra)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    killed_after = None
    while time.time() < deadline and victim.poll() is None:
        steps = [int(p.stem.split("=")[1]) for p in ckpts.glob("step-step=*.ckpt")] if ckpts.exists() else []
        if steps and max(steps) >= 7:  # mid-epoch 2 (5 steps per epoch)
            victim.send_signal(signal.SIGKILL)
            killed_after = max(steps)
            break
        time.sleep(0.02)
    victim.wait()
    assert killed_after is not None and victim.returncode == -signal.SIGKILL, "the run ended before the kill"
    saved_step = torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"]
    assert saved_step < 15
    _resume_and_compare(tmp_path / "killed", [*extra, "resume=true"], saved_step, reference)


KILL_AT = '''
import os
import signal

import pytorch_lightning as pl


class KillAt(pl.Callback):
    """Dies as a preempted job does (SIGKILL, nothing saved) right after the checkpoint of the batch that makes
    `step` optimizer steps: before the next batch, or before the validation and epoch-end saves after an epoch's
    last batch."""

    def __init__(self, step: int) -> None:
        self.step = step

    def _kill(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

    on_train_batch_start = on_validation_start = on_train_epoch_end = _kill  # before ModelCheckpoint's epoch end
'''

TEXT_PAIRS = ["experiment=text_pairs_wiki", "task.word_vectors.epochs=1", "data/tokenizer=hashing",
              "data.tokenizer.vocab_size=4096", "data.extra_texts=[]", "data.batch_size=8", "encoder.dim=16",
              "encoder.out_dim=16"]


def _small_pairs_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """100 pairs of made-up sentences (80 for training: 10 batches of 8 an epoch, 5 of them trained), written once."""
    path = tmp_path_factory.getbasetemp() / "pairs.tsv"
    if not path.exists():
        words = [f"w{i}" for i in range(300)]
        g = torch.Generator().manual_seed(0)
        rows = []
        for _ in range(100):
            topic = [words[i] for i in torch.randint(0, 300, (6,), generator=g)]
            rows.append(" ".join(topic[:4] + ["about", "this"]) + "\t" + " ".join(topic[2:] + ["and", "more"]))
        path.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n")
    return f"data.path={path}"


@pytest.mark.parametrize("extra,step", [([], 10), (["experiment=word2vec_wiki", "data=lee", "model.dim=32"], 10),
                                        (TEXT_PAIRS, 7), (TEXT_PAIRS, 10)],
                         ids=["simclr-epoch-end", "word2vec-epoch-end", "text_pairs-mid-epoch", "text_pairs-epoch-end"])
@pytest.mark.slow
def test_sigkill_right_after_a_checkpoint_then_resume_equals_uninterrupted(tmp_path, tmp_path_factory, extra, step):
    """Killed right after the checkpoint of step 7 (mid-epoch) or 10 (an epoch's last batch, 5-step epochs): the
    continuation must draw what the uninterrupted run draws (the next epoch's loader must not take from the global
    RNG), see the pairs of the epoch in the same order, and log its steps from `step` on."""
    if extra == TEXT_PAIRS:  # the pairs file is written at run time, so added here
        extra = [*extra, _small_pairs_file(tmp_path_factory)]
    reference = _uninterrupted(tmp_path_factory, extra)
    (tmp_path / "kill_at.py").write_text(KILL_AT)
    victim = _launch(tmp_path / "killed", [*extra, "+callbacks.kill._target_=kill_at.KillAt",
                                           f"+callbacks.kill.step={step}"], cwd=tmp_path)
    _, err = victim.communicate(timeout=240)
    assert victim.returncode == -signal.SIGKILL, err[-2000:]
    saved_step = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert saved_step == step
    _resume_and_compare(tmp_path / "killed", [*extra, "resume=true"], saved_step, reference)


@pytest.mark.slow
def test_sigterm_saves_the_current_step_and_resume_auto_continues_exactly(tmp_path, tmp_path_factory):
    run = tmp_path / "run"
    no_periodic = ["checkpoint_every_n_steps=1000"]  # last.ckpt only at epoch ends, or by SIGTERM
    reference = _uninterrupted(tmp_path_factory, [])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # resume=auto on a directory without a checkpoint starts training
    victim = subprocess.Popen([sys.executable, "-m", "contrastive.train", *RUN, *no_periodic, f"hydra.run.dir={run}",
                               "resume=auto"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and not last.exists():
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before the signal"
    victim.send_signal(signal.SIGTERM)  # during epoch 2, after the end-of-epoch-1 checkpoint at step 5
    sent = time.time()
    out, _ = victim.communicate(timeout=120)
    assert time.time() - sent < 60 and victim.returncode == 0, out[-2000:]
    saved_step = torch.load(last, weights_only=True)["global_step"]
    # mid-epoch 2 as a rule; at epoch 1's end when the signal lands while Lightning is finishing that epoch
    assert f"SIGTERM: saved step {saved_step} to {last}" in out and 5 <= saved_step < 15, out[-2000:]
    _resume_and_compare(run, [*no_periodic, "resume=auto"], saved_step, reference)


@pytest.mark.slow
def test_sigusr1_in_a_slurm_job_saves_the_step_and_requeues(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # stands in for SLURM's: records how it was called
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'scontrol.args'}\n")
    scontrol.chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "pretrain", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NODELIST": "localhost"}
    env = {**os.environ, **slurm, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    run = tmp_path / "run"
    victim = subprocess.Popen([sys.executable, "-m", "contrastive.train", *RUN, "checkpoint_every_n_steps=1000",
                               f"hydra.run.dir={run}", "resume=auto"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and not last.exists():
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before the signal"
    victim.send_signal(signal.SIGUSR1)  # what SLURM sends with --signal=USR1@90
    out, _ = victim.communicate(timeout=120)
    assert victim.returncode == 0, out[-2000:]
    saved_step = torch.load(last, weights_only=True)["global_step"]
    assert f"SIGUSR1: saved step {saved_step} to {last}" in out and 5 < saved_step < 15, out[-2000:]
    assert "requeued SLURM job 4242" in out and (tmp_path / "scontrol.args").read_text().split() == ["requeue", "4242"]


def test_run_name_gives_a_stable_directory(tmp_path):
    r = run_console(["run_name=my-run", "trainer.max_steps=1", "trainer.limit_val_batches=0", "evaluate=false",
                     "logger=none", "trainer.enable_progress_bar=false"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "outputs" / "my-run" / "checkpoints" / "last.ckpt").is_file()
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["my-run"]


def test_atomic_save_keeps_old_checkpoint_when_a_write_fails(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)

    def broken(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("No space left on device")
    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match=r"could not write checkpoint .*last\.ckpt \(OSError: No space left on device\); "
                                      r"0 MiB were written .* MiB are free there"):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["step"].item() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no partial .tmp left to fill the disk


def _at(step: int, phase: str = "batch") -> dict:
    return {"epoch": 0, "global_step": step, "loops": {"phase": phase}, "w": torch.full((1000,), float(step))}


def test_the_same_position_saved_twice_is_one_file_on_disk(tmp_path):
    io = AtomicCheckpointIO()
    step, last = tmp_path / "step-step=3.ckpt", tmp_path / "last.ckpt"
    io.save_checkpoint(_at(3), step)
    io.save_checkpoint(_at(3), last)
    assert os.stat(step).st_ino == os.stat(last).st_ino  # a hard link, not a second full copy
    io.save_checkpoint(_at(3, "after validation"), last)  # same step, another moment: its own file
    assert os.stat(step).st_ino != os.stat(last).st_ino
    fresh, later = AtomicCheckpointIO(), tmp_path / "v" / "last.ckpt"
    fresh.save_checkpoint(_at(3), tmp_path / "v" / "step-step=3.ckpt")
    fresh.save_checkpoint(_at(3, "after validation"), later)  # the same step, but the loops moved on
    assert os.stat(later).st_nlink == 1 and fresh.load_checkpoint(later)["loops"] == {"phase": "after validation"}
    io.save_checkpoint(_at(5), step)
    io.save_checkpoint(_at(5), last)
    os.remove(step)  # rotated away by the next periodic save: last.ckpt keeps the data
    assert io.load_checkpoint(last)["w"][0].item() == 5
    other = tmp_path / "elsewhere"
    io.save_checkpoint(_at(5), other / "last.ckpt")  # another folder: a copy
    assert os.stat(other / "last.ckpt").st_nlink == 1


def test_a_periodic_save_writes_one_full_checkpoint(tmp_path, monkeypatch):
    writes = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: (writes.append(obj.get("global_step")),
                                                                 real_save(obj, f, *a, **k)))
    cfg = make_cfg(tmp_path, ["trainer.limit_train_batches=4", "checkpoint_every_n_steps=2", "evaluate=false",
                              "trainer.check_val_every_n_epoch=5", "logger=none"])
    train(cfg)
    # step-2 + last at step 2, step-4 + last at step 4, last at the epoch's end: three full writes, not five
    assert writes == [2, 4, 4], writes


def test_damaged_checkpoint_is_named_with_the_ones_to_use_instead(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, tmp_path / "step-step=3.ckpt")
    good = (tmp_path / "step-step=3.ckpt").read_bytes()
    for damaged in (good[: len(good) // 2], b"\x00random bytes" * 50):
        (tmp_path / "last.ckpt").write_bytes(damaged)
        with pytest.raises(ValueError, match=r"checkpoint .*last\.ckpt is damaged and cannot be loaded .* "
                                             r"contrastive-train 'ckpt_path=.*' \(contrastive-eval, -export and "
                                             r"-embed: --checkpoint <name>\); in .*: step-step=3\.ckpt") as e:
            io.load_checkpoint(tmp_path / "last.ckpt")
    # the override as printed, split as a shell splits it, gives Hydra the whole file name (an `=` in it)
    import re
    import shlex
    printed = re.search(r"contrastive-train ('ckpt_path=[^']*')", str(e.value)).group(1)
    assert make_cfg(tmp_path, shlex.split(printed)).ckpt_path == str(tmp_path / "step-step=3.ckpt")


def _nan_loss(self, *args, **kwargs):
    return torch.tensor(float("nan"), requires_grad=True)


def test_nan_loss_stops_with_step_and_term(tmp_path, monkeypatch):
    monkeypatch.setattr(NTXent, "forward", _nan_loss)
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan at step 0 \(loss term: NTXent"):
        train(make_cfg(tmp_path, ["evaluate=false"]))


def test_nan_loss_skips_steps_with_guard_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(NTXent, "forward", _nan_loss)
    with pytest.warns(UserWarning, match="step skipped"):
        _, objects = train(make_cfg(tmp_path, ["evaluate=false", "guard=skip"]))
    model = objects["model"]
    assert model.skipped_steps == 2
    for p, q in zip(model.encoder.parameters(), objects["random_init"].parameters()):
        assert torch.equal(p, q)  # nothing was updated


def test_nan_gradient_stops_naming_the_parameter(tmp_path, monkeypatch):
    from contrastive.encoders import DigitsCNN
    original = DigitsCNN.__init__

    def poisoned(self, *a, **k):
        original(self, *a, **k)
        next(self.parameters()).register_hook(lambda g: g * float("nan"))
    monkeypatch.setattr(DigitsCNN, "__init__", poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite gradient in encoder\.net\.0\.0\.weight at step 0"):
        train(make_cfg(tmp_path, ["evaluate=false"]))


def test_resume_into_other_config_lists_mismatches(tmp_path):
    train(make_cfg(tmp_path, ["evaluate=false"]))
    with pytest.raises(ValueError, match=r"encoder\.net\.0\.0\.weight: checkpoint \(32, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        train(make_cfg(tmp_path, ["evaluate=false", "resume=true", "encoder.width=16"]))
    with pytest.raises(ValueError, match=r"does not fit this configuration"):  # a requeued job with another model
        train(make_cfg(tmp_path, ["evaluate=false", "resume=auto", "encoder.width=16"]))


def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = make_cfg(tmp_path)
    cfg.output_dir = str(blocker / "run")
    with pytest.raises(OSError, match="is not writable"):
        train(cfg)


def test_bad_config_values_fail_before_data_loads(tmp_path):
    for override, match in [("objective.tile_size=0", "tile_size"), ("guard=maybe", "guard must be"),
                            ("model.cache_chunk=-1", "cache_chunk")]:
        with pytest.raises(Exception, match=match):
            train(make_cfg(tmp_path, [override, "evaluate=false"]))


def test_sigterm_outside_a_training_batch_still_saves(capsys):
    from types import SimpleNamespace

    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from contrastive.runtime.preemption import SaveOnSigterm
    saved = []
    trainer = SimpleNamespace(world_size=1, is_global_zero=True, global_step=5, save_checkpoint=saved.append)
    cb = SaveOnSigterm("last.ckpt")
    cb.on_exception(trainer, None, ValueError("not a signal"))
    assert saved == []
    cb.on_exception(trainer, None, SIGTERMException())  # Lightning stopped at an epoch's end or in validation
    cb.on_exception(trainer, None, SIGTERMException())
    assert saved == ["last.ckpt"] and "SIGTERM: saved step 5 to last.ckpt" in capsys.readouterr().out
    ddp = SaveOnSigterm("last.ckpt")
    ddp.on_exception(SimpleNamespace(**{**vars(trainer), "world_size": 2}), None, SIGTERMException())
    assert saved == ["last.ckpt"]  # ranks may not meet there: no collective save


def test_continuing_a_run_that_max_steps_stopped_draws_the_batches_an_uninterrupted_run_draws(tmp_path, monkeypatch):
    from contrastive.models import SimCLR
    seen: list[list[int]] = []
    loss = SimCLR._loss

    def recording(self, batch, stage):
        if stage == "train":
            seen.append(batch[3].tolist())
        return loss(self, batch, stage)

    monkeypatch.setattr(SimCLR, "_loss", recording)
    args = ["data.batch_size=128", "trainer.limit_train_batches=4", "trainer.max_epochs=10",
            "trainer.check_val_every_n_epoch=100", "evaluate=false", "logger=none"]
    train(make_cfg(tmp_path / "full", [*args, "trainer.max_steps=10"]))
    want, seen[:] = list(seen), []
    for steps in (2, 8, 10):  # stops mid-epoch 0, at the end of epoch 1; the last continuation ends mid-epoch 2
        _, objects = train(make_cfg(tmp_path / "cut", [*args, f"trainer.max_steps={steps}", "resume=auto"]))
        assert objects["trainer"].global_step == steps == len(seen), (steps, len(seen))
    # the same batches in the same order (the weights differ: each run plans its learning-rate schedule over its
    # own max_steps)
    assert seen == want
    from omegaconf import OmegaConf
    assert OmegaConf.load(tmp_path / "cut" / "config.yaml").trainer.max_steps == 2  # as the run started


def test_a_checkpoint_is_synced_before_it_replaces_the_old_one_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from contrastive.runtime import checkpoints
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: (events.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_fsync(fd)))
    monkeypatch.setattr(checkpoints.os, "replace", lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    AtomicCheckpointIO().save_checkpoint({"global_step": 1, "state_dict": {"w": torch.ones(2)}}, tmp_path / "a.ckpt")
    tmp = str(tmp_path / "a.ckpt.tmp")
    assert events == [("fsync", tmp), ("replace", tmp)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]


def test_a_slurm_array_task_requeues_itself_by_its_array_id(tmp_path, monkeypatch, capsys):
    from contrastive.runtime.preemption import requeue_slurm_job
    log = tmp_path / "calls"
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{scontrol.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "1008")  # an array task's own job id differs from its array's
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1000")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    requeue_slurm_job()
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    requeue_slurm_job()
    assert log.read_text().splitlines() == ["requeue 1000_7", "requeue 1008"]
    assert "requeued SLURM job 1000_7" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_and_says_how_to_continue(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    victim = subprocess.Popen([sys.executable, "-m", "contrastive.train", *RUN, "checkpoint_every_n_steps=1000",
                               f"hydra.run.dir={run}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and not last.exists():
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before the signal"
    victim.send_signal(signal.SIGINT)  # in epoch 2, after the end-of-epoch-1 checkpoint
    out, err = victim.communicate(timeout=120)
    saved_step = torch.load(last, weights_only=True)["global_step"]
    assert victim.returncode != 0, "Ctrl-C must stop a sweep too"
    assert "Ctrl-C: saving at the end of this batch" in out, out[-2000:]
    assert f"SIGINT (Ctrl-C): saved step {saved_step} to {last}; run the same command with resume=auto" in out
    assert 5 < saved_step < 15, (saved_step, out[-2000:], err[-2000:])
