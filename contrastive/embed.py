"""`contrastive-embed RUN_DIR INPUT OUT.npy`: embed a text file (one text per line) with a trained dual encoder, or
a folder / file list of images with a trained image encoder (writing the image paths beside the features)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import hydra
import numpy as np
import torch

from contrastive.data.images.fast_decode import BAD_IMAGE_ERRORS
from contrastive.data.images.folder_index import read_file_list, scan_folder
from contrastive.data.images.image_folder import PlainView
from contrastive.data.images.transforms import CIFAR_MEAN, CIFAR_STD
from contrastive.safe_config import load_run_config
from contrastive.tasks import ImageTask, TextPairsTask


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


class _Files(torch.utils.data.Dataset):
    """Item i: `(image, i, readable)`; an unreadable file gives zeros and `readable=False`."""

    def __init__(self, paths: list[str], view: Callable[[str], tuple[torch.Tensor]], size: int) -> None:
        self.paths, self.view, self.size = paths, view, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, bool]:
        try:
            return self.view(self.paths[i])[0], i, True
        except BAD_IMAGE_ERRORS:
            return torch.zeros(3, self.size, self.size), i, False


@torch.no_grad()
def embed_images(run_dir: str, images: str, checkpoint: str = "last.ckpt", batch_size: int = 256,
                 num_workers: int = 2, device: str | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """(features `[N, D]` float32, the N paths in order, the unreadable paths left out) of every image in a
    folder or file list, with the run's evaluation transform, batched on `device` (CUDA when available)."""
    from tqdm import tqdm

    from contrastive.export import load_encoder
    cfg = load_run_config(os.path.join(run_dir, "config.yaml"))
    if cfg.data.get("transform") is None or int(cfg.encoder.get("in_channels", 3)) != 3:
        raise ValueError(f"{run_dir} was trained on {cfg.data._target_.rsplit('.', 1)[-1]}: embedding files needs "
                         "a run on RGB images (data=image_folder or cifar10)")
    size, opts = int(cfg.data.transform.size), cfg.data.transform
    index = read_file_list(images) if os.path.isfile(images) else scan_folder(images)
    paths = [index.path(i) for i in range(len(index))]
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = load_encoder(run_dir, checkpoint).to(dev)
    view = PlainView(size, tuple(opts.get("mean", CIFAR_MEAN)), tuple(opts.get("std", CIFAR_STD)))
    loader = torch.utils.data.DataLoader(_Files(paths, view, size), batch_size=batch_size, num_workers=num_workers)
    feats, keep = [], []
    for x, i, ok in tqdm(loader, desc="embedding", unit="batch"):
        feats.append(encoder(x[ok].to(dev)).float().cpu())
        keep += i[ok].tolist()
    bad = sorted(set(range(len(paths))) - set(keep))
    return torch.cat(feats).numpy(), [paths[i] for i in keep], [paths[i] for i in bad]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_dir")
    ap.add_argument("input", help="text runs: a UTF-8 text file, one text per line; image runs: a folder of "
                                  "images or a file list (one path per line)")
    ap.add_argument("out", help="where to write the embeddings (.npy); image runs also write OUT.paths.txt")
    ap.add_argument("--checkpoint", default="last.ckpt")
    ap.add_argument("--batch-size", type=int, default=256)
    a = ap.parse_args()
    cfg = load_run_config(os.path.join(a.run_dir, "config.yaml"))
    if isinstance(hydra.utils.instantiate(cfg.task), ImageTask):
        feats, paths, bad = embed_images(a.run_dir, a.input, a.checkpoint, a.batch_size)
        np.save(a.out, feats)
        with open(a.out + ".paths.txt", "w", encoding="utf-8") as f:
            f.writelines(p + "\n" for p in paths)
        skipped = f"; {len(bad)} unreadable file(s) left out, e.g. {bad[:3]}" if bad else ""
        print(f"wrote {feats.shape[0]} x {feats.shape[1]} features to {a.out} and their paths to "
              f"{a.out}.paths.txt{skipped}")
        return
    with open(a.input, encoding="utf-8", errors="replace") as f:
        texts = [line.rstrip("\n") for line in f]
    model, dm = load_dual_encoder(a.run_dir, a.checkpoint)
    np.save(a.out, embed_texts(model.embed, dm, texts).numpy())
    print(f"wrote {len(texts)} embeddings to {a.out}")


if __name__ == "__main__":
    main()
