"""Every `contrastive-train` command the README and the docs show composes, and the task accepts it: a command
copied from the docs never fails on a misspelt key, an unknown option or an option its task would ignore."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_module

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def shown_commands(text: str) -> list[str]:
    """The arguments of each `contrastive-train` command in `text`: lines of code blocks (continuations joined)
    and inline `contrastive-train ...` spans."""
    text = text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        code = line.split("  #")[0].strip()
        m = re.match(r"^(?:PYTHONPATH=\S+ )?contrastive-train(?: (.*))?$", code)
        if m:
            found.append(m.group(1) or "")
    found += re.findall(r"`contrastive-train ([^`]*)`", " ".join(text.splitlines()))
    return found


def as_overrides(args: str) -> list[str] | None:
    """The overrides of one job of the command (a sweep's first value, without `-m` and search spaces); None for
    what is not a runnable command (`--help`, an elided `...`, a diagram's label)."""
    out = []
    for arg in shlex.split(args):
        if arg.startswith("-") or "interval(" in arg or "hydra.run.dir=" in arg or "<" in arg:
            continue
        if "=" not in arg:
            return None
        key, _, value = arg.partition("=")
        if "," in value and not value.startswith("["):
            value = value.split(",")[0]
        out.append(f"{key}={value}")
    return out


COMMANDS = sorted({(doc, args) for doc in DOCS for args in shown_commands((ROOT / doc).read_text())
                   if as_overrides(args) is not None})

MY_NETS = """
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, width: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)
"""


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """The user files the README's commands name: `my_losses.py` is the README's own example, as shown."""
    example = re.search(r"```python\n(.*?class AlignUniform.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    (tmp_path / "my_losses.py").write_text(example.group(1))
    (tmp_path / "my_nets.py").write_text(MY_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_the_docs_show_commands():
    assert sum(doc == "README.md" for doc, _ in COMMANDS) >= 20


@pytest.mark.parametrize("doc, args", COMMANDS, ids=[f"{d}: {a}" for d, a in COMMANDS])
def test_a_command_shown_in_the_docs_composes_and_fits_its_task(doc, args, user_modules):
    with initialize_config_module("contrastive.conf", version_base="1.3"):
        cfg = compose("train", overrides=as_overrides(args), return_hydra_config=True)
    hydra.utils.instantiate(cfg.task).check(cfg)
