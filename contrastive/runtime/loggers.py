"""Loggers of the `logger` group: a CSV logger that appends to an existing metrics.csv (a resumed run continues its
own log), and W&B and MLflow loggers with local defaults (offline W&B, a file store in the run directory)."""
from __future__ import annotations

import csv
import netrc
import os
import uuid
from typing import Any

from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Lightning deletes an existing metrics.csv here; we keep it, and start from its header so that new
        # rows append under the same columns (new columns rewrite the header, keeping the old rows)
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = list(header)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that restarting in the same directory appends instead of deleting."""

    @property  # type: ignore[override]
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def wandb_logged_in() -> bool:
    """Whether W&B has credentials here: `WANDB_API_KEY`, or an `api.wandb.ai` entry in `~/.netrc`
    (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _run_id(folder: str, name: str) -> str:
    """An id kept in `<folder>/<name>`, made on first use: a resumed run continues the same tracker run."""
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        with open(path) as f:
            return f.read().strip()
    os.makedirs(folder, exist_ok=True)
    made = uuid.uuid4().hex[:12]
    with open(path, "w") as f:
        f.write(made)
    return made


class WandbRun(WandbLogger):
    """Lightning's WandbLogger (pip install wandb) writing under `<save_dir>/wandb`: offline unless the user has
    logged in (`wandb sync` uploads it later), or as `WANDB_MODE` says; the W&B run is named after the run
    directory, and a resumed run continues it."""

    def __init__(self, save_dir: str, project: str = "contrastive", name: str | None = None,
                 offline: bool | None = None, **kwargs: Any) -> None:
        mode = os.environ.get("WANDB_MODE")
        if offline is None:
            offline = mode == "offline" or (mode is None and not wandb_logged_in())
        run_dir = os.path.abspath(save_dir)
        super().__init__(name=name or os.path.basename(run_dir), save_dir=run_dir, project=project,
                         offline=offline, version=_run_id(os.path.join(run_dir, "wandb"), ".run_id"), **kwargs)

    def finish(self) -> None:
        """End the W&B run once the evaluation is logged: its files are complete when training returns."""
        if self._experiment is not None:
            self._experiment.finish()
            self._experiment = None


class MLflowRun(MLFlowLogger):
    """Lightning's MLFlowLogger (pip install mlflow) writing to a local SQLite store, `<save_dir>/mlflow.db`
    (artifacts in `<save_dir>/mlartifacts`), unless `MLFLOW_TRACKING_URI` names another; the MLflow run is named
    after the run directory."""

    def __init__(self, save_dir: str, experiment_name: str = "contrastive", run_name: str | None = None,
                 **kwargs: Any) -> None:
        run_dir = os.path.abspath(save_dir)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///" + os.path.join(run_dir, "mlflow.db")
        kwargs.setdefault("artifact_location", "file:" + os.path.join(run_dir, "mlartifacts"))
        super().__init__(experiment_name=experiment_name, run_name=run_name or os.path.basename(run_dir),
                         tracking_uri=uri, **kwargs)
