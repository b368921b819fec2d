"""One training step (forward, backward, SGD step: `SparseSGD` for the sampled losses' sparse rows, torch's SGD
for the full softmax) of NCELoss, SampledSoftmaxLoss and full softmax cross-entropy at batch 1024, dim 128, 64 samples, for vocabularies 1e4, 1e5, 1e6; TensorFlow's nce_loss in
the same run when `--tf-python` names a python that has TensorFlow (a throwaway venv). Peak memory from the
allocator (GPU) or the growth of the process's max RSS (CPU; it never shrinks, so later rows can read 0).
On CPU, NCELoss also under `threads=adaptive` (contrastive.runtime.threads.ThreadTuner around each step; 80 warm-up
steps let it settle, then 4x the repeats, its probes of other thread counts included). `--busy` keeps one core busy with a spinning process during every measurement, ours and
TensorFlow's: a neighbour on a shared machine.

    python scripts/bench_sampled_losses.py [--device cuda] [--repeats 50] [--tf-python tf-venv/bin/python] [--busy]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys

import torch
import torch.nn.functional as F
from timing import timed  # scripts/timing.py

from contrastive.losses import NCELoss, SampledSoftmaxLoss
from contrastive.optim import SparseSGD
from contrastive.runtime.threads import ThreadTuner, available_cores


def torch_step(kind: str, vocab: int, a, device: torch.device):
    x = torch.randn(a.batch, a.dim, device=device)
    y = torch.randint(0, vocab, (a.batch,), device=device)
    if kind == "full_softmax":
        head = torch.nn.Linear(a.dim, vocab).to(device)
        opt = torch.optim.SGD(head.parameters(), lr=0.1)
        loss_fn = lambda: F.cross_entropy(head(x), y)
    else:
        cls = NCELoss if kind == "NCELoss" else SampledSoftmaxLoss
        head = cls(vocab, a.dim, a.samples, sparse=True).to(device)
        # rows added without coalescing the sparse gradient first, as TF applies IndexedSlices (~10% of a step)
        opt = SparseSGD(head.parameters(), lr=0.1)
        loss_fn = lambda: head(x, y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()
    return step


def adaptive(step, start: int):
    """`step` with the adaptive thread policy around it (probing for 5 steps every 20)."""
    tuner = ThreadTuner(start, available_cores(), every=20, probe=5)

    def run() -> None:
        tuner.before()
        step()
        tuner.after()
    run.tuner = tuner
    return run


def tf_ms(vocab: int, a) -> str:
    """TF's nce_loss step time, measured by scripts/tf_nce_step.py under `--tf-python`; 'n/a' without TF."""
    if not a.tf_python:
        return "n/a"
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_nce_step.py")
    r = subprocess.run([a.tf_python, script, str(vocab), str(a.batch), str(a.dim), str(a.samples), str(a.repeats)],
                       capture_output=True, text=True, check=False)
    return f"{float(r.stdout.split()[-1]):.2f}" if r.returncode == 0 and r.stdout.split() else "failed"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--vocabs", default="10000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--full-repeats", type=int, default=2, help="full softmax is slow at 1e6 on a CPU")
    ap.add_argument("--full-max", type=int, default=10**6,
                    help="skip full softmax above this vocabulary (its [batch, V] logits and gradient: 82 GB at 1e7)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf-python", default="", help="a python with TensorFlow, to time tf.nn.nce_loss beside us")
    ap.add_argument("--busy", action="store_true", help="a process spinning on one core throughout")
    a = ap.parse_args()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.busy else None
    try:
        run(a)
    finally:
        if spinner is not None:
            spinner.kill()


def run(a: argparse.Namespace) -> None:
    dev = torch.device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    busy = "; one core kept busy by another process" if a.busy else ""
    print(f"# {name}; batch {a.batch}, dim {a.dim}, {a.samples} samples; ms per step (forward+backward+SGD){busy}")
    print("| vocabulary | NCELoss | NCELoss, threads=adaptive | SampledSoftmaxLoss | full softmax | TF nce_loss "
          "| peak MiB NCE / full |")
    print("|---|---|---|---|---|---|---|")
    vocabs = [int(v) for v in a.vocabs.split(",")]
    row: dict[tuple[str, int], float] = {}
    mem: dict[tuple[str, int], float] = {}
    # the sampled losses first, for every vocabulary, so the full softmax's large buffers cannot disturb them
    threads = torch.get_num_threads()
    kinds = ("NCELoss", "adaptive", "SampledSoftmaxLoss", "full_softmax") if dev.type == "cpu" else \
        ("NCELoss", "SampledSoftmaxLoss", "full_softmax")
    for kind in kinds:
        for vocab in vocabs:
            if kind == "full_softmax" and vocab > a.full_max:
                continue
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            reps = a.full_repeats if kind == "full_softmax" else a.repeats
            if kind == "adaptive":
                step = adaptive(torch_step("NCELoss", vocab, a, dev), threads)
                row[kind, vocab] = 1000 * timed(step, 4 * reps, dev, warmup=80)  # 4x: its probes included
                torch.set_num_threads(threads)
            else:
                row[kind, vocab] = 1000 * timed(torch_step(kind, vocab, a, dev), reps, dev,
                                                warmup=1 if reps < 3 else 10)
            mem[kind, vocab] = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
                                else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    for v in vocabs:
        full = f"{row['full_softmax', v]:.1f}" if ("full_softmax", v) in row else "skipped"
        full_mem = f"{mem['full_softmax', v]:.0f}" if ("full_softmax", v) in mem else "-"
        adapt = f"{row['adaptive', v]:.2f}" if ("adaptive", v) in row else "-"
        print(f"| {v:,} | {row['NCELoss', v]:.2f} | {adapt} | {row['SampledSoftmaxLoss', v]:.2f} | {full} "
              f"| {tf_ms(v, a)} | {mem['NCELoss', v]:.0f} / {full_mem} |")
    small, large = vocabs[0], vocabs[-1]
    print(f"\nNCELoss step at {large:,} classes / at {small:,}: {row['NCELoss', large] / row['NCELoss', small]:.2f}x")


if __name__ == "__main__":
    main()
