"""One training loop for fine-tuning and unlearning, on ``accelerate``.

``accelerate`` places the model and batches on the device, turns on bf16 mixed precision where
the hardware has it (a CUDA GPU with bf16 support; plain fp32 on a CPU), and handles gradient
accumulation. The loop takes a ``loss_fn(model, batch) -> (loss, terms)`` so fine-tuning and
every unlearning objective share it; it logs each step's loss terms and wall time, shows a
progress bar, and stops with :class:`NonFiniteLossError` (log kept) when the loss is NaN/inf.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

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
    kw = {"cpu": True} if multi_process_cpu() else {}
    return Accelerator(mixed_precision=mixed_precision(), gradient_accumulation_steps=grad_accum, **kw)


def multi_process_cpu() -> bool:
    """Launched as several processes (``torchrun``) on a machine without a CUDA GPU. accelerate
    then needs ``cpu=True`` to set up DDP over gloo; without it every process trains alone.
    (``accelerate launch --cpu --num_processes 2`` starts a single process on such a machine:
    use ``torchrun --nproc_per_node 2``.)"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


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


@dataclass
class Pass:
    """One pass over ``loader`` minimising ``loss_fn`` (an element of ``train_loop(passes=...)``)."""

    loader: Iterable
    loss_fn: LossFn
    name: str = ""


@dataclass
class LoopState:
    """Where :func:`train_loop` is; a caller that passes ``state=`` sees it updated before every
    ``loss_fn`` call (so a loss can depend on the epoch, the batch index or the step count)."""

    epoch: int = 0
    batch: int = 0  # index of the batch within the current pass
    batches: int = 0  # batches in the current pass (its loader's length)
    step: int = 0  # optimiser steps taken so far
    pass_name: str = ""

    @property
    def progress(self) -> float:
        """Fractional epochs of the current pass: ``epoch + batch / batches``."""
        return self.epoch + self.batch / max(1, self.batches)


def train_loop(
    model: torch.nn.Module,
    loader: Iterable | None,
    loss_fn: LossFn | None,
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
    passes: Callable[[int], Sequence[Pass]] | None = None,
    state: LoopState | None = None,
) -> TrainLog:
    """Minimise ``loss_fn`` over ``loader`` for ``epochs`` epochs; returns the step log.

    ``on_epoch_end(epoch, log)`` may return True to stop early. ``after_step`` runs after each
    optimiser step (e.g. to re-impose a hard constraint on some weights). ``max_steps`` stops
    after that many optimiser steps (early stopping by update count). With ``grad_accum`` > 1 an
    optimiser step (and a learning-rate schedule step) happens every ``grad_accum`` batches.

    Several passes per epoch (e.g. SCRUB's max-pass on D_f, then min-pass on D_un): give
    ``passes(epoch) -> [Pass(loader, loss_fn, name), ...]`` (pure in the epoch) and ``loader =
    loss_fn = None``; step records then carry the pass name. A ``loss_fn`` may return ``(None,
    terms)`` to skip that batch. ``state``, if given, is kept up to date (:class:`LoopState`).
    """
    acc = accelerator or make_accelerator(grad_accum)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    opt = optimizer_factory(params) if optimizer_factory is not None else torch.optim.AdamW(
        params, lr=lr, weight_decay=weight_decay)
    model, opt, plan = _prepare(acc, model, opt, loader, loss_fn, passes)
    total = sum(schedule_length(sum(len(ps.loader) for ps in plan(e)), grad_accum, 1, None) for e in range(epochs))
    total = min(total, max_steps) if max_steps is not None else total
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(schedule, total, int(warmup_ratio * total)))
    loop = _Loop(acc, model, opt, sched, params, max_grad_norm, desc, after_step, max_steps,
                 state=state or LoopState(), named=passes is not None)
    model.train()
    bar = tqdm(total=total, desc=desc, leave=False, disable=None)
    try:
        loop.run(plan, epochs, bar, on_epoch_end)
    finally:
        bar.close()
        loop.log.wall_time = time.perf_counter() - loop.t0
        acc.unwrap_model(model, keep_fp32_wrapper=False)
        model.eval()
    return loop.log


