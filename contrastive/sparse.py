"""Text embeddings with a sparse lexical block: `Hybrid(dense [B, D], ids [B, L], values [B, L])`.

The vector a row stands for is `[lexical over the vocabulary ; dense]`: the lexical block holds each row's
distinct token ids and their weights (padded with id 0 and weight 0), the dense block is an ordinary tensor
that carries gradients. Cosines, concatenation and the cross-process gather work on this form, so no
`[B, vocab_size]` tensor is built. The lexical block carries gradients where its values do (learned token
weights); with fixed IDF weights it has none and the cosine takes the sparse product."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from contrastive import distributed as D


@dataclass(frozen=True)
class Hybrid:
    """Rows of `[lexical ; dense]`: `dense [B, D]`, the lexical block's `ids [B, L]` (long, distinct per row,
    0 pads) and `values [B, L]` over a vocabulary of `vocab_size` ids."""

    dense: torch.Tensor
    ids: torch.Tensor
    values: torch.Tensor
    vocab_size: int

    def __len__(self) -> int:
        return self.dense.shape[0]

    @property
    def width(self) -> int:
        """The length of the vector a row stands for: vocab_size + D."""
        return self.vocab_size + self.dense.shape[1]

    def to(self, device: torch.device | str) -> Hybrid:
        return Hybrid(self.dense.to(device), self.ids.to(device), self.values.to(device), self.vocab_size)

    def cpu(self) -> Hybrid:
        return self.to("cpu")

    def float(self) -> Hybrid:
        return Hybrid(self.dense.float(), self.ids, self.values.float(), self.vocab_size)

    def detach(self) -> Hybrid:
        return Hybrid(self.dense.detach(), self.ids, self.values.detach(), self.vocab_size)

    def to_dense(self) -> torch.Tensor:
        """The full vectors `[B, vocab_size + D]` (for small checks only: this is what the form avoids)."""
        lex = torch.zeros(len(self), self.vocab_size, dtype=self.values.dtype, device=self.values.device)
        lex.scatter_add_(1, self.ids, self.values)
        return torch.cat([lex, self.dense], 1)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lexical block as CSR arrays `(indptr [B+1] int64, indices [nnz] int32, data [nnz] float32)`."""
        keep = (self.values != 0).cpu()
        indptr = np.concatenate([[0], np.cumsum(keep.sum(1).numpy())]).astype(np.int64)
        return (indptr, self.ids.cpu()[keep].numpy().astype(np.int32),
                self.values.detach().cpu()[keep].float().numpy())


def from_tokens(ids: torch.Tensor, weights: torch.Tensor, dense: torch.Tensor, vocab_size: int) -> Hybrid:
    """The hybrid rows of token ids `[B, L]` with per-occurrence `weights [B, L]`: a token's occurrences are
    summed, zero weights dropped, and the lexical block scaled to unit length (rows with no weight stay 0)."""
    b = ids.shape[0]
    rows = _row_of_each(ids)
    w = weights.reshape(-1)
    keep = w != 0
    coo = torch.sparse_coo_tensor(torch.stack([rows[keep], ids.reshape(-1)[keep]]), w[keep], (b, vocab_size),
                                  check_invariants=False).coalesce()
    out_ids, vals = _padded(*coo.indices(), coo.values(), b)
    return Hybrid(dense, out_ids, F.normalize(vals, dim=1), vocab_size)


