"""Training throughput of SimCLR ResNet-18 (CIFAR stem, 32x32, batch 256) and the share of each step spent
waiting for data, with the real CPU augmentation pipeline (SimCLRTransform in DataLoader workers).

    python scripts/bench_simclr.py --steps 5 --workers 2            # CPU
    python scripts/bench_simclr.py --device cuda --precision bf16    # GPU
Images are random uint8 32x32 (CIFAR's shape), so no download is needed.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from contrastive.data.transforms import SimCLRTransform, TwoViews
from contrastive.encoders import MLPHead, ResNet
from contrastive.losses import nt_xent


class RandomImages(Dataset):
    def __init__(self, n: int) -> None:
        self.x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.x[i]), 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    dev = torch.device(a.device)
    enc, head = ResNet("resnet18", cifar_stem=True).to(dev), MLPHead(512, 512, 128).to(dev)
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    n = a.batch * (a.steps + a.warmup)
    loader = DataLoader(TwoViews(RandomImages(n), SimCLRTransform(32)), batch_size=a.batch, drop_last=True,
                        num_workers=a.workers, persistent_workers=a.workers > 0)
    wait = compute = 0.0
    t0 = time.perf_counter()
    for step, (v1, v2, _, _) in enumerate(loader):
        t1 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            z = head(enc(torch.cat([v1, v2]).to(dev, non_blocking=True)))
        loss = nt_xent(*z.float().chunk(2), temperature=0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if step >= a.warmup:
            wait, compute = wait + (t1 - t0), compute + (t2 - t1)
        t0 = time.perf_counter()
    total = wait + compute
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'} x{torch.get_num_threads()} threads"
    print(f"device={name} batch={a.batch} steps={a.steps} precision={a.precision} workers={a.workers}")
    print(f"images/s={a.batch * a.steps / total:.1f} (one image = one pair of views)  "
          f"step={total / a.steps:.3f}s  data_wait={100 * wait / total:.1f}%")


if __name__ == "__main__":
    main()
