"""End-to-end: the Hydra config composes, trains a few steps, evaluates, checkpoints and resumes."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException

from contrastive.train import train
from tests.conftest import make_cfg, run_cli, run_console

KEYS = [f"{m}/{f}" for m in ("knn_top1", "knn10_top1", "linear_top1") for f in ("trained", "random_init", "raw_pixels")]


def test_default_run_writes_eval_plots_and_checkpoints(tmp_path):
    _metrics, objects = train(make_cfg(tmp_path))
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert sorted(ev) == sorted([*KEYS, "test_images"]) and ev["test_images"] == 359  # digits' 20% test split
    assert all(0.0 <= ev[k] <= 1.0 for k in KEYS)
    assert ev["knn_top1/raw_pixels"] > 0.9  # the raw-pixel baseline is strong on digits
    for name in ("embedding.png", "loss.png", "config.yaml", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (tmp_path / name).exists(), name
    assert any(p.startswith("events.") for p in os.listdir(tmp_path / "tensorboard"))
    assert objects["trainer"].global_step == 2


def test_resume_continues_from_last_checkpoint_and_its_log(tmp_path):
    train(make_cfg(tmp_path, ["evaluate=false", "trainer.log_every_n_steps=1"]))
    _, objects = train(make_cfg(tmp_path, ["evaluate=false", "resume=true", "trainer.max_epochs=2",
                                           "trainer.log_every_n_steps=1"]))
    assert objects["trainer"].global_step == 4  # 2 steps restored + 2 new
    with open(tmp_path / "logs" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]
    assert steps == [0, 1, 2, 3]  # one log, continued: the first run's rows are still there
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert not [n for n in ckpts if n.startswith("last-v")], ckpts  # no stale versioned copy of last.ckpt


def test_resume_without_checkpoint_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="last.ckpt does not exist"):
        train(make_cfg(tmp_path, ["resume=true"]))


@pytest.mark.parametrize("overrides", [
    ["objective=infonce", "objective.temperature=0.2"],
    ["objective=ntxent", "objective.learnable_temperature=true"],
    ["objective=clip"],
    ["optimizer=lars"],
    ["optimizer=sgd", "logger=none"],
    ["encoder=resnet18", "encoder.in_channels=1", "data.size=8", "projector.hidden_dim=32"],
])
def test_config_options_train(tmp_path, overrides):
    metrics, objects = train(make_cfg(tmp_path, overrides + ["evaluate=false"]))
    assert objects["trainer"].global_step == 2
    assert metrics["train/loss_epoch"] > 0


def test_unknown_option_lists_choices(tmp_path):
    with pytest.raises(MissingConfigException, match="ntxent"):
        make_cfg(tmp_path, ["objective=nonexistent"])


def test_misspelt_key_fails(tmp_path):
    with pytest.raises(ConfigCompositionException, match="temprature"):
        make_cfg(tmp_path, ["objective.temprature=0.1"])


@pytest.mark.slow
def test_cli_errors_are_clear(tmp_path):
    r = run_console(["objective=nonexistent"], tmp_path)
    assert r.returncode != 0 and "Available options" in r.stderr and "ntxent" in r.stderr
    r = run_console(["objective.temprature=0.1"], tmp_path)
    assert r.returncode != 0 and "temprature" in r.stderr


@pytest.mark.slow
def test_multirun_writes_one_directory_per_job(tmp_path):
    r = run_console(["-m", "objective.temperature=0.2,0.5", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                     "trainer.limit_val_batches=1", "evaluate=false", "hydra.sweep.dir=sweep"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    temps = [json.dumps((tmp_path / "sweep" / j / "config.yaml").read_text()) for j in jobs]
    assert "temperature: 0.2" in temps[0] and "temperature: 0.5" in temps[1]


@pytest.mark.slow
@pytest.mark.ddp
def test_multirun_with_ddp_cpu_gives_each_job_one_run_directory(tmp_path):
    r = run_cli(["-m", "objective.temperature=0.2,0.5", "trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=1",
                 "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "data.batch_size=32",
                 "hydra.sweep.dir=sweep"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]  # the second process made no directory of its own
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):  # rank 0 evaluates and writes into its job's directory
        assert (tmp_path / "sweep" / job / "checkpoints" / "last.ckpt").exists()
        assert (tmp_path / "sweep" / job / "eval.json").exists()
    assert "world_size: 2" in r.stdout + r.stderr or "GLOBAL_RANK: 1" in r.stdout + r.stderr


@pytest.mark.parametrize("experiment,model,encoder", [("simclr_cifar10", "SimCLR", "ResNet"),
                                                      ("moco_cifar10", "MoCo", "ResNet")])
def test_cifar_experiments_compose_and_build(tmp_path, experiment, model, encoder):
    from contrastive.train import build
    cfg = make_cfg(tmp_path, [f"experiment={experiment}", f"data.root={tmp_path}"])
    objects = build(cfg)
    assert type(objects["model"]).__name__ == model and type(objects["model"].encoder).__name__ == encoder
    assert objects["model"].encoder.net.conv1.kernel_size == (3, 3)  # the CIFAR stem


@pytest.mark.slow
@pytest.mark.ddp
def test_two_torchrun_nodes_share_one_run_directory(tmp_path):
    import shutil
    import socket
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["-m", "contrastive.train", "trainer=ddp_cpu", "trainer.devices=1", "trainer.strategy=ddp",
              "run_name=two-nodes", "trainer.max_epochs=1", "trainer.limit_val_batches=1", "evaluate=false",
              "logger=none", "trainer.enable_progress_bar=false", "data.batch_size=64"]
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    nodes = [subprocess.Popen([torchrun, "--nnodes=2", "--nproc_per_node=1", f"--node_rank={r}",
                               "--master_addr=127.0.0.1", f"--master_port={port}", *common, "trainer.num_nodes=2"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    for node in nodes:
        assert node.wait(timeout=300) == 0, node.stderr.read()[-2000:]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["two-nodes"]  # one directory for the job
    two = torch.load(tmp_path / "outputs" / "two-nodes" / "checkpoints" / "last.ckpt", weights_only=True)
    one = run_console([a for a in common[2:] if "strategy" not in a and "devices" not in a and "ddp_cpu" not in a]
                      + ["run_name=one"], tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    single = torch.load(tmp_path / "outputs" / "one" / "checkpoints" / "last.ckpt", weights_only=True)
    # the data is split across both processes: half the optimizer steps per epoch (up to drop_last's rounding)
    assert abs(2 * two["global_step"] - single["global_step"]) <= 1, (two["global_step"], single["global_step"])
