"""Evaluation during training: probe named metrics of the run's task every k steps (or epochs) of an
unlearning run, keep the curve, and select the best checkpoint by a named criterion.

``unlearnkit run eval_every.every=5 eval_every.metrics=[forget.es_exact,retain.es_exact]`` probes the
task's cheap metrics (``unlearnkit ls tasks``; ``Task.probes``) on the weights being trained, through
``unlearn(..., on_step=, on_epoch=)``:

- **when**: ``unit=steps``: before the first update (step 0 = θ_o), every ``every`` optimiser steps and
  after the last; ``unit=epochs``: step 0 and after every ``every``-th epoch;
- **bit-identical training**: a probe runs under ``torch.no_grad`` with the model in eval mode and the
  torch (CPU and CUDA), numpy and Python RNG states saved and restored; it never touches gradients or
  the optimiser. A run with probes trains exactly the weights of a run without them (tested);
- **selection** (``select``): the probe point with the lowest (``mode=min``, the default for a
  lower-is-better metric) or highest ``metric`` among those whose ``keep`` metric is at least
  τ·(its value at step 0, i.e. θ_o's) — e.g. forget ES at retain ES ≥ 0.9·θ_o's; ties go to the
  earliest step. With ``use=true`` θ_u is that checkpoint (its weights are kept in CPU memory when
  found); else the final model stays θ_u and the selection is only reported;
- **where it goes**: the curve after every probe to ``logs/<entry>__eval_curve.json`` (so a killed run
  shows how far it got), and with the entry's training log and results (``extra.eval_curve``); the
  run gets ``eval_curves.json``. A finished entry is not recomputed, and a saved θ_u is reused with its
  curve; a run killed mid-training restarts that entry's training (optimiser state is not saved);
- **several processes**: probes run on the main process only (``is_main``, default accelerate's
  ``PartialState().is_main_process``); other ranks skip them and receive the selection through
  ``broadcast`` (default: identity, for one process) — the hook for multi-process training;
- **trackers**: ``on_metrics(step, values)`` is called after every probe (``run_benchmark(on_metrics=…)``
  passes ``(entry, step, values)``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError


class SelectConfig(StrictModel):
    """Best-checkpoint selection: optimise ``metric`` subject to ``keep`` ≥ τ · (``keep`` at step 0)."""

    metric: str = Field(description="the probe to optimise, e.g. forget.es_exact")
    mode: Literal["min", "max"] | None = Field(None, description="min or max (default: min for a lower-is-better "
                                               "probe, max otherwise)")
    keep: str | None = Field(None, description="a probe that must stay ≥ τ · its value at step 0 (θ_o), e.g. "
                             "retain.es_exact; None = no constraint")
    tau: float = Field(0.9, gt=0, le=1, description="τ of the keep constraint")
    use: bool = Field(True, description="θ_u := the selected checkpoint (false: report the selection only)")


class EvalEveryConfig(StrictModel):
    """Probe named metrics of the run's task along each unlearning run."""

    every: int = Field(ge=1, description="probe every this many steps (or epochs)")
    unit: Literal["steps", "epochs"] = "steps"
    metrics: list[str] = Field(min_length=1, description="probe names of the task (`unlearnkit ls tasks`; "
                               "TOFU: forget.es_exact, retain.es_exact, …)")
    select: SelectConfig | None = None

    def names(self) -> list[str]:
        extra = [n for n in (self.select.metric, self.select.keep) if n] if self.select else []
        return list(dict.fromkeys([*self.metrics, *extra]))


def check_eval_every(cfg: EvalEveryConfig, task) -> EvalEveryConfig:
    task.check_probes(cfg.names())
    return cfg


