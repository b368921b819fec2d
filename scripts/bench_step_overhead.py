"""Per-step overhead of the non-finite guard and of the cross-process gather, before and after (CPU, one run).

Guard: one `isfinite(...).all()` check and host sync per parameter (before) against one fused check over all
gradients (`first_non_finite_grad`, after), on ResNet-18 and ResNet-50 gradients.
Gather: the batch sizes exchanged with `all_gather_object` (a pickle round trip, before) against one tensor
all-gather (`all_gather_sizes`, after), then the embeddings' all-gather, 2 gloo processes.

    python scripts/bench_step_overhead.py
"""
from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from contrastive.distributed import all_gather_sizes
from contrastive.encoders import ResNet
from contrastive.models.base import first_non_finite_grad


def per_parameter_guard(module: torch.nn.Module) -> str | None:
    """The guard as it was: one check and one host sync per parameter."""
    for name, p in module.named_parameters():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            return name
    return None


def best_ms(fn, repeats: int = 7, inner: int = 20) -> float:
    """The best of `repeats` means over `inner` calls, in ms."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner * 1e3)
    return min(times)


def guard_rows(device: str) -> list[str]:
    rows = []
    for arch in ("resnet18", "resnet50"):
        model = ResNet(arch=arch, in_channels=3, cifar_stem=True).to(device)
        model(torch.randn(8, 3, 32, 32, device=device)).sum().backward()
        n = sum(1 for p in model.parameters() if p.grad is not None)
        before = best_ms(lambda m=model: per_parameter_guard(m))
        after = best_ms(lambda m=model: first_non_finite_grad(m))
        rows.append(f"| guard, {arch} ({n} gradients), {device} | {before:.3f} | {after:.3f} | {before / after:.2f}x |")
    return rows


def _gather_worker(rank: int, port: int, out: mp.Queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    z = torch.randn(256, 128)

    def before() -> None:
        sizes = [None, None]
        dist.all_gather_object(sizes, z.shape[0])
        parts = [torch.empty_like(z) for _ in range(2)]
        dist.all_gather(parts, z)

    def after() -> None:
        all_gather_sizes(z.shape[0])
        parts = [torch.empty_like(z) for _ in range(2)]
        dist.all_gather(parts, z)

    def sizes_only_before() -> None:
        dist.all_gather_object([None, None], z.shape[0])

    timings = [best_ms(f, repeats=5, inner=200) for f in (sizes_only_before, lambda: all_gather_sizes(256),
                                                          before, after)]
    if rank == 0:
        out.put(timings)
    dist.destroy_process_group()


def gather_rows() -> list[str]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_gather_worker, args=(r, 29611, out)) for r in range(2)]
    for p in procs:
        p.start()
    size_before, size_after, before, after = out.get(timeout=600)
    for p in procs:
        p.join()
    return [(f"| batch-size exchange, 2 gloo processes | {size_before:.3f} | {size_after:.3f} | "
             f"{size_before / size_after:.2f}x |"),
            (f"| sizes + all-gather of 256 x 128, 2 gloo processes | {before:.3f} | {after:.3f} | "
             f"{before / after:.2f}x |")]


def main() -> None:
    torch.set_num_threads(2)
    print("| what | before (ms) | after (ms) | speed-up |\n|---|---|---|---|")
    rows = guard_rows("cpu") + (guard_rows("cuda") if torch.cuda.is_available() else []) + gather_rows()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
