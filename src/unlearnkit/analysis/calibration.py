"""Calibration by model mixing (seed: "Towards Effective Evaluations and Comparisons").

θ(α) = (1−α)·θ_o + α·θ_u over every floating-point parameter and buffer. Methods trade
unlearning against retention differently, so a raw table compares apples with oranges; instead
find, per method, the largest α ∈ [0, 1] whose retain metric (ES-exact by default) keeps
τ·metric(θ_o), and compare the methods' forget metrics at that α. α = 1 is "no calibration".

The mixing itself is :class:`unlearnkit.models.mixing.Mixer` (one working model, weights read
tensor by tensor); :func:`calibrate_model` searches α for one θ_u and evaluates θ(α); the
``unlearnkit calibrate`` recipe (:mod:`unlearnkit.recipes.calibrate`) does it for every entry of a run.
The report's sections (:mod:`unlearnkit.results.sections`) of the α-curves and of the sweep after
calibration are at the end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError
from unlearnkit.results import figures as F
from unlearnkit.results.html import Figure
from unlearnkit.results.plots import alpha_curves_figure
from unlearnkit.results.sections import RunData, report_section, svg_figure
from unlearnkit.results.tradeoff import calibrations


def retain_metrics() -> list[str]:
    """The retain metrics some task lets calibration hold (each task declares its own: ``calibration_metrics``)."""
    from unlearnkit.tasks import all_tasks

    return list(dict.fromkeys(m for t in all_tasks() for m in t.calibration_metrics))


class CalibrationConfig(StrictModel):
    tau: float = Field(0.9, gt=0, le=1, description="keep τ · retain metric of θ_o")
    metric: str = Field("retain.es_exact", description="retain metric to hold: one the run's task declares "
                        "(TOFU: retain.es_exact, retain.es_perturb, retain.em, retain.prob, mu)")
    tol: float = Field(1e-3, gt=0, lt=0.5, description="bisection tolerance on α")
    grid: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
                              description="coarse α grid: sanity check of monotonicity, and the α-curve")

    def model_post_init(self, _ctx) -> None:
        known = retain_metrics()
        if self.metric not in known:
            raise UnlearnkitError(f"calibration metric {self.metric!r} is not supported: use one of {', '.join(known)}")
        if any(not 0 <= a <= 1 for a in self.grid) or sorted(self.grid) != self.grid or len(self.grid) < 2:
            raise UnlearnkitError("calibration grid must be ≥ 2 increasing values in [0, 1], e.g. [0, 0.5, 1]")


# ---------------------------------------------------------------------------------------------
# The α search


@dataclass
class AlphaSearch:
    alpha: float
    target: float
    value: float  # metric at alpha
    curve: list[tuple[float, float]] = field(default_factory=list)  # every (α, metric) evaluated, sorted
    monotone: bool = True
    note: str = ""


def search_alpha(f: Callable[[float], float], target: float, grid: list[float] | None = None, tol: float = 1e-3) -> AlphaSearch:
    """Largest α ∈ [0, 1] with f(α) ≥ target, assuming f decreases in α (bisection, to ``tol``).

    A coarse grid is evaluated first: it brackets the crossing and warns when the curve is not
    monotone (then the bisection result is the crossing inside the first bracket that fails).
    """
    grid = grid or [0.0, 0.25, 0.5, 0.75, 1.0]
    seen: dict[float, float] = {}

    def g(a: float) -> float:
        if a not in seen:
            seen[a] = float(f(a))
        return seen[a]

    vals = [g(a) for a in grid]
    monotone = all(v2 <= v1 + 1e-9 for v1, v2 in zip(vals, vals[1:]))
    note = ""
    if not monotone:
        note = "retain metric is not monotone in α on the grid " + ", ".join(f"{a:g}:{v:.4f}" for a, v in zip(grid, vals))
        warnings.warn(note, stacklevel=2)
    if g(1.0) >= target:
        return AlphaSearch(1.0, target, g(1.0), sorted(seen.items()), monotone, note or "no calibration needed (α = 1)")
    if g(0.0) < target:
        return AlphaSearch(0.0, target, g(0.0), sorted(seen.items()), monotone, "even θ_o misses the target")
    lo = 0.0
    for a, v in zip(grid, vals):
        if v >= target:
            lo = a
        else:
            hi = a
            break
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if g(mid) >= target:
            lo = mid
        else:
            hi = mid
    return AlphaSearch(lo, target, g(lo), sorted(seen.items()), monotone, note)


# ---------------------------------------------------------------------------------------------
# Calibrating a finished run


@dataclass
class Calibrated:
    search: AlphaSearch
    grid_forget: list[float]  # the task's forget metric of θ(α) on the coarse grid (the α-curve's second panel)
    result: object  # EvalResult of θ(α*), compared to θ_r


def calibrate_model(model, tokenizer, task, data, options, theta_o, theta_u, cfg: CalibrationConfig, eval_cfg,
                    target: float, reference_result) -> Calibrated:
    """Largest α with the task's retain metric ≥ target, the forget α-curve, and the full evaluation of θ(α).

    ``model`` is the working model (θ_o's architecture); it holds θ_o again when this returns. Every number
    comes from the task (``task.probe``, ``task.evaluate``, ``task.compare``).
    """
    from unlearnkit.models.mixing import Mixer

    if cfg.metric not in task.calibration_metrics:
        raise UnlearnkitError(f"calibration metric {cfg.metric!r} is not one of task {task.name}'s: use one of "
                              f"{', '.join(task.calibration_metrics)}")
    mixer = Mixer(model, theta_o, theta_u)
    try:
        def probe(a: float) -> float:
            mixer.set(a)
            return task.probe(model, tokenizer, data, [cfg.metric], eval_cfg, options)[cfg.metric]

        found = search_alpha(probe, target, cfg.grid, cfg.tol)
        grid_forget = []
        for a in cfg.grid:
            mixer.set(a)
            grid_forget.append(task.probe(model, tokenizer, data, [task.calibration_forget], eval_cfg,
                                          options)[task.calibration_forget])
        mixer.set(found.alpha)
        res = task.compare(task.evaluate(model, tokenizer, data, eval_cfg.model_copy(update={"cache": False}), options),
                           reference_result)
    finally:
        mixer.set(0.0)  # the working model is θ_o again
        mixer.close()
    return Calibrated(found, grid_forget, res)


# ---------------------------------------------------------------------------------------------
# The report's sections: α-curves (calibration/*/curves.json) and the sweep after calibration (sweep.json)


@report_section("alpha_curves", order=200, reads=("calibration/*/curves.json",))
def alpha_curves(rd: RunData) -> list[Figure]:
    out = []
    for c in calibrations(rd):
        curves = c.file("curves.json")
        if curves:
            metric = (c.run.config() if c.run.layout.config.is_file() else {}).get("metric", "retain metric")
            out.append(svg_figure(alpha_curves_figure(curves, metric), "α-curves of the calibration",
                                  f"Left: {metric} of θ(α) as α goes from θ_o (0) to θ_u (1), with the target τ·θ_o "
                                  "(dashed) and each method's chosen α (dotted): the largest α that keeps the target. "
                                  "Right: forget ES-exact along the same mix (lower is better ↓)."))
    return out


@report_section("sweep", order=500, reads=("sweep.json",))
def sweep(rd: RunData) -> list[Figure]:
    doc = rd.file("sweep.json")
    if not doc or len(doc.get("all") or []) < 2:
        return []
    return [svg_figure(F.sweep_figure(doc), "Hyperparameter sweep after calibration",
                       "One panel per knob (LR, BS, early stopping ES, temperature TS, loss selection LS): each "
                       "variant's forget ES-exact after calibration to equal retention (lower is better ↓), its α on "
                       "top; dashed: the base setting.")]
