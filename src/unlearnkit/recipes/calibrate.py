"""``unlearnkit calibrate --run RUN`` and ``unlearnkit run calibrate=true``: compare the methods of a
finished language-model run at equal retention (model mixing, :mod:`unlearnkit.analysis.calibration`).

For every finished (method, seed) entry with a saved θ_u: search the largest α whose retain metric
keeps τ·metric(θ_o), evaluate θ(α) and write it as an entry of the run's calibration setting
(``calibration/<metric>-tau<τ>/``, a nested run in the index); each entry is resumable and its hash
covers the unlearned entry's hash and the calibration config. Then the uncalibrated and calibrated
tables, the α-curves (JSON + PNG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unlearnkit.analysis.calibration import CalibrationConfig, calibrate_model
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.models.lm import is_saved_model, load_model, pick_device, resolve_dtype
from unlearnkit.recipes.lm import LMBench, RunConfig, prepare_benchmark
from unlearnkit.results.eval import load_eval, write_eval
from unlearnkit.results.layout import entry_name
from unlearnkit.results.plots import plot_alpha_curves
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run
from unlearnkit.results.tables import column, lm_columns, render_tables, row, table_spec
from unlearnkit.tasks import get_task

Say = Callable[[str], None]


@dataclass
class Calibration:
    run: Run  # the calibration setting (nested run)
    alphas: dict[str, dict]
    table_uncalibrated: str
    table: str


@dataclass
class _Calibrating:
    """What every entry's calibration shares: the finished run and its calibration setting, the configs, θ_o and
    its tokenizer, the prepared benchmark, the retain target τ·metric(θ_o), the reference results."""

    parent: Run
    child: Run
    cfg: CalibrationConfig
    run_cfg: RunConfig
    model: Any
    tok: Any
    bench: LMBench
    target: float
    refs: dict
    say: Say


def calibrate_run(parent: Run, cfg: CalibrationConfig, say: Say = print) -> Calibration:
    """Calibrate every finished method entry of ``parent``."""
    if parent.kind != "lm" or parent.record("original") is None or parent.record("retrain") is None:
        raise UnlearnkitError(f"{parent.name!r} is not a finished `unlearnkit run` (language-model) run: run the "
                              "benchmark first, then calibrate it")
    run_cfg = RunConfig.model_validate(parent.config())
    bench = prepare_benchmark(run_cfg, say=lambda s: None)
    if cfg.metric not in bench.task.calibration_metrics:
        raise UnlearnkitError(f"calibration metric {cfg.metric!r} is not one of task {bench.task.name}'s: use one of "
                              f"{', '.join(bench.task.calibration_metrics)}")
    child = parent.child("calibration", f"{cfg.metric}-tau{cfg.tau:g}", cfg.model_dump())
    inputs = parent.inputs()
    refs = {"original": load_eval(parent, "original"), "retrain": load_eval(parent, "retrain")}
    for name in ("original", "retrain"):  # the reference rows, so the calibrated run stands on its own
        info = EntryInfo(name=name, hash=parent.record(name).entry.get("hash", ""), method=name)
        if child.status(info) != "done":
            write_eval(child, info, refs[name], parent.record(name).provenance)
    target = cfg.tau * refs["original"].value(cfg.metric)
    model, tok = load_model(inputs["original"], device=pick_device(), dtype=resolve_dtype(run_cfg.dtype, inputs["original"]),
                            prompt=run_cfg.prompt)
    ctx = _Calibrating(parent, child, cfg, run_cfg, model, tok, bench, target, refs, say)
    alphas, curves = {}, {}
    for method in run_cfg.methods:
        for seed in run_cfg.seeds:
            entry = entry_name(method, seed)
            if parent.record(entry) is None:
                continue
            info = _calibrate_entry(ctx, entry)
            rec = child.record(info.name)
            alphas[entry] = {k: rec.extra["calibration"][k] for k in ("alpha", "value", "target", "monotone", "note")}
            curves[entry] = _curve(rec.extra["calibration"])
    return _write_outputs(ctx, alphas, curves)


def _calibrate_entry(ctx: _Calibrating, entry: str) -> EntryInfo:
    parent, child, cfg, bench, target, say = ctx.parent, ctx.child, ctx.cfg, ctx.bench, ctx.target, ctx.say
    unlearned = parent.record(entry)
    inputs = {"entry_hash": unlearned.entry.get("hash"), "calibration": cfg.model_dump()}
    info = EntryInfo(name=entry, hash=content_hash(inputs), method=unlearned.entry.get("method"),
                     seed=unlearned.entry.get("seed"), params_hash=unlearned.entry.get("params_hash"), inputs=inputs)
    with child.lock(entry):
        if child.status(info) == "done":
            say(f"{entry}: calibrated earlier (α = {child.record(entry).value('alpha'):.4f})")
            return info
        model_dir = parent.layout.model(entry)
        if not is_saved_model(model_dir):
            raise UnlearnkitError(f"run entry {entry} has no saved θ_u (save_models=false): rerun with save_models=true")
        c = calibrate_model(ctx.model, ctx.tok, bench.task, bench.prepared, bench.options, parent.inputs()["original"],
                            model_dir, cfg, ctx.run_cfg.eval, target, ctx.refs["retrain"])
        found = c.search
        meta = {"alpha": found.alpha, "target": found.target, "value": found.value, "monotone": found.monotone,
                "note": found.note, "metric": cfg.metric, "tau": cfg.tau, "curve": [list(x) for x in found.curve],
                "grid": cfg.grid, "grid_forget_es_exact": c.grid_forget, "grid_forget_metric": bench.task.calibration_forget}
        write_eval(child, info, c.result, provenance(cfg.model_dump(), seed=info.seed, alpha=found.alpha,
                                                     run=parent.name),
                   extra={"calibration": meta}, metrics={"alpha": Metric(found.alpha, None, None)})
        warn = "" if found.monotone else "  (warning: not monotone — " + found.note + ")"
        say(f"{entry}: α = {found.alpha:.4f}, {cfg.metric} = {found.value:.4f} ≥ {target:.4f}{warn}")
    return info


def _curve(meta: dict) -> dict:
    return {"alpha": [a for a, _ in meta["curve"]], "retain": [v for _, v in meta["curve"]],
            "grid_alpha": meta["grid"], "forget_es_exact": meta["grid_forget_es_exact"],
            "chosen_alpha": meta["alpha"], "target": meta["target"]}


def _write_outputs(ctx: _Calibrating, alphas: dict, curves: dict) -> Calibration:
    parent, child, cfg, run_cfg = ctx.parent, ctx.child, ctx.cfg, ctx.run_cfg
    rows = [row("Original", ["original"]), row("Retrain", ["retrain"])]
    for method in run_cfg.methods:
        done = [e for s in run_cfg.seeds if (e := entry_name(method, s)) in alphas]
        if done:
            rows.append(row(method, done))
    values = {r: child.record(r).aggregates for r in ["original", "retrain", *alphas]}
    parent_values = {r: parent.record(r).aggregates for r in ["original", "retrain", *alphas]}
    columns = get_task(run_cfg.task).columns
    spec_u = table_spec(lm_columns(columns), rows)
    spec_c = table_spec(lm_columns(columns, seconds=False, extra=[column("α", "alpha")]), rows)
    table_u, table_c = render_tables([spec_u], parent_values), render_tables([spec_c], values)
    child.write_summary([spec_c], f"Uncalibrated\n\n{table_u}\n\nCalibrated ({cfg.metric} ≥ {cfg.tau:g} · θ_o)\n\n"
                                  f"{table_c}", alphas=alphas)
    child.write_json("alphas.json", alphas)
    child.write_json("curves.json", curves)
    plot_alpha_curves(curves, cfg.metric, child.layout.file("curves.png"))
    return Calibration(child, alphas, table_u, table_c)
