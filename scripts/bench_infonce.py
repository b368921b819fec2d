"""Forward + backward time of nt_xent and info_nce (in-batch) at batch 256, 1024, 4096, dim 128, beside
lightly's NTXentLoss (the same computation) when lightly is importable. Run it with a python that has both,
e.g. `pip install lightly` beside our package, then

    python scripts/bench_infonce.py [--device cuda]
"""
from __future__ import annotations

import argparse
import platform

import torch
from timing import timed  # scripts/timing.py

from contrastive.losses import info_nce, nt_xent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="256,1024,4096")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    try:
        from lightly.loss import NTXentLoss
        lightly_loss = NTXentLoss(temperature=0.5)
    except ImportError:
        lightly_loss = None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"# {name}; dim {a.dim}; ms per forward+backward")
    print("| batch | `nt_xent` | lightly `NTXentLoss` | ratio lightly / ours | `info_nce` (in-batch) | max abs diff |")
    print("|---|---|---|---|---|---|")
    for n in map(int, a.batches.split(",")):
        z1 = torch.randn(n, a.dim, device=dev, requires_grad=True)
        z2 = torch.randn(n, a.dim, device=dev, requires_grad=True)
        ours = 1000 * timed(lambda z1=z1, z2=z2: nt_xent(z1, z2, 0.5).backward(), a.repeats, dev)
        inb = 1000 * timed(lambda z1=z1, z2=z2: info_nce(z1, z2, temperature=0.5).backward(), a.repeats, dev)
        if lightly_loss is not None:
            theirs = 1000 * timed(lambda z1=z1, z2=z2: lightly_loss(z1, z2).backward(), a.repeats, dev)
            diff = abs(float(nt_xent(z1, z2, 0.5)) - float(lightly_loss(z1, z2)))
            print(f"| {n} | {ours:.2f} | {theirs:.2f} | {theirs / ours:.2f} | {inb:.2f} | {diff:.1e} |")
        else:
            print(f"| {n} | {ours:.2f} | n/a | n/a | {inb:.2f} | n/a |")


if __name__ == "__main__":
    main()
