"""What every task shares: checking that each config group fits the task, and writing `eval.json`."""
from __future__ import annotations

import inspect
import os
from importlib import resources
from typing import Any, ClassVar

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from torch import nn

from contrastive.eval.report import read_json, write_json

# the groups a task may leave out of its config (`<group>: null`), and the ones every task uses
GROUPS = ("data", "encoder", "projector", "objective", "negatives", "candidates", "step", "model", "optimizer")


def group_class(cfg: DictConfig, group: str) -> type | None:
    """The class a group's option builds, or None where the group is off (or a factory function builds it)."""
    node = cfg.get(group)
    if node is None:
        return None
    if "_target_" not in node:
        raise ValueError(f"{group} has no _target_; choose one of {options(group)}")
    target = hydra.utils.get_object(node._target_)
    return target if isinstance(target, type) else None


def say_chosen(facts: str, made: dict[str, Any]) -> list[str]:
    """Print one line naming each option chosen from the data (`facts`: what they were chosen from), as the
    config would spell it; returns them as `key=value` (nothing printed when none was chosen)."""
    if made:
        spelled = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in made.items())
        print(f"chosen from the data ({facts}): {spelled} (set any of them to choose yourself)")
    return [f"{k}={v}" for k, v in made.items()]


def takes(target: Any, name: str) -> bool:
    """Whether `target` (a class, a function, or a partial of one) accepts the keyword `name`: what a task hands a
    part it builds (the vocabulary's counts, the training texts' IDF, the number of items) follows from what the
    part asks for, not from its class."""
    try:
        return name in inspect.signature(getattr(target, "func", target)).parameters
    except (TypeError, ValueError):  # a builtin without a signature asks for nothing
        return False


def is_project_class(cls: type) -> bool:
    """Whether `cls` is defined in the project (its own classes are checked against the task's lists)."""
    return cls.__module__.split(".")[0] == "contrastive"


def users_own(cfg: DictConfig, group: str, task: str) -> bool:
    """Whether `group`'s `_target_` is the user's own: a class outside the project (it must be an `nn.Module`)
    or a factory function (`torchvision.models.resnet18`; what it returns is checked when built)."""
    node = cfg[group]
    if OmegaConf.is_missing(node, "_target_"):
        raise ValueError(f"{group}=custom needs {group}._target_=<module>.<Class> (an nn.Module importable here, "
                         f"e.g. a file on PYTHONPATH), with its arguments as +{group}.<name>=<value>")
    target = hydra.utils.get_object(node._target_)
    if isinstance(target, type):
        if is_project_class(target):
            return False
        if not issubclass(target, nn.Module):
            raise TypeError(f"{group}: {node._target_} is not a torch.nn.Module; task={task} takes one for {group}")
        return True
    if not callable(target):
        raise TypeError(f"{group}._target_={node._target_} is neither a class nor a function")
    return True


def _option_target(group: str, name: str) -> str | None:
    """The `_target_` of option `name` of `group` under contrastive/conf (None for an option that turns it off)."""
    node = OmegaConf.create(resources.files("contrastive.conf").joinpath(group, f"{name}.yaml").read_text())
    node = node.get(group) if group in node else node  # `# @package _global_` options nest it
    if node is None or OmegaConf.is_missing(node, "_target_"):  # off, or the user's own (`custom`)
        return None
    return node.get("_target_")


def option_class(group: str, name: str) -> type | None:
    """The class option `name` of `group` builds (None for an option that turns the group off)."""
    target = _option_target(group, name)
    return hydra.utils.get_class(target) if target else None


def options(group: str, classes: tuple[type, ...] | None = None) -> list[str]:
    """The options of `group` under contrastive/conf (those building one of `classes`, if given)."""
    found = []
    for f in sorted(resources.files("contrastive.conf").joinpath(group).iterdir(), key=lambda p: p.name):
        if not f.name.endswith(".yaml"):
            continue
        cls = option_class(group, f.name[:-5])
        if classes is None or (cls is not None and issubclass(cls, classes)):
            found.append(f.name[:-5])
    return found


class Task:
    """A kind of training run. `uses` maps each config group the task needs to the classes it accepts;
    `build(cfg)` returns `{datamodule, model, ...reference copies}`; `evaluate(cfg, objects, trainer)` scores
    them and writes `eval.json`."""

    name = "task"
    metric = ""  # the eval.json key a sweep compares by default
    uses: ClassVar[dict[str, tuple[type, ...]]] = {}
    optional: ClassVar[tuple[str, ...]] = ()  # groups the task can use or leave off
    # groups that also take a user's own nn.Module (a class outside the project), held to the slot's contract
    # by a check before training instead of a class list
    open_slots: ClassVar[tuple[str, ...]] = ()
    has_monitors: ClassVar[bool] = False  # k-NN and linear-probe monitors at each validation (monitors=...)
    has_views: ClassVar[bool] = False  # augmented image views (the `augment` group)

    def check(self, cfg: DictConfig) -> None:
        """Fail before anything is built when a group is set that this task would ignore, or holds an option
        of the wrong kind; the message names the options that would be valid."""
        if cfg.get("monitors") is not None and not self.has_monitors:
            raise ValueError(f"monitors={cfg.monitors} has no effect: task={self.name} has no online monitors (its "
                             "evaluation runs at the end); remove it")
        augment = cfg.get("augment")
        if not self.has_views and augment is not None and not augment.get("auto"):
            raise ValueError(f"augment is set, but task={self.name} has no image views to augment; remove it")
        for group in GROUPS:
            if group not in self.uses:
                if cfg.get(group) is not None:
                    off = "none" if "none" in options(group) else "null"
                    raise ValueError(f"{group} is set, but task={self.name} does not use it (it would be ignored); "
                                     f"remove it (or choose {group}={off})")
                continue
            if cfg.get(group) is None:
                if group not in self.optional:
                    raise ValueError(f"task={self.name} needs {group}: one of {options(group, self.uses[group])}")
                continue
            if group in self.open_slots and users_own(cfg, group, self.name):
                continue  # held to the slot's contract when built
            cls = group_class(cfg, group)
            if cls is not None and not issubclass(cls, self.uses[group]):
                own = f", or your own: {group}=custom {group}._target_=..." if group in self.open_slots else ""
                raise ValueError(f"{group}: {cls.__name__} does not fit task={self.name}; choose one of "
                                 f"{options(group, self.uses[group])}{own}")

    def build(self, cfg: DictConfig) -> dict[str, Any]:
        raise NotImplementedError

    def evaluate(self, cfg: DictConfig, objects: dict[str, Any], trainer: pl.Trainer | None) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def report(cfg: DictConfig, trainer: pl.Trainer | None, metrics: dict[str, Any], **extra: Any) -> None:
        """Merge metrics plus `extra` into the run directory's `eval.json` and log the numbers as `eval/*`
        (no trainer: `contrastive-eval`, nothing to log to)."""
        path = os.path.join(cfg.output_dir, "eval.json")
        old = read_json(path) if os.path.isfile(path) else {}
        write_json(path, {**old, **metrics, **extra})
        numbers = {f"eval/{k}": v for k, v in metrics.items() if isinstance(v, float)}
        for lg in trainer.loggers if trainer is not None else []:
            lg.log_metrics(numbers, step=trainer.global_step)
