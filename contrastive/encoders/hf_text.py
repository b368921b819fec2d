"""A Hugging Face `transformers` model and its tokenizer from a local folder (`save_pretrained` layout) as the
text encoder of the dual encoder; nothing is downloaded."""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

POOLING = ("mean", "cls")


class HFTokens:
    """The model's own (fast) tokenizer in the data module's tokenizer interface: `__call__(text)` /
    `batch(texts)` give token ids shifted by one, so that 0 pads whatever the model's pad id is."""

    def __init__(self, backend: Any, max_length: int | None) -> None:
        self.backend = backend
        if max_length:
            backend.enable_truncation(max_length)
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True) + 1

    def batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids + 1 (with the model's special tokens) of each text."""
        return [[i + 1 for i in e.ids] for e in self.backend.encode_batch(list(texts))]

    def __call__(self, text: str) -> list[int]:
        return self.batch([text])[0]


class HFTextEncoder(nn.Module):
    """`[B, L]` token ids from `HFTokens` (0: padding) -> `[B, hidden]`: the model's last hidden states pooled
    by the mean over non-padding tokens (`pooling=mean`, as sentence-transformers) or the first token (`cls`).
    The tokenizer travels in the encoder's state (`get_extra_state`), so a checkpoint tokenizes as it trained."""

    brings_tokenizer = True  # the text task gives `tokens` to the data module in place of data.tokenizer

    def __init__(self, path: str, pooling: str = "mean", max_length: int | None = 256) -> None:
        super().__init__()
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ImportError("encoder=hf_text needs transformers: pip install transformers") from None
        if pooling not in POOLING:
            raise ValueError(f"encoder.pooling={pooling!r}; valid: {', '.join(POOLING)}")
        if not os.path.isdir(path):
            raise FileNotFoundError(f"encoder.path={path} is not a folder; give a folder written by "
                                    "save_pretrained (config.json, the weights and the tokenizer's files)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
        if not tokenizer.is_fast:
            raise ValueError(f"encoder.path={path}: its tokenizer has no fast (Rust) version to carry in checkpoints")
        self.model = AutoModel.from_pretrained(path, local_files_only=True)
        self.pooling, self.max_length = pooling, max_length
        self.tokens = HFTokens(tokenizer.backend_tokenizer, max_length)
        self.out_dim = int(self.model.config.hidden_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids > 0
        hidden = self.model(input_ids=(ids - 1).clamp(min=0), attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)

    def get_extra_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokens.backend.to_str()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        from tokenizers import Tokenizer
        self.tokens = HFTokens(Tokenizer.from_str(state["tokenizer"]), self.max_length)
