"""Experiment-tracker sessions of a run's entries: logs in the run directory (``trackers/``)."""

from __future__ import annotations

import contextlib
from typing import Any

from unlearnkit.engine.trackers import Tracker, check_tracker
from unlearnkit.results.store import Run

__all__ = ["check_tracker", "tracking"]


def tracking(kind: str | None, run: Run, entry: str, config: dict[str, Any] | None = None):
    """``with tracking(cfg.tracker, run, entry, params):`` logs every training step of the block to the
    tracker (TensorBoard, W&B offline, MLflow file store) under ``<run>/trackers/``; with ``kind=None``
    it does nothing."""
    if kind is None:
        return contextlib.nullcontext()
    return Tracker(kind, run.layout.trackers, run.name, entry, config)
