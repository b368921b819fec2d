"""`contrastive-embed RUN_DIR INPUT OUT.npy`: embed a text file (one text per line) with a trained dual encoder, or
a folder / file list of images with a trained image encoder (writing the image paths beside the features)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import hydra
import numpy as np
import torch

from contrastive.cli.run_dir import Run, add_trust_option, opened
from contrastive.csr_file import CsrWriter
from contrastive.data.images.fast_decode import BAD_IMAGE_ERRORS
from contrastive.data.images.folder_index import read_file_list, scan_folder
from contrastive.data.images.image_folder import PlainView
from contrastive.data.images.transforms import CIFAR_MEAN, CIFAR_STD
from contrastive.runtime.safe_config import trusting
from contrastive.sparse import Hybrid
from contrastive.tasks import ImageTask, TextPairsTask


def load_dual_encoder(source: str | Run, checkpoint: str = "last.ckpt") -> tuple[torch.nn.Module, object]:
    """The trained model of a `task=text_pairs` run and its data module (for the tokenizer)."""
    run = opened(source, checkpoint)
    cfg, task = run.config, run.task()
    if not isinstance(task, TextPairsTask):
        raise TypeError(f"{run.path} is a {type(task).__name__} run; embedding needs a text_pairs run")
    dm = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, encoder=hydra.utils.instantiate(cfg.encoder),
                                    objective=hydra.utils.instantiate(cfg.objective), optimizer=None)
    ckpt = run.state
    model.load_state_dict(ckpt["state_dict"])
    dm.load_state_dict(ckpt.get(type(dm).__qualname__, {}))  # a learned subword tokenizer
    if getattr(model.encoder, "brings_tokenizer", False):  # restored from the checkpoint with the encoder
        dm.tokenizer = model.encoder.tokens
    return model.eval(), dm


def count_lines(path: str) -> int:
    """The number of lines of a file (a last line without a newline counts), read in blocks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            n, last = n + block.count(b"\n"), block[-1:]
    return n + (last != b"\n")


@torch.no_grad()
def embed_text_file(run_dir: str | Run, path: str, out: str, checkpoint: str = "last.ckpt", batch_size: int = 1024,
                    device: str | None = None, progress: bool = True) -> tuple[int, str | None]:
    """Embed every line of a UTF-8 text file with a trained dual encoder, streaming: `out` (.npy, `[N, D]`
    float32, written batch by batch) gets the dense block, and a lexical encoder's sparse block goes to
    `out` with `.lexical.npz` (scipy CSR, `[N, vocab_size]`). Memory holds one batch. Returns (N, the sparse
    file or None)."""
    from tqdm import tqdm
    n = count_lines(path)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, dm = load_dual_encoder(run_dir, checkpoint)
    model.to(dev)
    probe = model.embed(dm.pad([""]).to(dev))
    hybrid = isinstance(probe, Hybrid)
    dense = open(out + ".part", "wb")  # noqa: SIM115 (closed below; plain writes keep no page of it resident)
    np.lib.format.write_array_header_1_0(dense, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (n, (probe.dense if hybrid else probe).shape[1])})
    lexical = os.path.splitext(out)[0] + ".lexical.npz" if hybrid else None
    sparse = CsrWriter(lexical, probe.vocab_size) if hybrid else None
    done = 0

    def flush(texts: list[str]) -> None:
        nonlocal done
        z = model.embed(dm.pad(texts).to(dev)).float().cpu()
        dense.write((z.dense if hybrid else z).numpy().astype("<f4").tobytes())
        if sparse is not None:
            sparse.append(*z.csr())
        done += len(texts)
        bar.update(len(texts))

    # lines end at "\n" only (as count_lines counts them); a "\r" before it is dropped
    with open(path, encoding="utf-8-sig", errors="replace", newline="\n") as f, \
            tqdm(total=n, desc="embedding", unit="text", disable=not progress) as bar:
        batch: list[str] = []
        for line in f:
            batch.append(line.rstrip("\r\n"))
            if len(batch) == batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    dense.close()
    if done != n:
        raise RuntimeError(f"{path} held {n} lines when counted and {done} when read: did it change meanwhile? "
                           f"{out}.part is incomplete")
    os.replace(out + ".part", out)  # a file named `out` is whole
    if sparse is not None:
        sparse.close()
    return done, lexical


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
            return torch.zeros(1 if self.view.gray else 3, self.size, self.size), i, False


