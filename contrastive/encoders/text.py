"""Text encoders over padded token ids `[B, L]` (0 pads) -> `[B, out_dim]`."""
from __future__ import annotations

import torch
from torch import nn


class BagOfTokens(nn.Module):
    """Token embeddings summed with IDF weights (a TF-IDF bag in a learned space; plain mean without `idf`),
    then a linear layer. At random initialisation it is a random projection of the TF-IDF vector."""

    def __init__(self, vocab_size: int = 2**18, dim: int = 256, out_dim: int = 256,
                 idf: torch.Tensor | None = None, train_tokens: bool = True, identity_proj: bool = False) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.bag.weight.requires_grad_(train_tokens)
        self.proj = nn.Linear(dim, out_dim)
        if identity_proj:
            if out_dim != dim:
                raise ValueError(f"identity_proj needs out_dim == dim, got {out_dim} and {dim}")
            nn.init.eye_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)
        weights = torch.ones(vocab_size) if idf is None else torch.as_tensor(idf, dtype=torch.float32)
        if weights.shape != (vocab_size,):
            raise ValueError(f"idf must have vocab_size={vocab_size} entries, got {tuple(weights.shape)}")
        weights = weights.clone()
        weights[0] = 0.0  # padding
        self.register_buffer("idf", weights)
        self.out_dim = out_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        w = self.idf[ids]
        w = w / w.sum(1, keepdim=True).clamp_min(1e-6)
        return self.proj(self.bag(ids, per_sample_weights=w))


class TransformerText(nn.Module):
    """Token and position embeddings, a small `nn.TransformerEncoder`, mean pooling over real tokens."""

    def __init__(self, vocab_size: int = 2**18, dim: int = 128, layers: int = 2, heads: int = 4,
                 max_len: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.proj = nn.Linear(dim, out_dim)
        self.max_len, self.out_dim = max_len, out_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : self.max_len]
        pad = ids == 0
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.proj((h * keep).sum(1) / keep.sum(1).clamp_min(1))
