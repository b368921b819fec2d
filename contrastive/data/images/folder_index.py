"""Index image files without decoding them: a directory scan or a file list, each real file once."""
from __future__ import annotations

import csv
import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class FileIndex:
    """Image paths (packed into one byte array: about the path's length plus 12 bytes per file), their labels
    (-1: unlabelled) and the class names, in a fixed order."""

    root: str
    blob: np.ndarray  # uint8: the paths relative to `root`, encoded with os.fsencode, back to back
    offsets: np.ndarray  # int64 [n + 1]
    labels: np.ndarray  # int32 [n]
    classes: list[str]
    duplicates: int = 0  # paths dropped because they reach a file or folder already indexed (links, loops)

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> str:
        return os.path.join(self.root, os.fsdecode(self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes()))

    @property
    def labelled(self) -> bool:
        return len(self.classes) > 0

    def digest(self) -> str:
        """A fingerprint of the paths, their order and labels (what the split is drawn from)."""
        h = hashlib.sha1(self.blob.tobytes())
        h.update(self.offsets.tobytes())
        h.update(self.labels.tobytes())
        return h.hexdigest()

    @property
    def nbytes(self) -> int:
        """The bytes the index holds: paths, offsets, labels, class names."""
        return self.blob.nbytes + self.offsets.nbytes + self.labels.nbytes + sum(map(len, self.classes))


def pack(root: str, rel_paths: list[str], labels: list[int], classes: list[str], duplicates: int) -> FileIndex:
    """A FileIndex from parallel lists."""
    encoded = [os.fsencode(p) for p in rel_paths]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return FileIndex(root, blob, offsets, np.asarray(labels, dtype=np.int32), classes, duplicates)


def _walk(top: str, visited: set[tuple[int, int]]) -> tuple[list[tuple[str, int, int]], int]:
    """(path relative to `top`, device, inode) of every image file under `top`, links followed, in sorted
    order; a folder reached twice (a link loop) is walked once; and how many folders were reached again."""
    out: list[tuple[str, int, int]] = []
    again = 0
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = os.path.join(top, rel)
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in visited:
            again += 1
            continue
        visited.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                subdirs.append(os.path.join(rel, e.name))
            elif e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file():
                # a link's own inode says nothing about its target: stat it (regular files cost no call)
                target = e.stat() if e.is_symlink() else None
                dev, ino = (target.st_dev, target.st_ino) if target else (st.st_dev, e.inode())
                out.append((os.path.join(rel, e.name), dev, ino))
        stack.extend(reversed(subdirs))
    return out, again


def _unique(files: list[tuple[str, int, int]]) -> tuple[list[int], int]:
    """Positions of the first occurrence of each (device, inode), in order; and how many were dropped."""
    if not files:
        return [], 0
    keys = np.array([(d, i) for _, d, i in files], dtype=np.uint64)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first).tolist()
    return keep, len(files) - len(keep)


def scan_folder(root: str, classes: list[str] | None = None) -> FileIndex:
    """`root/<class>/**/<image>` (labelled by the class folder) or, with no subfolders, `root/<image>`
    (unlabelled). `classes`: the training set's class names, to label a validation or test folder with the
    same numbers (a class they lack is an error)."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {os.path.abspath(root)} does not exist; expected "
                                "<root>/<class name>/<image file> (or <root>/<image file> without labels)")
    with os.scandir(root) as it:
        entries = [e for e in it if not e.name.startswith(".")]
    found = sorted(e.name for e in entries if e.is_dir())
    visited: set[tuple[int, int]] = set()
    files: list[tuple[str, int, int]] = []
    labels: list[int] = []
    again = 0
    if found:
        names = classes if classes is not None else found
        unknown = sorted(set(found) - set(names))
        if unknown:
            raise ValueError(f"{root} has class folder(s) {unknown[:10]} that the training data lacks (its classes: "
                             f"{names[:10]}{' ...' if len(names) > 10 else ''})")
        number = {c: k for k, c in enumerate(names)}
        counts: dict[str, int] = {}
        for c in found:
            walked, n = _walk(os.path.join(root, c), visited)
            files.extend((os.path.join(c, p), d, i) for p, d, i in walked)
            labels += [number[c]] * len(walked)
            again += n
            counts[c] = len(walked)
        empty = [c for c, n in counts.items() if n == 0]
        if empty and len(empty) < len(found):
            shown = ", ".join(f"{c}: {n}" for c, n in list(counts.items())[:20])
            warnings.warn(f"class folder(s) {empty[:10]} under {root} hold no images ({', '.join(IMAGE_EXTENSIONS)}"
                          f"): images per class: {shown}{' ...' if len(counts) > 20 else ''}")
        out_classes = list(names)
        loose = sum(e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries if not e.is_dir())
        if loose:
            warnings.warn(f"{loose} image(s) directly under {root} are in no class folder and are left out")
    else:
        files, again = _walk(root, visited)
        labels = [-1] * len(files)
        out_classes = []
    keep, dropped = _unique(files)
    if not keep:
        raise FileNotFoundError(f"no images under {os.path.abspath(root)} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return pack(root, [files[k][0] for k in keep], [labels[k] for k in keep], out_classes, dropped + again)


def read_file_list(path: str) -> FileIndex:
    """A text or CSV/TSV file of image paths, one per line, each optionally followed by a label (comma or tab);
    relative paths are relative to the list's folder; a first row `path[,label]` is a header."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file list {os.path.abspath(path)} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = [(n, r) for n, r in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), 1)
            if r and r[0].strip() and not r[0].startswith("#")]
    if rows and rows[0][1][0].strip().lower() == "path":
        rows = rows[1:]
    if not rows:
        raise ValueError(f"file list {path} names no files")
    widths = {len(r) for _, r in rows}
    if len(widths) > 1 or max(widths) > 2:
        bad = next(n for n, r in rows if len(r) != len(rows[0][1]) or len(r) > 2)
        raise ValueError(f"{path}, line {bad}: expected the same columns on every line: a path, or a path and a label")
    base = os.path.dirname(os.path.abspath(path))
    paths = [os.path.join(base, r[0].strip()) for _, r in rows]
    missing = [(n, p) for (n, _), p in zip(rows, paths) if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(f"line {n}: {p}" for n, p in missing[:5])
        raise FileNotFoundError(f"file list {path} names {len(missing)} file(s) that do not exist ({shown})")
    names = [r[1].strip() for _, r in rows] if len(rows[0][1]) == 2 else []
    classes = sorted(set(names))
    number = {c: k for k, c in enumerate(classes)}
    stats = [os.stat(p) for p in paths]
    keep, dropped = _unique([(p, s.st_dev, s.st_ino) for p, s in zip(paths, stats)])
    labels = [number[names[k]] for k in keep] if names else [-1] * len(keep)
    return pack("", [paths[k] for k in keep], labels, classes, dropped)
