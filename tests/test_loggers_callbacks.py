"""Loggers and callbacks are config groups: W&B (offline) and MLflow runs that their own readers load, a user's
callback added by name, and nothing the user sets silently replaced."""
from __future__ import annotations

import sys
import textwrap

import pytest

from contrastive.cli.evaluate import evaluate_run
from contrastive.runtime.safe_config import trusting
from contrastive.train import train
from tests.conftest import make_cfg

CALLBACK = '''
import pytorch_lightning as pl


class CountSteps(pl.Callback):
    """A user's callback: counts the training batches it sees."""

    def __init__(self, start: int = 0) -> None:
        self.seen = start

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.seen += 1
'''


def wandb_records(path) -> list:
    """The protobuf records of an offline W&B run file: W&B's own record type, read from its LevelDB-style log
    (a 7-byte header, then 32 KiB blocks of records with a checksum, a length and a kind each)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_and_mlflow_runs_load_in_their_readers_and_a_users_callback_runs(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    mlflow = pytest.importorskip("mlflow")
    for var in ("WANDB_API_KEY", "WANDB_MODE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in, so W&B runs offline
    (tmp_path / "user_callbacks.py").write_text(textwrap.dedent(CALLBACK))
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    _, objects = train(make_cfg(run, ["logger=[csv,wandb,mlflow]", "trainer.log_every_n_steps=1",
                                      "+callbacks.count._target_=user_callbacks.CountSteps", "+callbacks.count.start=10",
                                      "trainer.limit_val_batches=1", "monitors=false"]))
    sys.modules.pop("user_callbacks", None)
    counted = [c for c in objects["trainer"].callbacks if type(c).__name__ == "CountSteps"]
    assert len(counted) == 1 and counted[0].seen == 10 + objects["trainer"].global_step
    # W&B: an offline run directory whose records hold the logged metrics
    runs = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    history = {item.key or "/".join(item.nested_key) for r in wandb_records(runs[0])
               if r.WhichOneof("record_type") == "history"
               for item in r.history.item}
    assert {"train/loss_step", "val/loss", "eval/knn_top1/trained"} <= history, history
    # MLflow: the run in the SQLite store of the run directory, read back with mlflow's own search
    mlflow.set_tracking_uri(f"sqlite:///{run / 'mlflow.db'}")
    found = mlflow.search_runs(experiment_names=["contrastive"], output_format="list")
    assert len(found) == 1 and found[0].info.run_name == "run"
    assert {"train/loss_step", "val/loss", "eval/knn_top1/trained"} <= set(found[0].data.metrics)
    # contrastive-eval reads such a run directory; its user's callback is trusted by name only
    with pytest.raises(ValueError, match=r"callbacks.count._target_: 'user_callbacks.CountSteps'"):
        evaluate_run(str(run))
    with trusting(["user_callbacks"]):
        assert 0 <= evaluate_run(str(run))["knn_top1/trained"] <= 1


@pytest.mark.parametrize(("override", "said"), [
    ("+trainer.callbacks=[]", (r"trainer.callbacks would replace what the project gives the Trainer .* add yours "
                               r"as \+callbacks.NAME._target_=")),
    ("+trainer.logger=false", r"trainer.logger would replace .* choose logger=csv\|tensorboard\|wandb\|mlflow"),
])
def test_trainer_options_that_would_replace_the_projects_own_are_refused(tmp_path, override, said):
    with pytest.raises(ValueError, match=said):
        train(make_cfg(tmp_path, [override]))


def test_a_callback_option_that_is_not_a_callback_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"callbacks.oops built a Linear, not a Lightning Callback"):
        train(make_cfg(tmp_path, ["+callbacks.oops._target_=torch.nn.Linear", "+callbacks.oops.in_features=1",
                                  "+callbacks.oops.out_features=1"]))
