"""One training loop for fine-tuning and unlearning, on ``accelerate``.

``accelerate`` places the model and batches on the device, turns on bf16 mixed precision where
the hardware has it (a CUDA GPU with bf16 support; plain fp32 on a CPU), and handles gradient
accumulation. The loop takes a ``loss_fn(model, batch) -> (loss, terms)`` so fine-tuning and
every unlearning objective share it; it logs each step's loss terms and wall time, shows a
progress bar, and stops with :class:`NonFiniteLossError` (log kept) when the loss is NaN/inf.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from tqdm.auto import tqdm

from unlearnkit.errors import NonFiniteLossError

LossFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class TrainLog:
    steps: list[dict] = field(default_factory=list)
    wall_time: float = 0.0
    stopped: str | None = None  # why training stopped early (None = ran to the end)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "wall_time": self.wall_time, "stopped": self.stopped}


def mixed_precision() -> str:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(grad_accum: int = 1) -> Accelerator:
    return Accelerator(mixed_precision=mixed_precision(), gradient_accumulation_steps=grad_accum)


def _schedule(kind: str, total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def train_loop(
    model: torch.nn.Module,
    loader: Iterable,
    loss_fn: LossFn,
    *,
    lr: float,
    epochs: int,
    grad_accum: int = 1,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.0,
    max_grad_norm: float | None = 1.0,
    schedule: str = "constant",
    desc: str = "train",
    params: list[torch.nn.Parameter] | None = None,
    accelerator: Accelerator | None = None,
    on_epoch_end: Callable[[int, TrainLog], bool] | None = None,
    optimizer_factory: Callable[[list], torch.optim.Optimizer] | None = None,
    after_step: Callable[[], None] | None = None,
    max_steps: int | None = None,
) -> TrainLog:
    """Minimise ``loss_fn`` over ``loader`` for ``epochs`` epochs; returns the step log.

    ``on_epoch_end(epoch, log)`` may return True to stop early. ``after_step`` runs after each
    optimiser step (e.g. to re-impose a hard constraint on some weights). ``max_steps`` stops
    after that many optimiser steps (early stopping by update count).
    """
    acc = accelerator or make_accelerator(grad_accum)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if optimizer_factory is not None:
        opt = optimizer_factory(params)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    model, opt, loader = acc.prepare(model, opt, loader)
    steps_per_epoch = max(1, math.ceil(len(loader) / grad_accum))
    total = steps_per_epoch * epochs
    if max_steps is not None:
        total = min(total, max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(schedule, total, int(warmup_ratio * total)))
    log = TrainLog()
    model.train()
    t0 = time.perf_counter()
    step = 0
    bar = tqdm(total=total, desc=desc, leave=False, disable=None)
    try:
        for epoch in range(epochs):
            for batch in loader:
                batch = send_to_device(batch, acc.device)
                with acc.accumulate(model):
                    loss, terms = loss_fn(model, batch)
                    if not torch.isfinite(loss):
                        log.stopped = f"non-finite loss ({loss.item()}) at step {step}, epoch {epoch}"
                        raise NonFiniteLossError(
                            f"{desc}: loss became {loss.item()} at step {step} (epoch {epoch}); "
                            "lower the learning rate or add a retain term"
                        )
                    acc.backward(loss)
                    if acc.sync_gradients and max_grad_norm:
                        acc.clip_grad_norm_(params, max_grad_norm)
                    opt.step()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                if acc.sync_gradients:
                    if after_step is not None:
                        after_step()
                    step += 1
                    bar.update(1)
                    rec = {"step": step, "epoch": epoch, "loss": float(loss.detach()),
                           "lr": sched.get_last_lr()[0], "wall": round(time.perf_counter() - t0, 4)}
                    rec.update({k: float(v) for k, v in terms.items()})
                    log.steps.append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}")
                    if max_steps is not None and step >= max_steps:
                        break
            if max_steps is not None and step >= max_steps:
                log.stopped = f"max_steps={max_steps} reached (early stopping)"
                break
            if on_epoch_end is not None and on_epoch_end(epoch, log):
                log.stopped = f"early stop after epoch {epoch}"
                break
    finally:
        bar.close()
        log.wall_time = time.perf_counter() - t0
        acc.unwrap_model(model, keep_fp32_wrapper=False)
        model.eval()
    return log