@torch.no_grad()
def embed_images(run_dir: str | Run, images: str, checkpoint: str = "last.ckpt", batch_size: int = 256,
                 num_workers: int = 2, device: str | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """(features `[N, D]` float32, the N paths in order, the unreadable paths left out) of every image in a
    folder or file list, with the run's evaluation transform, batched on `device` (CUDA when available)."""
    from tqdm import tqdm

    from contrastive.cli.export import load_encoder
    run = opened(run_dir, checkpoint)
    cfg = run.config
    opts = cfg.get("augment")
    if not cfg.data._target_.endswith(("ImageFolderDataModule", "Cifar10DataModule")) or opts is None:
        raise ValueError(f"{run.path} was trained on {cfg.data._target_.rsplit('.', 1)[-1]}: embedding files needs "
                         "a run on image files (data=image_folder or cifar10)")
    size, gray = int(opts.size), int(cfg.encoder.get("in_channels") or 3) == 1
    index = read_file_list(images) if os.path.isfile(images) else scan_folder(images)
    paths = [index.path(i) for i in range(len(index))]
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = load_encoder(run).to(dev)
    view = PlainView(size, tuple(opts.get("mean", CIFAR_MEAN)), tuple(opts.get("std", CIFAR_STD)), gray)
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
    ap.add_argument("--batch-size", type=int, default=None, help="texts or images per batch (1024 / 256)")
    add_trust_option(ap)
    a = ap.parse_args()
    with trusting(a.trust.split(",")):
        _embed(a)


def _embed(a: argparse.Namespace) -> None:
    run = Run(a.run_dir, a.checkpoint)
    out = output_path(a.out, a.input)
    if isinstance(run.task(), ImageTask):
        feats, paths, bad = embed_images(run, a.input, batch_size=a.batch_size or 256)
        np.save(out, feats)
        with open(out + ".paths.txt", "w", encoding="utf-8") as f:
            f.writelines(p + "\n" for p in paths)
        skipped = f"; {len(bad)} unreadable file(s) left out, e.g. {bad[:3]}" if bad else ""
        print(f"wrote {feats.shape[0]} x {feats.shape[1]} features to {out} and their paths to "
              f"{out}.paths.txt{skipped}")
        return
    n, lexical = embed_text_file(run, a.input, out, batch_size=a.batch_size or 1024)
    print(f"wrote {n} embeddings to {out}" + (f" (the dense block) and their sparse lexical block to {lexical}; "
                                             "see 'Embedding files' in docs/text-pairs.md for the format" if lexical else ""))


def output_path(out: str, source: str) -> str:
    """`out` ending in `.npy` (numpy.save would append it), checked before any work: its folder exists and can be
    written, and neither it nor the files written beside it is the input `source`."""
    path = out if out.endswith(".npy") else out + ".npy"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the output folder {folder} does not exist: create it, or choose another OUT")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"the output folder {folder} cannot be written: choose another OUT")
    written = [out, path, path + ".paths.txt", os.path.splitext(path)[0] + ".lexical.npz"]
    if any(os.path.abspath(w) == os.path.abspath(source) or
           (os.path.exists(w) and os.path.exists(source) and os.path.samefile(w, source)) for w in written):
        raise ValueError(f"OUT {out} would overwrite the input {source}: choose another OUT")
    return path


if __name__ == "__main__":
    main()
