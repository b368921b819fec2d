"""A sparse matrix written block of rows by block of rows into scipy's `.npz` format (`scipy.sparse.load_npz`
reads it), holding only one block in memory: the entries go to scratch files beside the output first."""
from __future__ import annotations

import os
import shutil
import zipfile

import numpy as np

CHUNK = 1 << 24  # bytes copied at a time from a scratch file into the archive


class CsrWriter:
    """`append(indptr, indices, data)` blocks of rows (each block's `indptr` starts at 0), then `close()`."""

    def __init__(self, path: str, n_cols: int) -> None:
        self.path, self.n_cols, self.rows, self.nnz = path, n_cols, 0, 0
        # closed by close(): the writer outlives any one with-block
        self._parts = {name: open(f"{path}.{name}.part", "wb") for name in ("indptr", "indices", "data")}  # noqa: SIM115
        self._parts["indptr"].write(np.zeros(1, np.int64).tobytes())

    def append(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        if len(indices) != len(data) or indptr[-1] != len(data):
            raise ValueError(f"a block's indptr ends at {indptr[-1]} but it holds {len(indices)} indices and "
                             f"{len(data)} values")
        self._parts["indptr"].write((np.asarray(indptr[1:], np.int64) + self.nnz).tobytes())
        self._parts["indices"].write(np.asarray(indices, np.int32).tobytes())
        self._parts["data"].write(np.asarray(data, np.float32).tobytes())
        self.rows += len(indptr) - 1
        self.nnz += len(data)

    def close(self) -> None:
        """Write the archive (format, shape, indptr, indices, data) and remove the scratch files."""
        for f in self._parts.values():
            f.close()
        sizes = {"indptr": (self.rows + 1, np.int64), "indices": (self.nnz, np.int32), "data": (self.nnz, np.float32)}
        tmp = self.path + ".tmp"
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, value in (("format", np.array(b"csr")), ("shape", np.array([self.rows, self.n_cols]))):
                with z.open(name + ".npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=False)
            for name, (n, dtype) in sizes.items():
                with z.open(name + ".npy", "w", force_zip64=True) as f, open(f"{self.path}.{name}.part", "rb") as src:
                    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                              "shape": (n,)}
                    np.lib.format.write_array_header_1_0(f, header)
                    shutil.copyfileobj(src, f, CHUNK)
                os.remove(f"{self.path}.{name}.part")
        os.replace(tmp, self.path)
