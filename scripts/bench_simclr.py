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

from contrastive.data.device_augment import DeviceSimCLRAugment
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
    ap.add_argument("--augment-on", choices=["cpu", "device"], default="cpu",
                    help="cpu: SimCLRTransform per image in workers; device: DeviceSimCLRAugment on whole batches")
    a = ap.parse_args()
    dev = torch.device(a.device)
    enc, head = ResNet("resnet18", cifar_stem=True).to(dev), MLPHead(512, 512, 128).to(dev)
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    n = a.batch * (a.steps + a.warmup)
    if a.augment_on == "cpu":
        loader = DataLoader(TwoViews(RandomImages(n), SimCLRTransform(32)), batch_size=a.batch, drop_last=True,
                            num_workers=a.workers, persistent_workers=a.workers > 0)
    else:  # uint8 tensors in memory; the loader only slices and collates them
        images = torch.from_numpy(RandomImages(n).x).permute(0, 3, 1, 2).contiguous()
        loader = DataLoader(torch.utils.data.TensorDataset(images), batch_size=a.batch, drop_last=True)
        augment = DeviceSimCLRAugment(32)
    wait = compute = 0.0
    t0 = time.perf_counter()
    for step, batch in enumerate(loader):
        t1 = time.perf_counter()
        if a.augment_on == "cpu":
            v1, v2 = batch[0], batch[1]
        else:  # the augmentation runs on the training device, as part of the step
            x = batch[0].to(dev, non_blocking=True)
            v1, v2 = augment(x), augment(x)
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
    print(f"device={name} batch={a.batch} steps={a.steps} precision={a.precision} workers={a.workers} "
          f"augment_on={a.augment_on}")
    print(f"images/s={a.batch * a.steps / total:.1f} (one image = one pair of views)  "
          f"step={total / a.steps:.3f}s  data_wait={100 * wait / total:.1f}%")


if __name__ == "__main__":
    main()
