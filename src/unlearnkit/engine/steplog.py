"""Where a training loop's per-step records go besides its :class:`~unlearnkit.engine.train.TrainLog`.

A **sink** receives every optimiser step's record (``{"step", "epoch", "loss", "lr", "wall", <loss
terms>…}``) through ``log_step(record)`` and any other per-step numbers through ``log(values, step)``.
Sinks are active for a block of code (``with step_sinks(sink): …``), so an experiment tracker can
observe every training loop started inside — an unlearning run, each stage of a continual run, a
vision method — without an argument threaded through the method drivers.

Hook for evaluation during training: code that evaluates the model mid-run (e.g. every n steps)
calls :func:`log_metrics` with names like ``eval/forget.es_exact``; every active sink logs them at
that step (``step=None``: the sink's current step). With no sink active nothing is called, so a
training loop behaves exactly as without this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol

StepRecord = dict
LogStep = Callable[[StepRecord], None]


class StepSink(Protocol):
    def log_step(self, record: StepRecord) -> None: ...

    def log(self, values: dict[str, float], step: int | None = None) -> None: ...


_SINKS: ContextVar[tuple[StepSink, ...]] = ContextVar("unlearnkit_step_sinks", default=())


@contextlib.contextmanager
def step_sinks(*sinks: StepSink) -> Iterator[None]:
    """Make ``sinks`` receive the records of every training loop run inside the block."""
    token = _SINKS.set((*_SINKS.get(), *sinks))
    try:
        yield
    finally:
        _SINKS.reset(token)


def active_sinks() -> tuple[StepSink, ...]:
    return _SINKS.get()


def step_logger(explicit: LogStep | None = None) -> LogStep | None:
    """One callable for a training loop: the loop's own ``log_step`` and every active sink; None when
    there is nothing to call (the loop then does no extra work at all)."""
    calls = [s.log_step for s in _SINKS.get()] + ([explicit] if explicit is not None else [])
    if not calls:
        return None
    if len(calls) == 1:
        return calls[0]

    def log_step(record: StepRecord) -> None:
        for f in calls:
            f(record)

    return log_step


def log_metrics(values: dict[str, float], step: int | None = None) -> None:
    """Send per-step numbers that are not loss terms (evaluation during training) to every active sink."""
    for s in _SINKS.get():
        s.log(values, step)
