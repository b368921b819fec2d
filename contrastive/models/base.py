"""What every contrastive LightningModule shares: optimizer with warmup-then-cosine, loss logging."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from contrastive import distributed as D
from contrastive.optim import warmup_cosine


def accepted_keywords(module: nn.Module) -> set[str]:
    """The parameter names of `module.forward` (what a model may pass it by keyword)."""
    return set(inspect.signature(module.forward).parameters)


def scalar_loss(loss: Any, name: str, given: str = "") -> torch.Tensor:
    """`loss` if it is a scalar tensor (an objective's contract); else an error naming objective `name`, what it
    returned and, when said, what it was `given`."""
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"objective: {name} returned {got}{given}; an objective must return a scalar tensor "
                         "(reduce over the batch, e.g. .mean())")
    return loss


def _float(tensors: dict[str, Any]) -> dict[str, Any]:
    """The floating-point tensors among `tensors` in float32, the rest as they are."""
    return {n: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for n, v in tensors.items()}


def check_guard(guard: str) -> str:
    """`guard` if it is `stop` or `skip` (what a non-finite loss or gradient does), else a ValueError."""
    if guard not in ("stop", "skip"):
        raise ValueError(f"guard must be 'stop' or 'skip', got {guard!r}")
    return guard


def stop_or_skip(module: pl.LightningModule, guard: str, what: str, left: str, lower: str) -> None:
    """The guard's answer to a non-finite step (`what`, at the module's step): `stop` raises, saying whether a
    checkpoint holds the work so far and `lower` (what to lower); `skip` counts it in `module.skipped_steps` and
    warns that `left` (what was put back) is as it was."""
    msg = f"{what} at step {module.global_step} (loss term: {type(module.objective).__name__})"
    if guard == "stop":
        saved = "the last checkpoint is intact" if module.global_step > 0 and module._trainer is not None and any(
            getattr(c, "last_model_path", "") for c in module.trainer.checkpoint_callbacks) else \
            "no checkpoint was written yet"
        raise FloatingPointError(f"{msg}; training stopped, {saved}. Lower {lower} or set guard=skip to skip such "
                                 "steps")
    module.skipped_steps += 1
    warnings.warn(f"{msg}; step skipped ({module.skipped_steps} so far), {left} left as they were")


def first_non_finite_grad(module: nn.Module, losses: list[torch.Tensor] | None = None) -> str | None:
    """"loss" if one of `losses` is NaN or inf, else the name of the first parameter whose gradient is, else None;
    one host sync when all are finite (the check is fused over the losses and every gradient)."""
    named = [("loss", loss.detach()) for loss in losses or []] + \
        [(n, p.grad.coalesce().values() if p.grad.is_sparse else p.grad)
         for n, p in module.named_parameters() if p.grad is not None]
    # the sum of a tensor is finite when all its values are (10x cheaper than isfinite().all() on a CPU); a
    # sum that overflows is a false alarm, which the exact per-tensor check below clears
    sums = [g.sum(dtype=torch.float32 if g.dtype in (torch.float16, torch.bfloat16) else None).float()
            for _, g in named]
    if not named or bool(torch.isfinite(torch.stack(sums)).all()):
        return None
    return next((n for n, g in named if not bool(torch.isfinite(g).all())), None)


class ContrastiveModule(pl.LightningModule):
    """Holds `encoder`, `objective`, an optional negative source (queue or memory bank) and the optimizer
    factory; subclasses implement `_loss(batch, stage)`."""

    def __init__(self, encoder: nn.Module, objective: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 negatives: nn.Module | None = None, warmup_epochs: float = 10, final_lr_ratio: float = 0.0,
                 cache_chunk: int | None = None, guard: str = "stop", channels_last: bool = False,
                 compile: bool = False) -> None:
        super().__init__()
        if cache_chunk is not None and cache_chunk < 1:
            raise ValueError(f"cache_chunk must be a positive number of rows or None, got {cache_chunk}")
        self.guard, self.skipped_steps = check_guard(guard), 0
        # gradient caching runs its own backward passes, chunk by chunk
        self.automatic_optimization = cache_chunk is None
        self.save_hyperparameters(ignore=["encoder", "projector", "objective", "optimizer", "negatives"],
                                  logger=False)
        self.encoder, self.objective, self.negatives = encoder, objective, negatives
        # what the objective's forward takes, read once: the step passes labels only to one that names them
        self.objective_keywords = accepted_keywords(objective) if objective is not None else set()
        self.optimizer_factory = optimizer
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._pending_keys: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self._step_losses: list[tuple[torch.Tensor, int]] = []  # since the last optimizer step
        self._saved_state: list[tuple[torch.Tensor, torch.Tensor]] = []  # guard=skip: put back on a skipped step

    def on_train_start(self) -> None:
        check = getattr(self.negatives, "check_fits", None)  # a queue: not longer than the training data
        loader = self.trainer.train_dataloader
        if check is not None and loader is not None and hasattr(loader, "dataset"):
            check(len(loader.dataset))

    def configure_model(self) -> None:
        """Lightning calls this once before fitting: convolution weights to channels_last when asked."""
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """Image batches `[B, C, H, W]` in the configured memory format."""
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last and x.dim() == 4 else x

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """`encoder(x)`, compiled with `torch.compile` on first use when `compile=true`."""
        if not self.hparams.compile:
            return self.encoder(self._images(x))
        if self._compiled is None:
            # a compiled bound method, not a submodule: checkpoints keep the plain encoder's keys
            self._compiled = torch.compile(self.encoder.forward)
        return self._compiled(self._images(x))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_compiled"] = None  # compiled code does not pickle (ddp_spawn); rebuilt on first use
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features `[B, out_dim]` (what downstream tasks use)."""
        return self._encode(x)

    def _objective(self, q: torch.Tensor, k: torch.Tensor, index: torch.Tensor | None,
                   store: bool, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The objective on `(q, k)`, as the negative source calls it (stored negatives, or nearest-neighbour
        positives); `labels` go to an objective that takes them; with `store`, the keys are stored at the step."""
        terms = [(q, k, {})] if self.negatives is None else self.negatives.terms(q, k, index)
        with_labels = {"labels": labels} if "labels" in self.objective_keywords else {}
        # the loss in float32 whatever the precision: logsumexp over thousands of bf16 logits loses digits
        with torch.autocast(q.device.type, enabled=False):
            loss = sum(self.objective(a.float(), b.float(), **_float(extra), **with_labels)
                       for a, b, extra in terms) / len(terms)
        if self.negatives is not None and store:
            self._store_keys(k, index)
        return self._scalar(loss)

    def _scalar(self, loss: Any) -> torch.Tensor:
        """`loss`, if the objective kept its contract (a scalar tensor); else an error naming the slot."""
        return scalar_loss(loss, type(self.objective).__qualname__)

    def _store_keys(self, keys: torch.Tensor, index: torch.Tensor | None) -> None:
        """Hold `keys` for the negative source until the optimizer step: a skipped step stores nothing."""
        self._pending_keys.append((keys.detach(), index))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.guard == "skip":  # what the forward pass changes besides trained parameters (BatchNorm
            # statistics, momentum copies), to put back if the step turns out non-finite
            self._saved_state = [(t, t.detach().clone()) for t in self._untrained_state()]

    def _untrained_state(self) -> list[torch.Tensor]:
        """Buffers and frozen parameters, except the negative source's (it is only written after the step)."""
        skip = {id(t) for t in self.negatives.buffers()} if self.negatives is not None else set()
        frozen = [p for p in self.parameters() if not p.requires_grad]
        return [t for t in [*self.buffers(), *frozen] if id(t) not in skip]

    def _restore_untrained_state(self) -> None:
        with torch.no_grad():
            for t, saved in self._saved_state:
                t.copy_(saved)

    def _log_loss(self, loss: torch.Tensor, stage: str, batch_size: int) -> None:
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True,
                 sync_dist=stage == "val", batch_size=batch_size)
        temperature = getattr(self.objective, "temperature", None)
        if stage == "train" and temperature is not None:
            self.log("train/temperature", temperature().detach(), on_step=True, on_epoch=False)

    def _non_finite(self, what: str) -> bool:
        """Stop (raise) or, with guard=skip, warn and return True: the step is skipped."""
        stop_or_skip(self, self.guard, what, "parameters and buffers", "the learning rate")
        self._pending_keys = []
        self._restore_untrained_state()
        return True

    def _batch_size(self, batch: Any) -> int:
        return int(batch[0].shape[0])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if not self.automatic_optimization:
            return self._cached_step(batch)
        loss = self._loss(batch, "train")
        # checked with the gradients before the optimizer step: one host sync per step, not one per check
        self._step_losses.append((loss.detach(), self._batch_size(batch)))
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        losses, self._step_losses = self._step_losses, []
        name = first_non_finite_grad(self, [loss for loss, _ in losses])
        what = (f"non-finite loss {next(float(v) for v, _ in losses if not bool(torch.isfinite(v)))}"
                if name == "loss" else f"non-finite gradient in {name}")
        if name is not None and self._non_finite(what):
            optimizer.zero_grad(set_to_none=True)  # parameters without a gradient are not updated
        else:
            for loss, n in losses:  # a skipped step's loss is not logged
                self._log_loss(loss, "train", n)
        # before the checkpoint callbacks run, so a checkpoint of this step holds its keys
        pending, self._pending_keys = self._pending_keys, []
        for keys, index in pending:
            self.negatives.update(keys, index)

    def _cached_step(self, batch: Any) -> torch.Tensor:
        """One optimizer step with gradient caching (`cache_chunk`); see models/grad_cache.py."""
        if D.is_distributed():
            raise ValueError("model.cache_chunk runs several backward passes per step, which this version does not "
                             "synchronise across processes; use it with one process, or objective.tile_size under DDP")
        opt, sched = self.optimizers(), self.lr_schedulers()
        opt.zero_grad(set_to_none=True)
        loss = self._cached_loss_backward(batch)
        bad = not bool(torch.isfinite(loss)) and self._non_finite(f"non-finite loss {loss.item()}")
        if not bad:
            opt.step()
        sched.step()  # type: ignore[union-attr]
        self._log_loss(loss, "train", self._batch_size(batch))
        return loss

    def _cached_loss_backward(self, batch: Any) -> torch.Tensor:
        raise ValueError(f"{type(self).__name__} does not support gradient caching (model.cache_chunk)")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._log_loss(self._loss(batch, "val"), "val", self._batch_size(batch))

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def configure_optimizers(self) -> Any:
        opt = self.optimizer_factory([p for p in self.parameters() if p.requires_grad])
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = min(total - 1, int(self.hparams.warmup_epochs * per_epoch)) if total > 1 else 0
        schedule = partial(warmup_cosine, warmup_steps=max(1, warmup), total_steps=total,
                           final_ratio=self.hparams.final_lr_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
