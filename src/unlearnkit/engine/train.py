"""One training loop for fine-tuning and unlearning, on ``accelerate``.

``accelerate`` places the model and batches on the device, turns on bf16 mixed precision where
the hardware has it (a CUDA GPU with bf16 support; plain fp32 on a CPU), and handles gradient
accumulation. The loop takes a ``loss_fn(model, batch) -> (loss, terms)`` so fine-tuning and
every unlearning objective share it; it logs each step's loss terms and wall time, shows a
progress bar, and stops with :class:`NonFiniteLossError` (log kept) when the loss is NaN/inf.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, get_args

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from tqdm.auto import tqdm

from unlearnkit.config import Precision
from unlearnkit.engine import distributed as dist
from unlearnkit.engine import sharding
from unlearnkit.engine.steplog import LogStep, step_logger
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
                       cpu=accelerator_on_cpu())


def accelerator_on_cpu() -> bool:
    """``cpu=`` for every Accelerator of a process (the training loops' and the trackers' must agree: accelerate's
    state is shared). On a machine without a CUDA GPU, a launched multi-process run needs ``cpu=True`` for DDP
    over gloo (``accelerate launch --cpu --num_processes 2`` starts one process there: use ``torchrun``)."""
    return not torch.cuda.is_available()


PRECISIONS = get_args(Precision)


def cpu_autocast(acc: Accelerator, precision: str) -> Callable[[], Any]:
    """The context each loss is computed under. ``auto``: bf16 mixed precision on a GPU that has it (accelerate's),
    float32 on a CPU; ``bf16``: bf16 autocast on a CPU too — weights, gradients and optimiser state stay float32;
    about 1.7× faster on CPUs with native bf16 (AVX512-BF16, AMX; docs/scale.md)."""
    if precision not in PRECISIONS:
        raise UnlearnkitError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and acc.device.type == "cpu":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


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
    log_step: LogStep | None = None,
    precision: str = "auto",
) -> TrainLog:
    """Minimise ``loss_fn`` over ``loader`` for ``epochs`` epochs; returns the step log.

    ``on_epoch_end(epoch, log)`` may return True to stop early. ``after_step`` runs after each optimiser step (e.g.
    to re-impose a hard constraint on some weights). ``max_steps`` stops after that many optimiser steps (early
    stopping by update count). With ``grad_accum`` > 1 an optimiser step (and a schedule step) happens every
    ``grad_accum`` batches. ``precision``: see :func:`cpu_autocast`.

    Several passes per epoch (e.g. SCRUB's max-pass on D_f, then min-pass on D_un): give ``passes(epoch) ->
    [Pass(loader, loss_fn, name), ...]`` (pure in the epoch) and ``loader = loss_fn = None``; step records then carry
    the pass name. A ``loss_fn`` may return ``(None, terms)`` to skip that batch. ``state``, if given, is kept up to
    date (:class:`LoopState`). ``log_step(record)`` (and every sink of :mod:`unlearnkit.engine.steplog` active around
    the call, e.g. an experiment tracker) receives each optimiser step's record as it is logged.

    Several processes (:mod:`unlearnkit.engine.distributed`): the loader's batches are shared out by accelerate; DDP
    trains ``model`` itself, FSDP2 / ZeRO-3 train a sharded shadow of it (:mod:`unlearnkit.engine.sharding`) whose
    weights are written back into ``model`` before each ``on_epoch_end`` and at the end (``model`` holds θ on every
    process on return); logged terms are means."""
    acc = accelerator or make_accelerator(grad_accum)
    run = _Prepared.make(acc, model, loader, dist.strategy(), lr, weight_decay, params, optimizer_factory, after_step,
                         fused=precision == "bf16" or _float64(model))
    plan = _plan(acc, run.loader, loss_fn, passes)
    total = sum(schedule_length(sum(len(ps.loader) for ps in plan(e)), grad_accum, 1, None) for e in range(epochs))
    total = min(total, max_steps) if max_steps is not None else total
    sched = torch.optim.lr_scheduler.LambdaLR(run.opt, _schedule(schedule, total, int(warmup_ratio * total)))
    loop = _Loop(acc, run.trained, run.opt, sched, run.params, max_grad_norm, desc, after_step, max_steps,
                 state=state or LoopState(), named=passes is not None, sync=run.sync, log_step=step_logger(log_step),
                 autocast=cpu_autocast(acc, precision))
    run.trained.train()
    bar = tqdm(total=total, desc=desc, leave=False, disable=None if dist.is_main() else True)
    try:
        loop.run(plan, epochs, bar, on_epoch_end)
    finally:
        bar.close()
        loop.log.wall_time = time.perf_counter() - loop.t0
        run.finish(loop.log)
    return loop.log


def _float64(model: torch.nn.Module) -> bool:
    return any(p.dtype == torch.float64 for p in model.parameters())


def _fused_ok(params: list, strategy: str) -> bool:
    """AdamW's fused kernel (one pass over the weights: ~4× faster than the per-tensor loop on a CPU, a tenth of a
    135 M-parameter step there) is used on the ``precision="bf16"`` path and for float64 models, for plain float
    tensors on a CPU or GPU; sharded shadows and the float32 default path keep the per-tensor loop (so float32 models
    built before keep their numbers)."""
    return strategy not in ("fsdp", "deepspeed") and bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def schedule_length(batches_per_epoch: int, grad_accum: int, epochs: int, max_steps: int | None) -> int:
    """Optimiser steps of a run: ceil(batches / grad_accum) per epoch (capped by ``max_steps``)."""
    total = max(1, math.ceil(batches_per_epoch / grad_accum)) * epochs
    return min(total, max_steps) if max_steps is not None else total


def _plan(acc: Accelerator, loader, loss_fn, passes) -> Callable[[int], list[Pass]]:
    """``plan(epoch) -> passes``: the one (prepared) loader, or ``passes`` with their loaders prepared."""
    if passes is None:
        only = [Pass(loader, loss_fn)]
        return lambda epoch: only
    return _prepared_passes(acc, passes)


def _prepared_passes(acc: Accelerator, passes: Callable[[int], Sequence[Pass]]) -> Callable[[int], list[Pass]]:
    """``passes`` with every distinct loader run through ``acc.prepare`` once."""
    prepared: dict[int, tuple[Any, Any]] = {}  # id → (original, prepared); the original kept alive

    def prep(loader: Iterable) -> Any:
        if id(loader) not in prepared:
            prepared[id(loader)] = (loader, acc.prepare(loader))
        return prepared[id(loader)][1]

    return lambda epoch: [Pass(prep(ps.loader), ps.loss_fn, ps.name) for ps in passes(epoch)]


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
    def make(cls, acc, model, loader, strategy, lr, weight_decay, params, optimizer_factory, after_step,
             fused: bool = False) -> _Prepared:
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
            chosen, lr=lr, weight_decay=weight_decay, fused=True if fused and _fused_ok(chosen, strategy) else None)
        if strategy == "fsdp":
            loader = acc.prepare(loader) if loader is not None else None
        elif loader is None:  # several passes: their loaders are prepared by _plan
            trained, opt = acc.prepare(trained, opt)
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
    log_step: LogStep | None = None
    sync: Callable[[], None] | None = None  # make the caller's model hold the current weights (sharded strategies)
    autocast: Callable[[], Any] = contextlib.nullcontext  # bf16 autocast on a CPU (precision="bf16")

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
            if self.sync is not None:
                self.sync()
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
            with self.autocast():
                loss, terms = ps.loss_fn(self.model, batch)
            if loss is None:  # nothing to learn from this batch
                return False
            if not dist.all_true(bool(torch.isfinite(loss))):  # every process stops together
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
        values = dist.reduce_mean([float(loss.detach()), *(float(v) for v in terms.values())])  # means over processes
        rec = {"step": self.state.step, "epoch": epoch, "loss": values[0], "lr": self.sched.get_last_lr()[0],
               "wall": round(time.perf_counter() - self.t0, 4)}
        if self.named:
            rec["pass"] = ps.name
        rec.update(dict(zip(terms, values[1:])))
        self.log.steps.append(rec)
        if self.log_step is not None:
            self.log_step(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}")
        return self.done()
