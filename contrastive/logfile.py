"""The run's log file (Hydra's job logging): a run directory where it cannot be written stops the run
with a message naming the directory, instead of logging's "Unable to configure handler 'file'"."""
from __future__ import annotations

import logging
import os


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
