""":func:`run_benchmark`: the whole language-model run — benchmark, references, every (method, seed) entry (one
after another or as Ray tasks), the table, and the curves of evaluation during training or of continual stages."""

from __future__ import annotations

import functools
from collections.abc import Callable

from unlearnkit.engine.executor import check as check_executor
from unlearnkit.engine.executor import run_entries
from unlearnkit.recipes.lm.bench import evaluate_references, prepare_benchmark
from unlearnkit.recipes.lm.config import RunConfig, run_name, validate_methods
from unlearnkit.recipes.lm.context import RunContext, Say
from unlearnkit.recipes.lm.entries import run_method_entry
from unlearnkit.recipes.lm.table import LMRun, write_eval_curves, write_run_table
from unlearnkit.results.layout import entry_name
from unlearnkit.results.store import Run
from unlearnkit.results.tracking import check_tracker


def run_benchmark(cfg: RunConfig, say: Say = print, retry_failed: bool = False,
                  after_entry: Callable[[str], None] | None = None,
                  on_metrics: Callable[[str, int, dict], None] | None = None) -> LMRun:
    """Run (or resume) the language-model benchmark. ``on_metrics(entry, step, values)`` receives every probe of
    evaluation during training (``eval_every``), e.g. for a tracker."""
    check_executor(cfg.executor)
    methods = validate_methods(cfg)
    check_tracker(cfg.tracker)
    bench = prepare_benchmark(cfg, say)
    bench.on_metrics = on_metrics
    run = Run.open("lm", run_name(cfg), cfg.model_dump(), inputs=bench.inputs())
    say(f"run directory: {run.layout.root}")
    ctx = RunContext(run, bench, evaluate_references(run, bench, cfg, say), cfg, say, retry_failed)
    hook = after_entry or _kill_hook()
    entries = [(method, spec, params.model_copy(update={"seed": seed}))
               for method, (spec, params) in methods.items() for seed in cfg.seeds]

    def finished(i: int, computed: bool) -> None:
        if computed and hook is not None:
            hook(entry_name(entries[i][0], entries[i][2].seed))

    run_entries([functools.partial(run_method_entry, ctx, method, spec, params) for method, spec, params in entries],
                cfg.executor, finished)  # one after another, or Ray tasks
    out = write_run_table(run, cfg, methods, ctx.refs)
    if cfg.eval_every is not None:
        write_eval_curves(run)
    if cfg.continual > 1:
        from unlearnkit.recipes.continual import write_run_curves

        write_run_curves(run, cfg, methods)
    return out


def _kill_hook() -> Callable[[str], None] | None:
    """Testing aid: ``UNLEARNKIT_KILL_AFTER_ENTRY=<entry>`` SIGKILLs the process once that entry is
    finished, to prove that a run killed mid-way resumes without recomputing or corrupting anything."""
    import os
    import signal

    target = os.environ.get("UNLEARNKIT_KILL_AFTER_ENTRY")
    if not target:
        return None

    def hook(entry: str) -> None:
        if entry == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
