"""`unlearnkit run`: the language-model benchmark, end to end, resumable.

    build or reuse the models → evaluate Retrain and Original → for each (method, seed):
    unlearn θ_o on D_f (with D_r) → save θ_u → evaluate → compare to θ_r → table

Everything lands in one run (``$UNLEARNKIT_HOME/runs/<name>``, layout in
:mod:`unlearnkit.results.layout`; the default name is a hash of the config, so rerunning the same
command resumes the same run). Each entry records the hash of everything that determines it —
method, hyperparameters, seed, the fingerprints of θ_o, θ_r and the data, the evaluation settings —
so a rerun skips finished entries, recomputes exactly those whose inputs changed (saying what
changed), and reuses a saved θ_u only when its hash matches. A method whose loss becomes NaN/inf is
stopped with a clear message, recorded as failed (``--retry-failed`` reruns it), and the run
continues with the other methods. With ``continual=k`` every method entry applies the forget set as
k requests one after another (:mod:`unlearnkit.analysis.continual`); each stage is an entry too.

The modules: :mod:`.config` (:class:`RunConfig`, the run name, the methods resolved), :mod:`.bench` (the prepared
benchmark :class:`LMBench` and the reference rows), :mod:`.context` (:class:`RunContext`, :class:`MethodJob`),
:mod:`.entries` (one (method, seed) entry), :mod:`.table` (the run's table), :mod:`.benchmark` (:func:`run_benchmark`).
"""

from unlearnkit.recipes.lm.bench import (
    METRICS_VERSION,
    LMBench,
    evaluate_references,
    prepare_benchmark,
    run_provenance,
    task_options,
)
from unlearnkit.recipes.lm.benchmark import run_benchmark
from unlearnkit.recipes.lm.config import RunConfig, base_of, run_name, validate_methods
from unlearnkit.recipes.lm.context import MethodJob, RunContext, Say
from unlearnkit.recipes.lm.entries import compute_method_entry, method_entry, run_method_entry, training_evaluator
from unlearnkit.recipes.lm.table import LMRun, write_eval_curves, write_run_table

__all__ = ["METRICS_VERSION", "LMBench", "LMRun", "MethodJob", "RunConfig", "RunContext", "Say", "base_of",
           "compute_method_entry", "evaluate_references", "method_entry", "prepare_benchmark", "run_benchmark",
           "run_method_entry", "run_name", "run_provenance", "task_options", "training_evaluator",
           "validate_methods", "write_eval_curves", "write_run_table"]