class _Frozen:
    """Model in eval mode, no gradients, every RNG state restored on exit."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.mode = self.model.training
        self.py, self.np = random.getstate(), np.random.get_state()
        self.cpu = torch.random.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self.grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        self.model.eval()
        return self

    def __exit__(self, *exc) -> None:
        self.model.train(self.mode)
        torch.set_grad_enabled(self.grad)
        random.setstate(self.py)
        np.random.set_state(self.np)
        torch.random.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _main_process() -> bool:
    try:
        from accelerate import PartialState

        return PartialState().is_main_process
    except Exception:  # pragma: no cover - accelerate not initialised
        return True


class TrainingEvaluator:
    """The ``on_step`` / ``on_epoch`` hooks of :func:`unlearnkit.methods.unlearn.unlearn` that probe and select."""

    def __init__(self, task, data, options, eval_cfg, cfg: EvalEveryConfig, tokenizer,
                 on_metrics: Callable[[int, dict], None] | None = None, write: Callable[[dict], None] | None = None,
                 is_main: Callable[[], bool] = _main_process, broadcast: Callable[[Any], Any] = lambda x: x) -> None:
        self.task, self.data, self.options, self.eval_cfg, self.cfg = task, data, options, eval_cfg, cfg
        self.tokenizer, self.on_metrics, self.write = tokenizer, on_metrics, write
        self.is_main, self.broadcast = is_main, broadcast
        self.curve: list[dict] = []
        self.best: dict | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.step, self.epoch = 0, -1

    # -- hooks ------------------------------------------------------------------------------------
    def on_step(self, step: int, ctx, final: bool) -> None:
        self.step = step
        due = step == 0 or (self.cfg.unit == "steps" and (step % self.cfg.every == 0 or final))
        if due and not (self.curve and self.curve[-1]["step"] == step):
            self.probe(ctx.model, step)

    def on_epoch(self, epoch: int, model) -> None:
        self.epoch = epoch
        if self.cfg.unit == "epochs" and (epoch + 1) % self.cfg.every == 0:
            self.probe(model, self.step)

    # -- probing and selection --------------------------------------------------------------------
    def probe(self, model, step: int) -> None:
        if not self.is_main():
            return
        with _Frozen(model):
            values = self.task.probe(model, self.tokenizer, self.data, self.cfg.names(), self.eval_cfg, self.options)
        point = {"step": step, "epoch": self.epoch + 1 if self.cfg.unit == "epochs" else None, **values}
        self.curve.append(point)
        if self.cfg.select is not None and self._better(point):
            self.best = point
            if self.cfg.select.use:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if self.on_metrics is not None:
            self.on_metrics(step, values)
        if self.write is not None:
            self.write(self.to_json())

    def _eligible(self, point: dict) -> bool:
        s = self.cfg.select
        if s.keep is None:
            return True
        base = self.curve[0][s.keep]
        return point[s.keep] >= s.tau * base if base >= 0 else point[s.keep] >= base / s.tau

    def _better(self, point: dict) -> bool:
        s = self.cfg.select
        if not self._eligible(point):
            return False
        if self.best is None:
            return True
        mode = s.mode or ("max" if self._higher_is_better(s.metric) else "min")
        return point[s.metric] > self.best[s.metric] if mode == "max" else point[s.metric] < self.best[s.metric]

    def _higher_is_better(self, name: str) -> bool:
        return bool(next(p.higher_is_better for p in self.task.probes if p.name == name))

    def finish(self, model) -> dict:
        """After training: θ_u := the selected checkpoint (``select.use``); returns the curve document."""
        self.best = self.broadcast(self.best)
        if self.cfg.select is not None and self.cfg.select.use:
            if self.best is None:
                raise UnlearnkitError("eval_every.select found no checkpoint meeting its keep constraint (not even "
                                      "step 0): lower select.tau")
            if self.best_state is not None:
                model.load_state_dict(self.broadcast(self.best_state))
        return self.to_json()

    def to_json(self) -> dict:
        s = self.cfg.select
        return {"config": self.cfg.model_dump(), "curve": copy.deepcopy(self.curve), "selected": self.best,
                "criterion": None if s is None else (
                    f"{s.mode or ('max' if self._higher_is_better(s.metric) else 'min')} {s.metric}"
                    + (f" with {s.keep} ≥ {s.tau:g}·(step 0)" if s.keep else ""))}
