"""The one module that talks to torch.distributed: rank helpers and an all-gather with exact gradients."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rank, ctx.size = rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # every rank's loss depends on every slice: sum the gradients, then keep our own slice
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather `[n, ...]` from every rank into `[world * n, ...]`; backward returns each rank the
    gradient of its own slice summed over ranks. Identity with one process. Needs equal `n` on all ranks."""
    if not is_distributed():
        return tensor
    sizes = all_gather_sizes(tensor.shape[0], tensor.device)
    if len(set(sizes)) != 1:
        raise ValueError(f"gather_with_grad needs the same batch size on every rank, got {sizes}; "
                         "set drop_last=True on the data loader")
    return _GatherWithGrad.apply(tensor)


@torch.no_grad()
def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 without gradient (for queues and memory banks)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def all_gather_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """The dim-0 size of every rank's tensor: one small all-gather of tensors on `device` (NCCL needs CUDA
    ones), not a pickled object, and one host sync."""
    mine = torch.tensor([int(n)], device=device)
    parts = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(parts, mine)
    return torch.cat(parts).tolist()


def broadcast_seed(seed: int) -> int:
    """Rank 0's integer, on every rank (so every rank draws the same negatives)."""
    if not is_distributed():
        return seed
    box = [seed]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


def rank_zero_flag(flag: bool, device: torch.device | str = "cpu") -> bool:
    """Rank 0's boolean on every rank (one tiny broadcast), so that all ranks act on the same step."""
    if not is_distributed():
        return bool(flag)
    box = torch.tensor([int(flag)], device=device)
    dist.broadcast(box, src=0)
    return bool(box.item())
