"""The package's shape: no import cycles, short modules, config targets that name the defining module."""
from __future__ import annotations

import ast
import importlib
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "contrastive"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside functions (a lazy import still ties
    the two modules together)."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{up}.{base}" if base else up
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            graph[module] |= {t for t in map(resolve, names) if t and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start, targets in graph.items():
        if start in index:
            continue
        work = [(start, iter(sorted(targets)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["contrastive.losses.info_nce"].add("contrastive.tasks.image")  # an upward import
    assert any("contrastive.losses.info_nce" in c and "contrastive.tasks.image" in c for c in cycles(graph))


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


CONFIGS = sorted((ROOT / "conf").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "conf")))
def test_config_targets_name_the_module_that_defines_the_class(path):
    for target in re.findall(r"(?:_target_|class): (contrastive\.[\w.]+)", path.read_text()):
        module, _, name = target.rpartition(".")
        obj = getattr(importlib.import_module(module), name)
        assert f"{obj.__module__}.{obj.__qualname__}" == target, f"{path.name}: {target} is a re-export"


def test_only_the_distributed_module_uses_torch_distributed():
    users = {path.name for path in ROOT.rglob("*.py")
             if re.search(r"torch\.distributed|from torch import .*\bdistributed\b", path.read_text())}
    assert users == {"distributed.py"}


def string_comparisons() -> Counter[tuple[str, str]]:
    """How often each (module file, compared expression) appears in `x == "literal"` / `x in ("a", "b")`."""
    found: Counter[tuple[str, str]] = Counter()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for op, right in zip(node.ops, node.comparators):
                items = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
                literal = bool(items) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items)
                if literal and isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                    found[(str(path.relative_to(ROOT)), ast.unparse(node.left))] += 1
    return found


# comparisons with string literals that do not pick behaviour by an option's value: devices, dict keys, file
# headers, Lightning's stages, and plain enums (guard, reduction, TensorFlow's argument values, where views are made)
PLAIN = {
    ("checks.py", "tensor.device.type"), ("word2vec/hogwild.py", "embedding.device.type"),
    ("word2vec/hogwild.py", "pp.bias.device.type"), ("models/word2vec.py", "self.device.type"),
    ("cli/embed.py", "__name__"), ("cli/evaluate.py", "__name__"), ("cli/export.py", "__name__"),
    ("train.py", "__name__"), ("cli/evaluate.py", "k"), ("runtime/safe_config.py", "key"),
    ("data/images/image_folder.py", "k"), ("data/text/pair_files.py", "k"), ("eval/report.py", "key"),
    ("data/images/fast_decode.py", "im.mode"), ("data/images/folder_index.py", "rows[0][1][0].strip().lower()"),
    ("runtime/checkpoints.py", "os.environ.get(v, '0')"), ("tasks/base.py", "cls.__module__.split('.')[0]"),
    ("data/images/base.py", "where"), ("data/images/image_folder.py", "on_bad_image"),
    ("data/images/image_folder.py", "self.on_bad"), ("losses/contrastive.py", "negative_mode"),
    ("losses/info_nce.py", "negative_mode"), ("losses/info_nce.py", "reduction"), ("losses/nce.py", "self.reduction"),
    ("losses/sampled.py", "partition_strategy"), ("models/base.py", "guard"), ("models/base.py", "self.guard"),
    ("models/word2vec.py", "self.hparams.guard"), ("models/base.py", "stage"), ("models/moco.py", "stage"),
    ("models/simclr.py", "stage"), ("models/base.py", "name"), ("models/dual_encoder.py", "side"),
    ("encoders/hf_text.py", "self.pooling"), ("runtime/loggers.py", "mode"), ("runtime/threads.py", "setting"),
    ("runtime/threads.py", "self.setting"), ("runtime/threads.py", "cfg.trainer.get('accelerator')"),
    ("tasks/image.py", "cfg.trainer.get('accelerator')"), ("train.py", "accelerator"), ("train.py", "resume"),
    ("train.py", "deterministic"), ("data/text/text_pairs.py", "k"),  # Lightning's "warn"; a checkpoint's key
}


def test_no_dispatch_on_an_options_string_value():
    found = string_comparisons()
    assert set(found) - PLAIN == set(), "pick behaviour with an object chosen by _target_, not a string"
