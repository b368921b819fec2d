"""Peak memory and time of one forward + backward of nt_xent, plain vs tiled, each in a fresh process.

    python scripts/bench_tiled_memory.py [--batches 4096,8192] [--tile 512] [--device cuda]
CPU memory is the growth of the process's peak RSS during the call; on a GPU, the allocator's peak.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time, torch
from contrastive.losses import nt_xent
n, dim, tile, dev = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], torch.device(sys.argv[4])
tile = None if tile == "none" else int(tile)
torch.manual_seed(0)
z1 = torch.randn(n, dim, device=dev, requires_grad=True)
z2 = torch.randn(n, dim, device=dev, requires_grad=True)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if dev.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
t = time.perf_counter()
nt_xent(z1, z2, 0.5, tile_size=tile).backward()
if dev.type == "cuda":
    torch.cuda.synchronize(); peak = (torch.cuda.max_memory_allocated() - base) / 2**20
else:
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
print(json.dumps({"ms": 1000 * (time.perf_counter() - t), "peak_mib": peak, "grad": float(z1.grad.norm())}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="4096,8192")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    print(f"# nt_xent forward+backward, dim {a.dim}, device {a.device}; one fresh process per row")
    print("| batch (pairs) | tile | ms | peak MiB | grad norm |")
    print("|---|---|---|---|---|")
    for n in a.batches.split(","):
        for tile in ("none", str(a.tile)):
            r = subprocess.run([sys.executable, "-c", CHILD, n, str(a.dim), tile, a.device],
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                print(f"| {n} | {tile} | failed: {r.stderr.strip().splitlines()[-1][:80]} | | |")
                continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"| {n} | {tile} | {d['ms']:.0f} | {d['peak_mib']:.0f} | {d['grad']:.6f} |")


if __name__ == "__main__":
    main()
