"""Bootstrap intervals of a run's table cells, computed when the table is written (docs/metrics.md,
"Intervals and noise").

For every row of one entry and every column marked ``ci`` (rows of several seeds get their t-interval when
rendered, :mod:`unlearnkit.results.noise`), the task's bootstrap statistic (:meth:`Task.statistic`: the metric
recomputed from resampled per-sample values with the evaluation's own aggregate functions, paired with the
reference θ_r) gives the interval, stored in the row as ``"ci": {metric: [lo, hi]}``; the replicates go to
``intervals.npz`` (``<entry>|<metric>``) so comparisons can take paired differences, and the settings into the
spec (``"intervals"``). Replicates are reused while the entry, its reference and the settings are unchanged, so a
rerun of a finished run costs nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from unlearnkit.engine.result import EvalResult
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.metrics.intervals import LEVEL, RESAMPLES, SEED, Interval, bootstrap, percentile_interval
from unlearnkit.results.noise import REPLICATES_FILE, read_replicates
from unlearnkit.results.store import Run

INTERVALS_VERSION = 1  # bump when a statistic or the resampling changes (invalidates stored replicates)
_FINGERPRINTS = "__fingerprints__"


def entry_interval(task, res: EvalResult, reference: EvalResult | None, metric: str, resamples: int = RESAMPLES,
                   seed: int = SEED, level: float = LEVEL) -> tuple[Interval | None, np.ndarray]:
    """(interval, replicates) of ``metric`` of one evaluation ``res`` (θ_r's ``reference`` paired with it);
    (None, empty) when the task cannot recompute the metric from the stored per-sample values."""
    value = res.get(metric)
    st = None if value is None else task.statistic(metric, res, reference)
    if st is None:
        return None, np.empty(0)
    sizes, statistic = st
    try:
        return bootstrap(statistic, sizes, value, resamples, seed, level)
    except UnlearnkitError:  # a metric undefined on these values (e.g. an AUC input out of range): no interval
        return None, np.empty(0)


def add_intervals(run: Run, specs: list[dict], task, evals: Mapping[str, EvalResult], reference: str,
                  eval_set: Mapping, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> None:
    """Bootstrap intervals into every one-entry row of ``specs`` (its ``ci`` columns), the settings into each
    spec, the replicates into ``intervals.npz``. ``evals``: entry → its evaluation; ``reference``: the entry of
    θ_r; ``eval_set``: what identifies the eval samples (task, data fingerprint, split) — replicates of runs
    with the same one are paired."""
    meta = {"level": level, "resamples": resamples, "seed": seed,
            "pairing": content_hash({**eval_set, "resamples": resamples, "seed": seed, "v": INTERVALS_VERSION})}
    hashes = {e: (rec.entry.get("hash") if (rec := run.record(e)) else None) for e in evals}
    cached, fingerprints = _stored(run), {}
    arrays: dict[str, np.ndarray] = {}
    for spec in specs:
        spec["intervals"] = meta
        for r in spec["rows"]:
            entries = r.get("entries", [])
            if "failed" in r or len(entries) != 1 or entries[0] not in evals:
                continue
            e, ci = entries[0], {}
            for c in spec["columns"]:
                m, key = c["metric"], f"{entries[0]}|{c['metric']}"
                if not c.get("ci") or m in r.get("skip", ()):
                    continue
                fp = content_hash({"entry": hashes[e], "reference": hashes.get(reference), "metric": m, **meta})
                if key not in arrays:
                    reuse = hashes[e] is not None and cached.get(key, ("",))[0] == fp
                    arrays[key] = cached[key][1] if reuse else \
                        entry_interval(task, evals[e], evals.get(reference), m, resamples, seed, level)[1]
                    fingerprints[key] = fp
                iv = percentile_interval(evals[e].get(m), arrays[key], level) if arrays[key].size else None
                if iv is not None:
                    ci[m] = [iv.lo, iv.hi]
            if ci:
                r["ci"] = ci
    kept = {k: v for k, v in arrays.items() if v.size}
    run.write_arrays(REPLICATES_FILE, {**kept, _FINGERPRINTS: np.array(json.dumps({k: fingerprints[k] for k in kept}))})


def run_eval_set(run: Run, reference: str) -> dict:
    """What identifies a run's eval samples, from its reference entry's inputs: task, data fingerprint, split."""
    inputs = (rec.entry.get("inputs") if (rec := run.record(reference)) else None) or {}
    return {"task": (inputs.get("task") or {}).get("name", "tofu"), "data": inputs.get("data"),
            "forget": (inputs.get("eval") or {}).get("forget")}


def _stored(run: Run) -> dict[str, tuple[str, np.ndarray]]:
    """key → (fingerprint, replicates) of the run's stored replicates (none when absent or unreadable)."""
    path = run.layout.file(REPLICATES_FILE)
    try:
        with np.load(path, allow_pickle=False) as f:
            fps = json.loads(str(f[_FINGERPRINTS])) if _FINGERPRINTS in f.files else {}
        reps = read_replicates(path)
    except (OSError, ValueError, UnlearnkitError):
        return {}
    return {k: (fps[k], v) for k, v in reps.items() if k in fps}
