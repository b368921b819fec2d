"""Faults, round three, the poor cases: a signal during the final evaluation, the log file, a changed batch size
mid-epoch, left-out counts under several processes, tabs in a .txt, empty class folders, moved data, a run
directory that cannot be created."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
from omegaconf import OmegaConf, open_dict

from contrastive.cli.evaluate import evaluate_run
from contrastive.data.images.base import warn_left_out
from contrastive.data.images.folder_index import scan_folder
from contrastive.data.images.image_folder import ImageFolderDataModule
from contrastive.data.text.pair_files import read_pairs
from contrastive.runtime.threads import available_cores, policy_for
from contrastive.train import train
from tests.conftest import FAST, make_cfg
from tests.test_data import write_image_folder


def test_sigterm_in_the_final_evaluation_says_training_is_saved_and_train_log_holds_the_console(tmp_path):
    run = tmp_path / "run"
    # the evaluation sends itself SIGTERM, as a scheduler would while it runs
    script = textwrap.dedent(f"""
        import os, signal, sys
        from contrastive.tasks.image import ImageTask
        ImageTask.evaluate = lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM)
        sys.argv = ["contrastive-train", *{FAST!r}, "logger=none", "hydra.run.dir={run}"]
        from contrastive.train import main
        main()
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    said = (f"SIGTERM during the final evaluation: training had finished and is saved in {run}/checkpoints/"
            f"last.ckpt; evaluate it with contrastive-eval {run}")
    assert r.returncode == 1 and said in r.stderr, r.stderr[-2000:]
    log = (run / "train.log").read_text()
    # what the console showed: Lightning's messages, the warnings, the model summary and the stop
    for line in ("`Trainer.fit` stopped", "UserWarning", "Trainable params", said):
        assert line in log, f"{line!r} is not in train.log:\n{log[-2000:]}"


def test_resuming_mid_epoch_with_another_batch_size_is_refused(tmp_path):
    write_image_folder(tmp_path, 4)
    dm = ImageFolderDataModule(root=str(tmp_path), size=8, batch_size=4, num_workers=0)
    with pytest.raises(ValueError, match=r"stopped 3 batches into epoch 1 with data.batch_size=8; resume with "
                                         r"data.batch_size=8"):
        dm.load_state_dict({"epoch": 1, "consumed_batches": 3, "batch_size": 8})
    dm.load_state_dict({"epoch": 2, "consumed_batches": 0, "batch_size": 8})  # at an epoch boundary: fine
    dm.load_state_dict({"epoch": 1, "consumed_batches": 3})  # a checkpoint from before the size was saved
    assert dm._resume == {"epoch": 1, "consumed_batches": 3}


def test_the_left_out_count_is_per_process():
    with pytest.warns(UserWarning, match=r"234 of the 1258 training items are left out of each epoch: "):
        warn_left_out(1258, 256, 1)
    # three processes take 420 items each (1258 evened out to 1260) and train one batch of 256: 164 left each
    with pytest.warns(UserWarning, match=r"164 of the 1258 .* by each of the 3 processes \(which take 420"):
        warn_left_out(1258, 256, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_left_out(1024, 256, 2)


def test_more_processes_than_cores_is_said(tmp_path):
    many = available_cores() + 1
    cfg = make_cfg(tmp_path, ["trainer=ddp_cpu", f"trainer.devices={many}"])
    with pytest.warns(UserWarning, match=rf"trainer.devices={many} processes on {many - 1} cores"):
        policy_for(cfg)


def test_a_tab_separated_txt_says_the_delimiter_comes_from_the_extension(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("anchor\tpositive\na question\tits answer\n")
    with pytest.raises(ValueError, match=r"holds tabs, but this file is read as comma-separated: .* rename it to "
                                         r"\.tsv"):
        read_pairs(str(path))
    shutil.copy(path, tmp_path / "pairs.tsv")
    assert [r["anchor"] for r in read_pairs(str(tmp_path / "pairs.tsv"))] == ["a question"]


def test_a_class_folder_without_images_is_named_with_the_counts(tmp_path):
    write_image_folder(tmp_path, 3)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"class folder\(s\) \['notes'\] .* hold no images .*: images per class: "
                                         r"cat: 3, dog: 3, notes: 0"):
        index = scan_folder(str(tmp_path))
    assert index.classes == ["cat", "dog", "notes"]


def test_contrastive_eval_takes_where_the_data_moved(tmp_path):
    data = tmp_path / "img"
    data.mkdir()
    write_image_folder(data, 12, height=10, width=10)
    run = tmp_path / "run"
    train(make_cfg(run, ["data=image_folder", f"data.root={data}", "data.size=8", "encoder.in_channels=3",
                         "data.batch_size=8", "data.num_workers=0", "monitors=false"]))
    before = OmegaConf.load(run / "config.yaml")
    moved = tmp_path / "moved"
    data.rename(moved)
    with pytest.raises(FileNotFoundError, match=rf"if the run's data has moved, name its new place: contrastive-eval "
                                                rf"{run} data.root=NEW"):
        evaluate_run(str(run))
    with pytest.raises(ValueError, match=r"'optimizer.lr=1': contrastive-eval takes data.KEY=VALUE for a key of "
                                         r"the run's data \(data.root, "):
        evaluate_run(str(run), overrides=["optimizer.lr=1"])
    metrics = evaluate_run(str(run), overrides=[f"data.root={moved}"])
    assert 0 <= metrics["knn_top1/trained"] <= 1
    assert OmegaConf.load(run / "config.yaml") == before  # the run's record is left as it was trained


def test_a_run_directory_that_cannot_be_created_is_named(tmp_path):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    (tmp_path / "afile").write_text("")
    bad = tmp_path / "afile" / "run"
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.run.dir={bad}"], return_hydra_config=True)
    # Hydra runs its callbacks' on_run_start before it creates the run directory
    check = instantiate(cfg.hydra.callbacks.check_run_dir)
    with pytest.raises(SystemExit, match=rf"cannot create the run directory {bad} \(Not a directory\); pick a "
                                         r"writable place with run_name=NAME"):
        check.on_run_start(config=cfg)
    with open_dict(cfg):
        cfg.hydra.run.dir = str(tmp_path / "fine")
    check.on_run_start(config=cfg)
    assert (tmp_path / "fine").is_dir()


def test_lightning_is_not_resumable_warning_is_silenced_only_where_the_resume_is_exact(tmp_path):
    from pytorch_lightning.utilities import rank_zero_warn

    from contrastive.runtime.rng import quiet_exact_resume
    said = "You're resuming from a checkpoint that ended before the epoch ended and your dataloader is not resumable."
    write_image_folder(tmp_path, 2)
    exact = ImageFolderDataModule(root=str(tmp_path), size=8, batch_size=2, num_workers=0)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        with quiet_exact_resume(exact):
            rank_zero_warn(said)
        with quiet_exact_resume(object()):  # a data module that does not restore its position
            rank_zero_warn(said)
    assert len([w for w in got if said in str(w.message)]) == 1
