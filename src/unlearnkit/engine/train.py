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

from unlearnkit.engine import distributed as dist
from unlearnkit.engine import sharding
from unlearnkit.errors import NonFiniteLossError, UnlearnkitError

LossFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class TrainLog:
    steps: list[dict] = field(default_factory=list)
    wall_time: float = 0.0
    stopped: str | None = None  # why training stopped early (None = ran to the end)
    distributed: dict = field(default_factory=dict)  # processes, strategy, per-process facts (several processes)
    adapter: Any = None  # a LoRA run's trained adapter (unlearnkit.models.adapters.Adapter); not in to_dict()

    def to_dict(self) -> dict:
        out = {"steps": self.steps, "wall_time": self.wall_time, "stopped": self.stopped}
        if self.distributed:
            out["distributed"] = self.distributed
        return out


def mixed_precision() -> str:
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(grad_accum: int = 1) -> Accelerator:
    """accelerate for this process: bf16 on a GPU that has it; with a launcher, its process group (gloo on CPUs,
    where accelerate needs ``cpu=True`` to see the other processes; nccl on GPUs)."""
    dist.strategy()  # a bad launcher setting is a one-line error before accelerate reads it
    dist.init()
    return Accelerator(mixed_precision=mixed_precision(), gradient_accumulation_steps=grad_accum,
                       cpu=not torch.cuda.is_available())


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
    after that many optimiser steps (early stopping by update count). With ``grad_accum`` > 1 an
    optimiser step (and a learning-rate schedule step) happens every ``grad_accum`` batches.

    Several processes (:mod:`unlearnkit.engine.distributed`): the loader's batches are shared out by
    accelerate; DDP trains ``model`` itself, FSDP2 / ZeRO-3 train a sharded shadow of it
    (:mod:`unlearnkit.engine.sharding`) whose weights are written back into ``model`` before each
    ``on_epoch_end`` and at the end — either way ``model`` holds θ on every process when this returns.
    The logged loss and terms are means over the processes.
    """
    acc = accelerator or make_accelerator(grad_accum)
    run = _Prepared.make(acc, model, loader, dist.strategy(), lr, weight_decay, params, optimizer_factory, after_step)
    total = schedule_length(len(run.loader), grad_accum, epochs, max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(run.opt, _schedule(schedule, total, int(warmup_ratio * total)))
    loop = _Loop(acc, run.trained, run.opt, sched, loss_fn, run.params, max_grad_norm, desc, after_step, max_steps)
    run.trained.train()
    bar = tqdm(total=total, desc=desc, leave=False, disable=None if dist.is_main() else True)
    try:
        for epoch in range(epochs):
            for batch in run.loader:
                if loop.micro_step(batch, epoch, bar):
                    break
            if loop.done():
                loop.log.stopped = f"max_steps={max_steps} reached (early stopping)"
                break
            run.sync()
            if on_epoch_end is not None and on_epoch_end(epoch, loop.log):
                loop.log.stopped = f"early stop after epoch {epoch}"
                break
    finally:
        bar.close()
        loop.log.wall_time = time.perf_counter() - loop.t0
        run.finish(loop.log)
    return loop.log


@dataclass
class _Prepared:
    """What trains: ``model`` itself (one process, DDP) or its sharded shadow (FSDP2, ZeRO-3)."""

    acc: Accelerator
    model: torch.nn.Module  # the caller's model
    trained: torch.nn.Module  # prepared for training (DDP wrapper, sharded shadow, or model)
    opt: Any
    loader: Any
    params: list
    strategy: str
    home: torch.device | None = None  # where the caller's copy lived while parked on the CPU

    @classmethod
    def make(cls, acc, model, loader, strategy, lr, weight_decay, params, optimizer_factory, after_step) -> _Prepared:
        if strategy in ("fsdp", "deepspeed") and after_step is not None:
            raise UnlearnkitError(f"step probes (gradient, squeeze) run in one process or with DDP, not with {strategy}"
                                  ": launch them without the sharded accelerate config")
        names = {id(p): n for n, p in model.named_parameters()}
        chosen = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
        trained, home = model, None
        if strategy in ("fsdp", "deepspeed"):
            trained = sharding.sharded(model, strategy)
            home = sharding.park(model)
            by_name = dict(trained.named_parameters())
            chosen = [by_name[names[id(p)]] for p in chosen]
        opt = optimizer_factory(chosen) if optimizer_factory is not None else torch.optim.AdamW(
            chosen, lr=lr, weight_decay=weight_decay)
        if strategy == "fsdp":
            loader = acc.prepare(loader)
        else:
            trained, opt, loader = acc.prepare(trained, opt, loader)
        return cls(acc, model, trained, opt, loader, chosen, strategy, home)

    def sync(self) -> None:
        """Make the caller's model hold the current weights (sharded strategies; collective)."""
        if self.strategy in ("fsdp", "deepspeed"):
            sharding.write_back(self.trained, self.model, self.strategy)

    def finish(self, log: TrainLog) -> None:
        self.sync()
        if self.home is not None:
            self.model.to(self.home)
        if self.trained is not self.model and self.strategy not in ("fsdp", "deepspeed"):
            self.acc.unwrap_model(self.trained, keep_fp32_wrapper=False)  # the same object as model
        self.model.eval()
        if dist.world_size() > 1:
            log.distributed = {**dist.describe(), "replica_checksums": dist.gather(sharding.replica_checksum(self.model))}