def _padded(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-sorted entries as `[b, L]` ids and values, 0-padded (L = the most entries of a row, at least 1)."""
    counts = torch.bincount(rows, minlength=b)
    width = max(int(counts.max()) if b else 0, 1)
    start = torch.cumsum(counts, 0) - counts
    pos = torch.arange(rows.numel(), device=rows.device) - start[rows]
    ids = torch.zeros(b, width, dtype=torch.long, device=rows.device)
    out = torch.zeros(b, width, dtype=vals.dtype, device=vals.device)
    ids[rows, pos], out[rows, pos] = cols, vals
    return ids, out


def _widen(x: Hybrid, width: int) -> Hybrid:
    """`x` with its lexical block padded to `width` slots."""
    pad = width - x.ids.shape[1]
    if pad <= 0:
        return x
    return Hybrid(x.dense, F.pad(x.ids, (0, pad)), F.pad(x.values, (0, pad)), x.vocab_size)


def _check(a: Hybrid, b: Hybrid) -> None:
    if a.vocab_size != b.vocab_size or a.dense.shape[1] != b.dense.shape[1]:
        raise ValueError(f"hybrid rows differ: vocab_size {a.vocab_size} vs {b.vocab_size}, dense dim "
                         f"{a.dense.shape[1]} vs {b.dense.shape[1]}; both sides need the same encoder settings")


def cat(parts: Sequence[Hybrid]) -> Hybrid:
    """The rows of `parts` one after another."""
    for p in parts[1:]:
        _check(parts[0], p)
    width = max(p.ids.shape[1] for p in parts)
    parts = [_widen(p, width) for p in parts]
    return Hybrid(torch.cat([p.dense for p in parts]), torch.cat([p.ids for p in parts]),
                  torch.cat([p.values for p in parts]), parts[0].vocab_size)


def gather(x: Hybrid) -> Hybrid:
    """Every process's rows in rank order: the dense block with gradients (as `gather_with_grad`), the lexical
    block's ids without and its values with gradients where they have them, padded to the widest process's
    slots."""
    if not D.is_distributed():
        return x
    width = max(D.all_gather_sizes(x.ids.shape[1], x.ids.device))
    x = _widen(x, width)
    values = D.gather_with_grad(x.values) if x.values.requires_grad else D.gather_no_grad(x.values)
    return Hybrid(D.gather_with_grad(x.dense), D.gather_no_grad(x.ids), values, x.vocab_size)


def _row_of_each(ids: torch.Tensor) -> torch.Tensor:
    """The row of each entry of `ids [B, L]`, flattened: `[B * L]`."""
    return torch.arange(ids.shape[0], device=ids.device).repeat_interleave(ids.shape[1])


def _coo(x: Hybrid) -> torch.Tensor:
    where = torch.stack([_row_of_each(x.ids), x.ids.reshape(-1)])
    return torch.sparse_coo_tensor(where, x.values.detach().reshape(-1).float(), (len(x), x.vocab_size),
                                   check_invariants=False)


def _norms(x: Hybrid) -> torch.Tensor:
    return (x.values.float().square().sum(1) + x.dense.float().square().sum(1)).sqrt().clamp_min(1e-12)


def _lexical_dots(q: Hybrid, k: Hybrid) -> torch.Tensor:
    """The lexical blocks' dot products `[len(q), len(k)]` with gradients to their values: both written out over
    the ids the two hold (not the vocabulary)."""
    ids, where = torch.unique(torch.cat([q.ids.reshape(-1), k.ids.reshape(-1)]), return_inverse=True)

    def block(x: Hybrid, cols: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), len(ids), dtype=torch.float32, device=cols.device)
        return out.index_put((_row_of_each(x.ids), cols), x.values.reshape(-1).float(), accumulate=True)

    return block(q, where[:q.ids.numel()]) @ block(k, where[q.ids.numel():]).T


def cosine(q: Hybrid, k: Hybrid) -> torch.Tensor:
    """Cosine similarities `[len(q), len(k)]` of the full vectors, from the sparse form (gradients reach the
    dense blocks, through their dot products and the rows' lengths, and to lexical values that carry them)."""
    _check(q, k)
    if q.values.requires_grad or k.values.requires_grad:
        lex = _lexical_dots(q, k)
    else:
        with warnings.catch_warnings():  # torch converts to CSR inside and warns that CSR is "beta"
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            lex = torch.sparse.mm(_coo(q), _coo(k).t()).to_dense()
    return (lex + q.dense.float() @ k.dense.float().T) / (_norms(q)[:, None] * _norms(k)[None, :])


def cat_rows(parts: Sequence[torch.Tensor | Hybrid]) -> torch.Tensor | Hybrid:
    """`torch.cat` along rows, for plain embeddings and hybrid ones alike."""
    return cat(parts) if isinstance(parts[0], Hybrid) else torch.cat(list(parts))


def gather_rows(x: torch.Tensor | Hybrid) -> torch.Tensor | Hybrid:
    """Every process's rows with gradients (`gather_with_grad`), for plain embeddings and hybrid ones alike."""
    return gather(x) if isinstance(x, Hybrid) else D.gather_with_grad(x)


def cosine_matrix(q: torch.Tensor | Hybrid, k: torch.Tensor | Hybrid) -> torch.Tensor:
    """Cosine similarities `[len(q), len(k)]` of plain `[N, d]` embeddings or hybrid ones."""
    if isinstance(q, Hybrid) or isinstance(k, Hybrid):
        if not (isinstance(q, Hybrid) and isinstance(k, Hybrid)):
            raise TypeError("cannot compare a hybrid (sparse lexical) embedding with a plain tensor")
        return cosine(q, k)
    return F.normalize(q.float(), dim=1) @ F.normalize(k.float(), dim=1).T
