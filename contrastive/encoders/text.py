"""Text encoders over padded token ids `[B, L]` (0 pads) -> `[B, out_dim]`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrastive.sparse import Hybrid, from_tokens


@torch.no_grad()
def init_tokens(encoder: nn.Module, ids: torch.Tensor, vectors: torch.Tensor) -> None:
    """Start the encoder's token `ids [n]` at `vectors [n, dim]` (e.g. word2vec's), every other token at zero."""
    table = encoder.token_table
    if vectors.shape != (ids.numel(), table.shape[1]):
        raise ValueError(f"need {ids.numel()} vectors of dim {table.shape[1]} (encoder.dim), "
                         f"got {tuple(vectors.shape)}")
    table.zero_()
    table[ids] = vectors.to(table)


class BagOfTokens(nn.Module):
    """Token embeddings summed with IDF weights (a TF-IDF bag in a learned space; plain mean without `idf`),
    then a linear layer. At random initialisation it is a random projection of the TF-IDF vector.

    `train_tokens` / `train_proj` false keep the token vectors / the linear layer fixed. `sublinear_tf`
    weighs a token seen n times by 1 + log n instead of n (scikit-learn's `sublinear_tf`); `bm25_k1` by BM25's
    n (k1 + 1) / (n + k1 (1 - b + b L / avg_len)) instead, L the text's tokens, b `bm25_b`, `avg_len` the
    training texts' mean length (given by the data; without it, no length normalisation).
    `lexical` outputs a `Hybrid`: the exact TF-IDF vector over the hashed vocabulary as a sparse block (no
    parameters; L2-normalised) beside the L2-normalised dense part scaled by a learned `dense_weight`; the
    vector it stands for is out_dim + vocab_size long."""

    def __init__(self, vocab_size: int = 2**18, dim: int = 256, out_dim: int = 256,
                 idf: torch.Tensor | None = None, train_tokens: bool = True, identity_proj: bool = False,
                 sublinear_tf: bool = False, lexical: bool = False, dense_weight: float = 1.0,
                 train_proj: bool | None = True, train_weights: bool = False, bm25_k1: float | None = None,
                 bm25_b: float = 0.75, avg_len: float | None = None) -> None:
        super().__init__()
        if bm25_k1 is not None and sublinear_tf:
            raise ValueError("encoder.sublinear_tf and encoder.bm25_k1 are two term-frequency weightings: "
                             "set sublinear_tf=false or bm25_k1=null")
        if bm25_k1 is not None and (bm25_k1 <= 0 or not 0 <= bm25_b <= 1):
            raise ValueError(f"BM25 needs bm25_k1 > 0 and 0 <= bm25_b <= 1, got {bm25_k1} and {bm25_b}")
        self.bag = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.bag.weight.requires_grad_(train_tokens)
        self.proj = nn.Linear(dim, out_dim)
        if identity_proj:
            if out_dim != dim:
                raise ValueError(f"identity_proj needs out_dim == dim, got {out_dim} and {dim}")
            nn.init.eye_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)
        self.proj.requires_grad_(bool(train_proj))  # None (not chosen by the text-pairs task): fixed
        weights = torch.ones(vocab_size) if idf is None else torch.as_tensor(idf, dtype=torch.float32)
        if weights.shape != (vocab_size,):
            raise ValueError(f"idf must have vocab_size={vocab_size} entries, got {tuple(weights.shape)}")
        weights = weights.clone()
        weights[0] = 0.0  # padding
        self.register_buffer("idf", weights)
        # a learned log-scale per token on its IDF weight (0: the IDF itself), in both blocks
        self.token_scale = nn.Parameter(torch.zeros(vocab_size)) if train_weights else None
        self.sublinear_tf, self.lexical, self.vocab_size = sublinear_tf, lexical, vocab_size
        self.bm25_k1, self.bm25_b = bm25_k1, bm25_b
        if bm25_k1 is not None:  # a buffer, so a checkpoint carries the length it was trained with (0: unknown)
            self.register_buffer("avg_len", torch.tensor(float(avg_len or 0.0)))
        self.dense_weight = nn.Parameter(torch.tensor(float(dense_weight))) if lexical else None
        self.out_dim = out_dim + (vocab_size if lexical else 0)

    @property
    def token_table(self) -> torch.Tensor:
        """The token vectors `[vocab_size, dim]`."""
        return self.bag.weight

    def token_weights(self, ids: torch.Tensor) -> torch.Tensor:
        """Each occurrence's weight `[B, L]`: its IDF (times (1 + log n) / n with `sublinear_tf`, or BM25's
        saturated term frequency over n with `bm25_k1`), rows summing to 1."""
        w = self.idf[ids]
        if self.token_scale is not None:
            w = w * self.token_scale[ids].exp()
        if self.sublinear_tf or self.bm25_k1 is not None:
            n = (ids[:, :, None] == ids[:, None, :]).sum(-1).float()  # occurrences of each token in its text
            if self.sublinear_tf:
                w = w * (1 + n.log()) / n
            else:  # n occurrences sum to BM25's n (k1 + 1) / (n + k1 (1 - b + b L / avg_len))
                k1, b, length = self.bm25_k1, self.bm25_b, (ids != 0).sum(1, keepdim=True).float()
                # no mean length given (0): b unused; a tensor choice, so a GPU step does not wait to read it
                relative = torch.where(self.avg_len > 0, length / self.avg_len, torch.ones_like(length))
                w = w * (k1 + 1) / (n + k1 * (1 - b + b * relative))
        return w / w.sum(1, keepdim=True).clamp_min(1e-6)

    def forward(self, ids: torch.Tensor) -> torch.Tensor | Hybrid:
        """`[B, out_dim]`, or with `lexical` a `Hybrid` (the sparse TF-IDF block beside the dense one)."""
        w = self.token_weights(ids)
        dense = self.proj(self.bag(ids, per_sample_weights=w))
        if not self.lexical:
            return dense
        return from_tokens(ids, w, self.dense_weight * F.normalize(dense, dim=1), self.vocab_size)


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

    @property
    def token_table(self) -> torch.Tensor:
        """The token vectors `[vocab_size, dim]`."""
        return self.tok.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : self.max_len]
        pad = ids == 0
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        h = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        return self.proj((h * keep).sum(1) / keep.sum(1).clamp_min(1))