def schedule_length(batches_per_epoch: int, grad_accum: int, epochs: int, max_steps: int | None) -> int:
    """Optimiser steps of a run: ceil(batches / grad_accum) per epoch (capped by ``max_steps``)."""
    total = max(1, math.ceil(batches_per_epoch / grad_accum)) * epochs
    return min(total, max_steps) if max_steps is not None else total


@dataclass
class _Loop:
    """The state of one training loop; :meth:`micro_step` handles one batch."""

    acc: Accelerator
    model: torch.nn.Module
    opt: Any
    sched: Any
    loss_fn: LossFn
    params: list
    max_grad_norm: float | None
    desc: str
    after_step: Callable[[], None] | None
    max_steps: int | None
    step: int = 0
    log: TrainLog = field(default_factory=TrainLog)
    t0: float = field(default_factory=time.perf_counter)

    def done(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps

    def micro_step(self, batch, epoch: int, bar) -> bool:
        """Forward/backward one batch; on a sync step also clip, step optimiser and schedule, log.
        Returns True when ``max_steps`` is reached."""
        acc = self.acc
        batch = send_to_device(batch, acc.device)
        with acc.accumulate(self.model):
            loss, terms = self.loss_fn(self.model, batch)
            if not dist.all_true(bool(torch.isfinite(loss))):  # every process stops together
                self.log.stopped = f"non-finite loss ({loss.item()}) at step {self.step}, epoch {epoch}"
                raise NonFiniteLossError(f"{self.desc}: loss became {loss.item()} at step {self.step} (epoch {epoch}); "
                                         "lower the learning rate or add a retain term")
            acc.backward(loss)
            if acc.sync_gradients and self.max_grad_norm:
                acc.clip_grad_norm_(self.params, self.max_grad_norm)
            self.opt.step()
            if acc.sync_gradients:  # the schedule counts optimiser steps, not batches
                self.sched.step()
            self.opt.zero_grad(set_to_none=True)
        if not acc.sync_gradients:
            return False
        if self.after_step is not None:
            self.after_step()
        self.step += 1
        bar.update(1)
        values = dist.reduce_mean([float(loss.detach()), *(float(v) for v in terms.values())])  # means over processes
        rec = {"step": self.step, "epoch": epoch, "loss": values[0], "lr": self.sched.get_last_lr()[0],
               "wall": round(time.perf_counter() - self.t0, 4)}
        rec.update(dict(zip(terms, values[1:])))
        self.log.steps.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}")
        return self.done()
