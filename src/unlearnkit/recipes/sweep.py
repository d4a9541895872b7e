"""``unlearnkit sweep``: hyperparameter study reported after calibration (the seed's second calibration table).

For one method, each knob of docs/methods.md — learning rate (LR), batch size (BS), early stopping
(ES, a cap on optimiser steps), temperature scaling (TS) and loss selection (LS) — is varied
over a grid while the others stay at the base setting ("origin"). Every variant is a normal
entry of a resumable run (``<method>@<KNOB>=<value>``) and is then calibrated by model mixing,
so variants are compared at the same retention. The table shows, per knob, the variant with the
lowest calibrated forget ES-exact, and the full grid is written beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field, field_validator

from unlearnkit.analysis.calibration import CalibrationConfig
from unlearnkit.config import BuildConfig, Seed, StrictModel
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.executor import ExecutorConfig
from unlearnkit.io import content_hash
from unlearnkit.recipes.calibrate import calibrate_run
from unlearnkit.recipes.lm import RunConfig, run_benchmark
from unlearnkit.results.eval import load_eval
from unlearnkit.results.layout import RunName, entry_name
from unlearnkit.results.tables import format_table

KNOBS = {"lr": "LR", "batch_size": "BS", "max_steps": "ES", "temperature": "TS", "loss_selection": "LS"}


class SweepConfig(StrictModel):
    build: BuildConfig = BuildConfig()
    forget: Literal["forget01", "forget05", "forget10"] = "forget10"
    method: str = "kl"
    base: dict[str, Any] = Field(default_factory=lambda: {"lr": 2e-4, "epochs": 5, "batch_size": 8})
    grids: dict[str, list[Any]] = Field(default_factory=lambda: {
        "lr": [1e-4, 4e-4], "batch_size": [4, 16], "max_steps": [10, 15],
        "temperature": [2.0, 4.0], "loss_selection": [0.5, 0.8]})
    seed: Seed = 0
    eval: EvalConfig = EvalConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    name: RunName | None = Field(None, description="run name (default: a hash of this config)")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="how the variants run: local or ray")

    @field_validator("grids")
    @classmethod
    def _known_knobs(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        bad = [k for k in v if k not in KNOBS]
        if bad:
            raise ValueError(f"unknown knob {bad[0]!r}; sweepable knobs: {', '.join(KNOBS)}")
        if any(not vals for vals in v.values()):
            raise ValueError("every knob needs at least one value")
        return v


def variants(cfg: SweepConfig) -> dict[str, dict[str, Any]]:
    """Variant name → hyperparameters; the first is the origin."""
    out = {cfg.method: {}}
    for knob, values in cfg.grids.items():
        for v in values:
            out[f"{cfg.method}@{KNOBS[knob]}={v:g}" if isinstance(v, float) else f"{cfg.method}@{KNOBS[knob]}={v}"] = {knob: v}
    return out


@dataclass
class Sweep:
    run: object  # the language-model run holding every variant (unlearnkit.results.store.Run)
    best: str
    every: str


def run_sweep(cfg: SweepConfig, say: Callable[[str], None] = print) -> Sweep:
    """Every variant as an entry of one resumable run, all calibrated, then the best variant per knob."""
    var = variants(cfg)
    name = cfg.name or f"sweep-{cfg.method}-{content_hash(cfg.model_dump(exclude={'name', 'executor'}))}"
    run_cfg = RunConfig(build=cfg.build, forget=cfg.forget, methods=list(var), defaults=cfg.base,
                        method_params={k: v for k, v in var.items() if v}, seeds=[cfg.seed], eval=cfg.eval, name=name,
                        executor=cfg.executor)
    out = run_benchmark(run_cfg, say=say)
    cal = calibrate_run(out.run, cfg.calibration, say=say)
    cols = [("ES-exact retain ↑", "retain.es_exact"), ("ES-exact unlearn ↓", "forget.es_exact"),
            ("ES-perturb retain ↑", "retain.es_perturb"), ("ES-perturb unlearn ↓", "forget.es_perturb")]

    def row(label: str, variant: str) -> list:
        res = load_eval(cal.run, entry_name(variant, cfg.seed))
        return [label, *[res.value(k) for _, k in cols], cal.alphas[entry_name(variant, cfg.seed)]["alpha"], variant]

    full, best_rows = [], [row("origin", cfg.method)]
    for knob, label in KNOBS.items():
        if knob not in cfg.grids:
            continue
        rows = [row(label, v) for v, p in var.items() if knob in p and v not in out.failures]
        full += rows
        if rows:
            best_rows.append(min(rows, key=lambda r: (r[2], -r[1])))
    headers = ["knob", *(c for c, _ in cols), "α", "variant"]
    best = format_table(headers, best_rows)
    every = format_table(headers, [best_rows[0], *full])
    out.run.write_text("sweep_table.md", f"Best per knob (after calibration)\n\n{best}\n\nAll variants\n\n{every}\n")
    out.run.write_json("sweep.json", {"best": best_rows, "all": [best_rows[0], *full], "failures": out.failures,
                                      "origin_alpha": float(np.mean([cal.alphas[entry_name(cfg.method, cfg.seed)]["alpha"]]))})
    return Sweep(out.run, best, every)
