"""Docstring -> code pairs from the Python standard library that ships with the interpreter (a code-search
task in the manner of CodeSearchNet, with no download): the anchor is a function's docstring summary (prose),
the positive its code with the docstring removed. Grouped by module, so a split keeps modules apart."""
from __future__ import annotations

import ast
import importlib.util
import os
import sysconfig
import warnings
from collections import deque
from collections.abc import Iterator
from typing import Any

from contrastive.data.text.pair_files import Split

SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo", "__pycache__"}


def _summary(doc: str) -> str:
    """A docstring's first paragraph, whitespace normalised."""
    return " ".join(doc.strip().split("\n\n")[0].split())


STATEMENT_LISTS = {"body", "orelse", "finalbody", "handlers", "cases"}  # the fields that hold statements


def statements(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `tree` that hold or are statements (statements, except handlers, match cases), in the order
    `ast.walk` yields them: a function is a statement, so no expression needs visiting (most of the nodes)."""
    todo = deque([tree])
    while todo:
        node = todo.popleft()
        for field in node._fields:  # in ast.walk's order (a try's body, handlers, orelse, finalbody)
            if field in STATEMENT_LISTS:
                todo.extend(getattr(node, field))
        yield node


def module_pairs(source: str, min_words: int = 5, max_code_chars: int = 2000) -> list[dict[str, Any]]:
    """`{anchor: summary, positive: code}` for each function or method of `source` whose docstring summary has
    >= `min_words` words; the code is the function unparsed without its docstring, cut at `max_code_chars`."""
    with warnings.catch_warnings():  # old modules hold invalid escape sequences
        warnings.simplefilter("ignore")
        tree = ast.parse(source)
    out = []
    for node in statements(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(_summary(doc).split()) < min_words or len(node.body) < 2:
            continue
        node.body = node.body[1:]  # the docstring goes; the rest of the function is the document
        out.append({"anchor": _summary(doc), "positive": ast.unparse(node)[:max_code_chars], "negatives": []})
    return out


def stdlib_files(root: str | None = None) -> list[str]:
    """The standard library's .py files (tests and demos left out), sorted."""
    root = root or package_root(None)
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("test"))
        files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".py") and not n.startswith("test")]
    return files


def docstring_pairs(root: str | None = None) -> list[list[dict[str, Any]]]:
    """Each standard-library module's docstring -> code pairs (modules without any left out); a summary seen
    in an earlier module is dropped, so no query has two right answers."""
    seen: set[str] = set()
    groups = []
    for path in stdlib_files(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            try:
                pairs = module_pairs(f.read())
            except SyntaxError:  # a file written for another Python version
                continue
        pairs = [p for p in pairs if not (p["anchor"] in seen or seen.add(p["anchor"]))]
        if pairs:
            groups.append(pairs)
    return groups


def package_root(package: str | None) -> str:
    """The folder of an installed package's sources (`None`: the standard library)."""
    if package is None:
        return sysconfig.get_paths()["stdlib"]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"data.builtin.package={package!r} is not an installed package with a source folder; "
                         "name one such as torch or numpy, or null for the standard library")
    return next(iter(spec.submodule_search_locations))


class PythonDocstrings:
    """The docstring -> code pairs of the standard library (or of an installed `package`, e.g. torch) as a pair
    source, split by module."""

    def __init__(self, package: str | None = None) -> None:
        self.package = package

    def read(self, split: Split) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """`(held-out pairs, training pairs, training texts)`; `split(n)`: held-out and training indices."""
        modules = docstring_pairs(package_root(self.package))
        held, train = split(len(modules))
        heldout = [p for i in held for p in modules[i]]
        pairs = [p for i in train for p in modules[i]]
        where = "the standard library" if self.package is None else self.package
        print(f"python_docstrings: {len(pairs) + len(heldout):,} pairs from {len(modules)} modules of {where}; "
              f"{len(heldout):,} pairs ({len(held)} modules) held out")
        return heldout, pairs, [t for p in pairs for t in (p["anchor"], p["positive"])]
