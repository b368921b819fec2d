"""Pair files read row by row (TSV, CSV with a header row, JSONL): `iter_pairs` holds one row at a time, so a
file larger than memory can be read; every malformed row is an error naming its line."""
from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from contrastive.data.text.corpus import warn_undecodable

REQUIRED = ("anchor", "positive")
# a pair source's `split(n)`: the held-out and the training indices of n groups (rows, articles or modules)
Split = Callable[[int], tuple[Any, Any]]
HINT = "set data.path to a TSV, CSV or JSONL file with columns anchor, positive and optionally negative"


def existing(path: str, what: str, hint: str) -> str:
    """`path`, or a FileNotFoundError naming `what` it is, where, and `hint` (what the option takes)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {os.path.abspath(path)} does not exist; {hint}")
    return path


class Utf8Lines:
    """The lines of a file decoded as UTF-8 (a byte-order mark dropped); undecodable bytes become U+FFFD and are
    counted, and `warn()` says how many."""

    def __init__(self, path: str) -> None:
        self.path, self.bad, self.size = path, 0, os.path.getsize(path)

    def __iter__(self) -> Iterator[str]:
        with open(self.path, "rb") as f:
            if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                raise ValueError(f"{self.path} is UTF-16 text (it starts with a UTF-16 byte-order mark); re-save it "
                                 "as UTF-8 (e.g. Excel: Save As 'CSV UTF-8')")
            f.seek(0)
            for n, raw in enumerate(f):
                line = raw.decode("utf-8-sig" if n == 0 else "utf-8", errors="replace")
                if "\ufffd" in line:
                    self.bad += line.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
                yield line

    def warn(self) -> None:
        warn_undecodable(self.path, self.bad, self.size)


def _table_rows(path: str, lines: Utf8Lines) -> Iterator[tuple[int, dict[str, Any]]]:
    """(first line, row) of a CSV (quotes parsed) or TSV (tabs only: a `"` is an ordinary character, so a stray
    quote cannot swallow the rest of the file). A row with more or fewer fields than the header (what an
    unclosed quote leaves) is an error naming its first line; so is a header without anchor and positive."""
    tsv = path.endswith(".tsv")
    csv.field_size_limit(2**31 - 1)  # long documents are legitimate fields (the default limit is 128 KiB)
    reader = csv.DictReader(iter(lines), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    names = reader.fieldnames or []
    if not tsv and any("\t" in n for n in names) and not set(REQUIRED) <= set(names):
        raise ValueError(f"{path}: the header {names} holds tabs, but this file is read as comma-separated: the "
                         "delimiter comes from the extension (.tsv: tabs; .csv and others: commas); rename it to .tsv")
    _check_columns(path, set(names))
    start = reader.line_num + 1
    try:
        for r in reader:
            if None in r or any(r.get(c) is None for c in REQUIRED if c in names):
                got = len(names) + len(r.get(None) or []) - sum(v is None for k, v in r.items() if k is not None)
                hint = "" if tsv else "; a quote left open takes in every line after it"
                raise ValueError(f"{path}:{start}: {got} field(s), but the header names {len(names)} "
                                 f"({', '.join(names)}){hint}")
            yield start, r
            start = reader.line_num + 1
    except csv.Error as e:
        raise ValueError(f"{path}:{start}: {e}") from None


def _json_rows(path: str, lines: Utf8Lines, columns: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, object) of a JSONL file; `columns` collects every key seen."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object with anchor and positive, got "  # noqa: TRY004
                             f"{type(row).__name__}")
        bad = [k for k in REQUIRED if k in row and not isinstance(row[k], str)]
        if bad:
            raise ValueError(f"{path}:{n}: {bad[0]} must be a string, got {type(row[bad[0]]).__name__}")
        neg = row.get("negative")
        if neg is not None and not isinstance(neg, str) and not (
                isinstance(neg, list) and all(isinstance(x, str) for x in neg)):
            got = type(neg).__name__ if not isinstance(neg, list) else \
                f"a list holding {type(next(x for x in neg if not isinstance(x, str))).__name__}"
            raise ValueError(f"{path}:{n}: negative must be a string or a list of strings, got {got}")
        columns.update(row)
        yield n, row


def _check_columns(path: str, columns: set[str]) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; found {sorted(columns)}; need anchor, positive "
                         "and optionally negative")


def iter_pairs(path: str) -> Iterator[dict[str, Any]]:
    """Rows `{anchor, positive, negatives: [...], line}` of a TSV, CSV (header row) or JSONL file, one at a time;
    rows with an empty anchor or positive are skipped and counted (a warning at the end)."""
    lines = Utf8Lines(existing(path, "pairs file", HINT))
    columns: set[str] = set()
    rows = _json_rows(path, lines, columns) if path.endswith(".jsonl") else _table_rows(path, lines)
    empty = 0
    for line, r in rows:
        a, p = (str(r.get(c) or "").strip() for c in REQUIRED)
        if not a or not p:
            empty += 1
            continue
        neg = r.get("negative") or []
        yield {"anchor": a, "positive": p, "line": line,
               "negatives": [str(x) for x in (neg if isinstance(neg, list) else [neg]) if str(x).strip()]}
    if path.endswith(".jsonl"):
        _check_columns(path, columns)
    lines.warn()
    if empty:
        warnings.warn(f"{path}: skipped {empty} row(s) with an empty anchor or positive")


def read_pairs(path: str) -> list[dict[str, Any]]:
    """Every row of `iter_pairs` in a list (`line` left out)."""
    return [{k: v for k, v in r.items() if k != "line"} for r in iter_pairs(path)]


class PairFile:
    """A user's pairs file (TSV, CSV or JSONL) as a pair source, split by row."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, split: Split) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """`(held-out pairs, training pairs, training texts)`; `split(n)`: held-out and training indices."""
        pairs = read_pairs(self.path)
        if not pairs:
            raise ValueError(f"{self.path} holds no pairs: no data row with both an anchor and a positive under its "
                             "header")
        held, train = split(len(pairs))
        train_pairs = [pairs[i] for i in train]
        return [pairs[i] for i in held], train_pairs, [t for p in train_pairs for t in (p["anchor"], p["positive"])]
