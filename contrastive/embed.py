"""`contrastive-embed RUN_DIR TEXTS OUT.npy`: embed a text file (one text per line) with a trained dual encoder."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import hydra
import numpy as np
import torch

from contrastive.safe_config import load_run_config
from contrastive.tasks import TextPairsTask


def load_dual_encoder(run_dir: str, checkpoint: str = "last.ckpt") -> tuple[torch.nn.Module, object]:
    """The trained model of a `task=text_pairs` run and its data module (for the tokenizer)."""
    cfg = load_run_config(os.path.join(run_dir, "config.yaml"))
    task = hydra.utils.instantiate(cfg.task)
    if not isinstance(task, TextPairsTask):
        raise TypeError(f"{run_dir} is a {type(task).__name__} run; embedding needs a text_pairs run")
    dm = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, encoder=hydra.utils.instantiate(cfg.encoder),
                                    objective=hydra.utils.instantiate(cfg.objective), optimizer=None)
    path = os.path.join(run_dir, "checkpoints", checkpoint)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return model.eval(), dm


@torch.no_grad()
def embed_texts(encode: Callable[[torch.Tensor], torch.Tensor], dm: Any, texts: list[str],
                batch_size: int = 256) -> torch.Tensor:
    """`[len(texts), out_dim]` float32 CPU embeddings: `encode` applied to padded token ids, batch by batch."""
    parts = [encode(dm.pad(texts[i:i + batch_size])).float().cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir")
    ap.add_argument("texts", help="a UTF-8 text file, one text per line")
    ap.add_argument("out", help="where to write the embeddings (.npy)")
    ap.add_argument("--checkpoint", default="last.ckpt")
    a = ap.parse_args()
    with open(a.texts, encoding="utf-8", errors="replace") as f:
        texts = [line.rstrip("\n") for line in f]
    model, dm = load_dual_encoder(a.run_dir, a.checkpoint)
    np.save(a.out, embed_texts(model.embed, dm, texts).numpy())
    print(f"wrote {len(texts)} embeddings to {a.out}")


if __name__ == "__main__":
    main()
