"""The run's log file (Hydra's job logging): a run directory where it cannot be written stops the run
with a message naming the directory, instead of logging's "Unable to configure handler 'file'"; during the run
the file holds what the console showed."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any, TextIO

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class RunLogFile(logging.FileHandler):
    """`logging.FileHandler` that exits naming the path and the fix when the file cannot be opened."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None, delay: bool = False) -> None:
        try:
            super().__init__(filename, mode, encoding, delay)
        except OSError as e:
            # SystemExit passes through logging.config and Hydra, so this message is the run's last line
            raise SystemExit(f"cannot write the run's log file {filename} ({e.strerror}) in the run directory "
                             f"{os.path.dirname(os.path.abspath(filename))}; pick a writable one with "
                             "run_name=NAME or hydra.run.dir=DIR") from None


class _Copy:
    """A text stream that also appends what it is given to `log`; progress-bar redraws (`\\r`) stay on the
    console only, so the file holds the lines a user read."""

    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        if "\r" not in text:
            try:
                self.log.write(text)
                self.log.flush()
            except (OSError, ValueError):  # a full disk or a closed file must not stop the run
                pass
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def console_to_log_file() -> Iterator[None]:
    """While inside, the console (stdout, stderr, warnings, Lightning's messages) is also written to the run's
    log file (the file Hydra's job logging opened), in place of the log records alone."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    if not files:  # hydra/job_logging=disabled, or train() called as a function
        yield
        return
    for handler in files:  # the console handler's lines reach the file through the copy
        root.removeHandler(handler)
        handler.close()
    out, err = sys.stdout, sys.stderr
    with open(files[0].baseFilename, "a", encoding="utf-8") as log:
        sys.stdout, sys.stderr = _Copy(out, log), _Copy(err, log)
        copies = {id(out): sys.stdout, id(err): sys.stderr}
        # handlers hold the stream they were given (Hydra's console handler; Lightning's own, added when it is
        # imported before logging is configured): give them the copy
        loggers = [root, *(logging.getLogger(n) for n in ("lightning.pytorch", "pytorch_lightning",
                                                           "lightning.fabric", "lightning_fabric"))]
        consoles = [(h, h.stream) for lg in loggers for h in lg.handlers
                    if type(h) is logging.StreamHandler and id(h.stream) in copies]
        for h, stream in consoles:
            h.setStream(copies[id(stream)])
        try:
            yield
        except SystemExit as e:  # its message reaches the console after this, the file only here
            if isinstance(e.code, str):
                log.write(e.code + "\n")
            raise
        except Exception:
            log.write(traceback.format_exc())  # Hydra prints it to the console after this
            raise
        finally:
            sys.stdout, sys.stderr = out, err
            for h, stream in consoles:
                h.setStream(stream)


class CheckRunDir(Callback):
    """Hydra callback: before Hydra creates the run (or sweep) directory, make sure it can, so a read-only or
    mistyped place stops with a message naming it instead of a traceback from `pathlib`."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _can_create(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _can_create(str(config.hydra.sweep.dir))


def _can_create(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"cannot create the run directory {path} ({e.strerror}); pick a writable place with "
                         "run_name=NAME (under outputs/) or hydra.run.dir=DIR") from None
