"""The run's table (Original, Retrain, each method as the mean over its seeds, failures last; one table or one per
group of ``tables``), written as summary.json + table.md, and the run's curves of evaluation during training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnkit.engine.result import EvalResult
from unlearnkit.recipes.lm.config import RunConfig
from unlearnkit.results.eval import load_eval
from unlearnkit.results.intervals import add_intervals, run_eval_set
from unlearnkit.results.layout import entry_name
from unlearnkit.results.noise import INTERVAL_NOTE
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import Run
from unlearnkit.results.tables import SECONDS, failed_row, lm_columns, render_tables, row, table_spec
from unlearnkit.tasks import get_task


@dataclass
class LMRun:
    """What :func:`~unlearnkit.recipes.lm.run_benchmark` returns: the run, each table row's results, failures, the
    table."""

    run: Run
    results: dict[str, list[EvalResult]]
    seconds: dict[str, float | None]
    failures: dict[str, str]
    table: str


def write_run_table(run: Run, cfg: RunConfig, methods: dict, refs: dict[str, EvalResult]) -> LMRun:
    """Rows Original, Retrain, then each method (mean over seeds), failures last — one table, or one per
    group of ``cfg.tables``; summary.json + table.md."""
    base = [row("Original", ["original"], [SECONDS]), row("Retrain", ["retrain"], [SECONDS])]
    results = {"Original": [refs["original"]], "Retrain": [refs["retrain"]]}
    seconds: dict[str, float | None] = {"Original": None, "Retrain": None}
    values = {"original": refs["original"].aggregates, "retrain": refs["retrain"].aggregates}
    evals = dict(refs)
    rows, failures = {}, {}
    for method in methods:
        names = [entry_name(method, s) for s in cfg.seeds]
        done = [n for n in names if run.record(n) is not None]
        if done:
            rows[method] = row(method, done)
            results[method] = [load_eval(run, n) for n in done]
            evals.update(zip(done, results[method]))
            values.update({n: run.record(n).aggregates for n in done})
            seconds[method] = float(np.mean([values[n][SECONDS]["value"] for n in done]))
        else:
            failures[method] = next((f["error"] for n in names if (f := run.failure(n))), "not finished")
            rows[method] = failed_row(method, failures[method])
    groups = cfg.tables or {None: list(methods)}
    task = get_task(cfg.task)
    specs = [table_spec(lm_columns(task.columns, ci=cfg.intervals), base + [rows[m] for m in ms if m not in failures]
                        + [rows[m] for m in ms if m in failures], title=title,
                        notes=[*task.notes, *([INTERVAL_NOTE] if cfg.intervals else [])])
             for title, ms in groups.items()]
    if cfg.intervals:
        add_intervals(run, specs, task, evals, "retrain", run_eval_set(run, "retrain"))
    table = render_tables(specs, values)
    run.write_summary(specs, table, failures=failures, provenance=provenance(cfg.model_dump()))
    return LMRun(run, results, seconds, failures, table)


def write_eval_curves(run: Run) -> None:
    """``eval_curves.json``: every entry's curve of evaluation during training (from its results)."""
    curves = {n: rec.extra["eval_curve"] for n in run.layout.entries()
              if (rec := run.record(n)) is not None and "eval_curve" in rec.extra}
    if curves:
        run.write_json("eval_curves.json", curves)
