"""Masked log-sum-exp of `Q K^T / T` computed tile by tile, never materialising the `[N, M]` matrix.

Forward keeps one number per row (its log-sum-exp); backward recomputes each tile, so memory is
O(tile^2 + (N + M) d). With `lse` and the positive logits (cheap, `[N]`), InfoNCE is `lse - pos`.
"""
from __future__ import annotations

import torch

Mask = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]


def _tile(q: torch.Tensor, k: torch.Tensor, t: torch.Tensor, r0: int, c0: int, mask: Mask,
          col_bias: torch.Tensor | None) -> torch.Tensor:
    """Scaled, biased, masked logits of rows `r0:` (len q) against columns `c0:` (len k)."""
    self_col, row_ids, col_ids, pos_col = mask
    s = q @ k.T / t
    cols = torch.arange(c0, c0 + k.shape[0], device=q.device)
    if col_bias is not None:
        s = s - col_bias[c0:c0 + k.shape[0]]
    rows = slice(r0, r0 + q.shape[0])
    out = cols[None, :] == self_col[rows, None]
    if row_ids is not None and col_ids is not None:
        same = row_ids[rows, None] == col_ids[None, c0:c0 + k.shape[0]]
        out |= same & (cols[None, :] != pos_col[rows, None])
    return s.masked_fill(out, float("-inf"))


class _TiledLSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, t, mask_t, col_bias, tile):  # type: ignore[override]
        lse = torch.empty(q.shape[0], dtype=q.dtype, device=q.device)
        for r0 in range(0, q.shape[0], tile):
            qr = q[r0:r0 + tile]
            parts = [torch.logsumexp(_tile(qr, k[c0:c0 + tile], t, r0, c0, mask_t, col_bias), dim=1)
                     for c0 in range(0, k.shape[0], tile)]
            lse[r0:r0 + tile] = torch.logsumexp(torch.stack(parts, 1), dim=1)
        ctx.save_for_backward(q, k, t, lse, col_bias if col_bias is not None else torch.empty(0))
        ctx.mask, ctx.tile, ctx.has_bias = mask_t, tile, col_bias is not None
        return lse

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        q, k, t, lse, col_bias = ctx.saved_tensors
        bias = col_bias if ctx.has_bias else None
        tile = ctx.tile
        dq, dk, dt = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(t)
        for r0 in range(0, q.shape[0], tile):
            qr = q[r0:r0 + tile]
            for c0 in range(0, k.shape[0], tile):
                kc = k[c0:c0 + tile]
                s = _tile(qr, kc, t, r0, c0, ctx.mask, bias)
                g = torch.exp(s - lse[r0:r0 + tile, None]) * grad[r0:r0 + tile, None]  # d lse / d s, masked = 0
                dq[r0:r0 + tile] += g @ kc / t
                dk[c0:c0 + tile] += g.T @ qr / t
                # s = qk/T - bias: d s / d T = -(qk/T) / T
                raw = torch.where(torch.isfinite(s), s + (bias[c0:c0 + tile] if bias is not None else 0), 0.0)
                dt -= (g * raw).sum() / t
        return dq, dk, dt, None, None, None


def tiled_logsumexp(q: torch.Tensor, k: torch.Tensor, temperature: torch.Tensor, tile: int,
                    self_col: torch.Tensor, pos_col: torch.Tensor, row_ids: torch.Tensor | None = None,
                    col_ids: torch.Tensor | None = None, col_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Row-wise `logsumexp_j(q_i . k_j / T - col_bias_j)` over allowed columns, `[N]`, for `q [N, d]`, `k [M, d]`.

    Column `self_col[i]` is excluded (use -1 for none), as is every column whose `col_ids` equals
    `row_ids[i]`, except `pos_col[i]`. Gradients flow to `q`, `k` and a tensor `temperature`.
    """
    if tile < 1:
        raise ValueError(f"tile_size must be >= 1, got {tile}")
    t = torch.as_tensor(temperature, dtype=q.dtype, device=q.device)
    bias = None if col_bias is None else col_bias.detach().to(q.dtype)
    return _TiledLSE.apply(q, k, t, (self_col, row_ids, col_ids, pos_col), bias, tile)
