"""Rebuilding objects from a saved run's `config.yaml` without calling code the project does not own: a run
directory is something people download and share, so its `_target_`s are checked before anything is built."""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from contrastive.runtime import legacy

# classes outside `contrastive.*` that the project's own configs name
ALLOWED_OUTSIDE = frozenset({"pytorch_lightning.Trainer", "pytorch_lightning.loggers.TensorBoardLogger",
                             "torch.optim.AdamW", "torch.optim.SGD", "torch.optim.Adam"})


# the project's optional integrations, trusted by name: anything defined under these packages
TRUSTED_PACKAGES = ("torchvision.models", "timm", "transformers", "pytorch_lightning.loggers",
                    "pytorch_lightning.callbacks", "torch.optim")
# modules whose classes moved: a run directory saved before the move names them by the old path
MOVED = {"contrastive.loggers.": "contrastive.runtime.loggers."}
_trusted: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("trusted", default=())


@contextlib.contextmanager
def trusting(modules: Iterable[str]) -> Iterator[None]:
    """Within, run configs may also name classes and functions defined under `modules` (`my_pkg`,
    `my_pkg.nets`): what a user names on the command line (`--trust my_pkg`), never what a config says."""
    names = tuple(m.strip() for m in modules if m.strip())
    bad = [m for m in names if not all(p.isidentifier() for p in m.split("."))]
    if bad:
        raise ValueError(f"--trust takes module names separated by commas (my_pkg,my_pkg.nets), got {bad}")
    token = _trusted.set(_trusted.get() + names)
    try:
        yield
    finally:
        _trusted.reset(token)


def _defined_under(target: str, roots: tuple[str, ...]) -> bool:
    """True when `target` names a class or function defined in a module under one of `roots` (not one such a
    module merely imports: `contrastive.runtime.preemption.subprocess.Popen` is `subprocess`'s)."""
    parts = target.split(".")
    inside = [r for r in roots if target.startswith(r + ".")]
    if not inside or len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix, then attributes
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        module = str(getattr(obj, "__module__", ""))
        return (isinstance(obj, type) or inspect.isfunction(obj)) and any(
            module == r or module.startswith(r + ".") for r in inside)
    return False


def _is_project_class(target: str) -> bool:
    """True when `target` names a class defined in a `contrastive.*` module (not one it merely imports)."""
    return _defined_under(target, ("contrastive",)) and isinstance(hydra.utils.get_object(target), type)


def _target_nodes(cfg: DictConfig | ListConfig, prefix: str = "") -> Iterator[tuple[DictConfig, str, Any]]:
    """`(the mapping holding it, its dotted key, its unresolved value)` of every `_target_` in `cfg`, at any depth."""
    items = cfg.items_ex(resolve=False) if isinstance(cfg, DictConfig) else enumerate(cfg)
    for key, _ in list(items):
        node = cfg._get_node(key)
        where = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(node, (DictConfig, ListConfig)):
            yield from _target_nodes(node, where)
        elif key == "_target_":
            yield cfg, where, node._value()


def unsafe_targets(cfg: DictConfig | ListConfig) -> list[tuple[str, Any]]:
    """`(key, value)` of every `_target_` in `cfg` (at any depth) that is neither a class of `contrastive.*`
    nor in `ALLOWED_OUTSIDE`; interpolated targets count as unsafe (they could resolve to anything)."""
    return [(where, value) for _, where, value in _target_nodes(cfg)
            if not (isinstance(value, str) and "${" not in value and (
                value in ALLOWED_OUTSIDE or _is_project_class(value)
                or _defined_under(value, TRUSTED_PACKAGES + _trusted.get())))]


def _follow_moves(cfg: DictConfig | ListConfig) -> None:
    """Rename, in place, every `_target_` that names a class by a path in `MOVED` to where it lives now."""
    for holder, _, value in _target_nodes(cfg):
        for before, after in MOVED.items():
            if isinstance(value, str) and value.startswith(before):
                holder["_target_"] = after + value[len(before):]


def load_run_config(path: str) -> DictConfig:
    """A saved run's config, refused with the offending keys named if it names a target we do not own."""
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{path} is not a run config (a mapping at the top level)")
    _follow_moves(cfg)
    legacy.upgrade(cfg)
    bad = unsafe_targets(cfg)
    if bad:
        listed = "; ".join(f"{k}: {v!r}" for k, v in bad)
        raise ValueError(f"refusing to load {path}: it names target(s) outside the project ({listed}). A run's "
                         f"config may only build classes of contrastive.*, {sorted(ALLOWED_OUTSIDE)} and what is "
                         f"defined under {list(TRUSTED_PACKAGES + _trusted.get())}; if you trust this run's code, "
                         "name its modules: --trust MODULE[,MODULE]")
    return cfg