def schedule_length(batches_per_epoch: int, grad_accum: int, epochs: int, max_steps: int | None) -> int:
    """Optimiser steps of a run: ceil(batches / grad_accum) per epoch (capped by ``max_steps``)."""
    total = max(1, math.ceil(batches_per_epoch / grad_accum)) * epochs
    return min(total, max_steps) if max_steps is not None else total


def _prepare(acc: Accelerator, model, opt, loader, loss_fn, passes):
    """``acc.prepare`` the model, optimiser and loader(s); returns them with ``plan(epoch) -> passes``."""
    if passes is None:
        model, opt, loader = acc.prepare(model, opt, loader)
        only = [Pass(loader, loss_fn)]
        return model, opt, lambda epoch: only
    model, opt = acc.prepare(model, opt)
    return model, opt, _prepared_passes(acc, passes)


def _prepared_passes(acc: Accelerator, passes: Callable[[int], Sequence[Pass]]) -> Callable[[int], list[Pass]]:
    """``passes`` with every distinct loader run through ``acc.prepare`` once."""
    prepared: dict[int, tuple[Any, Any]] = {}  # id → (original, prepared); the original kept alive

    def prep(loader: Iterable) -> Any:
        if id(loader) not in prepared:
            prepared[id(loader)] = (loader, acc.prepare(loader))
        return prepared[id(loader)][1]

    return lambda epoch: [Pass(prep(ps.loader), ps.loss_fn, ps.name) for ps in passes(epoch)]


@dataclass
class _Loop:
    """The state of one training loop; :meth:`micro_step` handles one batch."""

    acc: Accelerator
    model: torch.nn.Module
    opt: Any
    sched: Any
    params: list
    max_grad_norm: float | None
    desc: str
    after_step: Callable[[], None] | None
    max_steps: int | None
    state: LoopState = field(default_factory=LoopState)
    named: bool = False  # several passes: step records carry the pass name
    log: TrainLog = field(default_factory=TrainLog)
    t0: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.state.step = 0

    def done(self) -> bool:
        return self.max_steps is not None and self.state.step >= self.max_steps

    def run(self, plan: Callable[[int], list[Pass]], epochs: int, bar, on_epoch_end) -> None:
        for epoch in range(epochs):
            for ps in plan(epoch):
                if self.one_pass(epoch, ps, bar):
                    break
            if self.done():
                self.log.stopped = f"max_steps={self.max_steps} reached (early stopping)"
                break
            if on_epoch_end is not None and on_epoch_end(epoch, self.log):
                self.log.stopped = f"early stop after epoch {epoch}"
                break

    def one_pass(self, epoch: int, ps: Pass, bar) -> bool:
        """Every batch of ``ps``; True when ``max_steps`` is reached."""
        st = self.state
        st.epoch, st.batches, st.pass_name = epoch, len(ps.loader), ps.name
        for i, batch in enumerate(ps.loader):
            st.batch = i
            if self.micro_step(batch, ps, epoch, bar):
                return True
        return False

    def micro_step(self, batch, ps: Pass, epoch: int, bar) -> bool:
        """Forward/backward one batch; on a sync step also clip, step optimiser and schedule, log.
        Returns True when ``max_steps`` is reached. A loss of None skips the batch."""
        acc, step = self.acc, self.state.step
        batch = send_to_device(batch, acc.device)
        with acc.accumulate(self.model):
            loss, terms = ps.loss_fn(self.model, batch)
            if loss is None:  # nothing to learn from this batch
                return False
            if not torch.isfinite(loss):
                self.log.stopped = f"non-finite loss ({loss.item()}) at step {step}, epoch {epoch}"
                raise NonFiniteLossError(f"{self.desc}: loss became {loss.item()} at step {step} (epoch {epoch}); "
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
        self.state.step += 1
        bar.update(1)
        rec = {"step": self.state.step, "epoch": epoch, "loss": float(loss.detach()),
               "lr": self.sched.get_last_lr()[0], "wall": round(time.perf_counter() - self.t0, 4)}
        if self.named:
            rec["pass"] = ps.name
        rec.update({k: float(v) for k, v in terms.items()})
        self.log.steps.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}")
        return self.done()
