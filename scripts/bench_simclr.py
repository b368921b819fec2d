"""Training throughput of SimCLR ResNet-18 (CIFAR stem, 32x32, batch 512) and the share of each step spent
waiting for data, side by side for several configurations in one run: augmentation in DataLoader workers
(SimCLRTransform, `cpu`) or on whole batches on the training device (DeviceSimCLRAugment, `device`), fp32 or
bf16/fp16 autocast, eager or `torch.compile`. Ratios are against the first configuration.

    python scripts/bench_simclr.py --steps 2 --workers 2                 # CPU
    python scripts/bench_simclr.py --device cuda --steps 20 --workers 8 --channels-last
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

from contrastive.data.images.device_augment import DeviceSimCLRAugment
from contrastive.data.images.transforms import SimCLRTransform, TwoViews
from contrastive.encoders import MLPHead, ResNet
from contrastive.losses import nt_xent


class RandomImages(Dataset):
    def __init__(self, n: int) -> None:
        self.x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.x[i]), 0


def run(a: argparse.Namespace, augment_on: str, precision: str, compile_: bool) -> tuple[float, float, float]:
    """(images/s, seconds per step, % of the step waiting for data) for one configuration."""
    dev = torch.device(a.device)
    enc, head = ResNet("resnet18", cifar_stem=True).to(dev), MLPHead(512, 512, 128).to(dev)
    if a.channels_last:
        enc = enc.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.1, momentum=0.9)
    encode = torch.compile(enc) if compile_ else enc
    n = a.batch * (a.steps + a.warmup)
    if augment_on == "cpu":
        loader = DataLoader(TwoViews(RandomImages(n), SimCLRTransform(32)), batch_size=a.batch, drop_last=True,
                            num_workers=a.workers, persistent_workers=a.workers > 0)
    else:  # uint8 tensors in memory; the loader only slices and collates them
        images = torch.from_numpy(RandomImages(n).x).permute(0, 3, 1, 2).contiguous()
        loader = DataLoader(torch.utils.data.TensorDataset(images), batch_size=a.batch, drop_last=True,
                            num_workers=a.workers, persistent_workers=a.workers > 0, pin_memory=dev.type == "cuda")
        augment = DeviceSimCLRAugment(32)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    wait = compute = 0.0
    t0 = time.perf_counter()
    for step, batch in enumerate(loader):
        t1 = time.perf_counter()
        if augment_on == "cpu":
            v1, v2 = batch[0], batch[1]
        else:  # the augmentation runs on the training device, as part of the step
            x = batch[0].to(dev, non_blocking=True)
            v1, v2 = augment(x), augment(x)
        x = torch.cat([v1, v2]).to(dev, non_blocking=True)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            z = head(encode(x))
        loss = nt_xent(*z.float().chunk(2), temperature=0.5)  # the loss in float32, as the Lightning module does
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if step >= a.warmup:  # the warm-up steps include compilation
            wait, compute = wait + (t1 - t0), compute + (t2 - t1)
        t0 = time.perf_counter()
    total = wait + compute
    return a.batch * a.steps / total, total / a.steps, 100 * wait / total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--configs", default="cpu:fp32:eager,device:fp32:eager,device:bf16:eager,device:bf16:compile",
                    help="comma-separated augment_on:precision:eager|compile, with augment_on cpu (SimCLRTransform "
                         "per image in workers) or device (DeviceSimCLRAugment on whole batches), precision "
                         "fp32|bf16|fp16")
    a = ap.parse_args()
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'} x{torch.get_num_threads()} threads"
    print(f"# device={name} torch={torch.__version__} batch={a.batch} steps={a.steps} (+{a.warmup} warm-up) "
          f"workers={a.workers} channels_last={a.channels_last}")
    print("| augment_on | precision | compile | images/s | s/step | data wait |")
    print("|---|---|---|---|---|---|")
    base = None
    for c in a.configs.split(","):
        augment_on, precision, mode = c.split(":")
        ips, step, wait = run(a, augment_on, precision, mode == "compile")
        base = base or ips
        print(f"| {augment_on} | {precision} | {mode} | {ips:.1f} ({ips / base:.2f}x) | {step:.3f} | {wait:.1f}% |",
              flush=True)


if __name__ == "__main__":
    main()
