"""Plain-text tables for the terminal (markdown-compatible), and the run tables as data.

A run's table is stored as a **spec** (``summary.json``): columns name metrics, rows name the
entries they average over. :func:`render_tables` turns a spec and the entries' values (from the
run index) into text, so the table a recipe prints, ``table.md`` and ``unlearnkit runs show`` are
the same function of the same numbers.

Spec (a dict, JSON-serialisable)::

    {"title": "…" | None, "digits": 4, "label_seeds": true,
     "columns": [{"header": "MU ↑", "metric": "mu", "digits": 4, "sd": false}, …],
     "rows": [{"label": "ga", "entries": ["ga__s0", "ga__s1"], "skip": ["…"]},
              {"label": "kl", "failed": "error text"}, …],
     "notes": ["line", …]}

A cell is the mean over the row's entries (``-`` when none has the metric or it is in ``skip``);
with ``sd`` and several values it reads ``mean ± sd`` (sample sd). With ``label_seeds`` a row of k > 1
entries is labelled ``<label> (mean of k seeds)``. A failed row shows ``-`` and the error's start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:  # NaN
            return "nan"
        return f"{v:.{digits}f}"
    return str(v)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    cells = [[fmt(c, digits) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(list(headers)), sep, *(line(r) for r in cells)])


# ---------------------------------------------------------------------------------------------
# Table specs


def column(header: str, metric: str, digits: int | None = None, sd: bool = False) -> dict:
    return {"header": header, "metric": metric, "digits": digits, "sd": sd}


def row(label: str, entries: Sequence[str], skip: Sequence[str] = ()) -> dict:
    return {"label": label, "entries": list(entries), "skip": list(skip)}


def failed_row(label: str, error: str) -> dict:
    return {"label": label, "failed": error}


def table_spec(columns: list[dict], rows: list[dict], title: str | None = None, digits: int = 4,
               label_seeds: bool = True, notes: Sequence[str] = ()) -> dict:
    return {"title": title, "columns": columns, "rows": rows, "digits": digits, "label_seeds": label_seeds,
            "notes": list(notes)}


Values = Mapping[str, Mapping[str, Any]]  # entry → metric → number (or an object with .value)


def _value(v: Any) -> float | None:
    v = v.get("value") if isinstance(v, Mapping) else getattr(v, "value", v)
    return None if v is None else float(v)


def row_values(spec_row: dict, metric: str, values: Values) -> list[float]:
    if metric in spec_row.get("skip", ()):
        return []
    out = []
    for e in spec_row.get("entries", []):
        v = _value(values.get(e, {}).get(metric))
        if v is not None:
            out.append(v)
    return out


def cell(vals: list[float], col: dict, digits: int) -> Any:
    if not vals:
        return None
    d = col.get("digits") if col.get("digits") is not None else digits
    if col.get("sd") and len(vals) > 1:
        return f"{np.mean(vals):.{d}f} ± {np.std(vals, ddof=1):.{d}f}"
    return fmt(float(np.mean(vals)), d)


def render_table(spec: dict, values: Values) -> str:
    digits = spec.get("digits", 4)
    cols = spec["columns"]
    out = []
    for r in spec["rows"]:
        if "failed" in r:
            out.append([f"{r['label']} (failed)", *["-"] * (len(cols) - 1), str(r["failed"])[:40]])
            continue
        n = len(r.get("entries", []))
        label = f"{r['label']} (mean of {n} seeds)" if spec.get("label_seeds", True) and n > 1 else r["label"]
        out.append([label, *[cell(row_values(r, c["metric"], values), c, digits) for c in cols]])
    table = format_table([spec.get("corner", "method"), *(c["header"] for c in cols)], out, digits)
    return "\n".join([*([spec["title"]] if spec.get("title") else []), table, *spec.get("notes", [])])


def render_tables(specs: Sequence[dict], values: Values) -> str:
    return "\n\n".join(render_table(s, values) for s in specs)


def tables_as_data(specs: Sequence[dict], values: Values) -> list[dict]:
    """The tables with their cell values (means over entries) for ``--json``."""
    out = []
    for s in specs:
        rows = []
        for r in s["rows"]:
            vals = {c["metric"]: (float(np.mean(v)) if (v := row_values(r, c["metric"], values)) else None)
                    for c in s["columns"]}
            rows.append({"label": r["label"], "entries": r.get("entries", []), "failed": r.get("failed"),
                         "values": vals})
        out.append({"title": s.get("title"), "columns": [{"header": c["header"], "metric": c["metric"]}
                                                         for c in s["columns"]], "rows": rows})
    return out


# ---------------------------------------------------------------------------------------------
# The language-model run table: the task's columns (TOFU: the seed's layout)

SECONDS = "unlearn_seconds"


def lm_columns(base: Sequence[tuple[str, str]], seconds: bool = True, extra: Sequence[dict] = ()) -> list[dict]:
    """The task's columns ``base`` ((header, metric) pairs, ``Task.columns``), then ``unlearn s`` (mean unlearning
    wall time) and any extra columns."""
    cols = [column(h, m) for h, m in base]
    return cols + ([column("unlearn s", SECONDS, 1)] if seconds else []) + list(extra)


# ---------------------------------------------------------------------------------------------
# Other tables


def models_report(ms) -> str:
    """Exact-reproduction rates of the built models (greedy decoding)."""
    rows = []
    for path in [ms.base, ms.original, *ms.references.values()]:
        meta = ms.meta(path)
        for k, v in meta.get("report", {}).items():
            rows.append([meta["kind"], k.replace("_exact_match", ""), 100 * v, meta["train"]["train_seconds"]])
    table = format_table(["model", "split", "exact answers %", "train s"], rows, digits=1)
    return "Greedy answers that reproduce the ground truth exactly:\n" + table


def _arrow(hib: bool | None) -> str:
    return "↑" if hib else ("↓" if hib is False else "–")


def eval_table(res) -> str:
    """All aggregates of one evaluation: metric, value, n, direction; then the compositions."""
    rows = [[k, a.value, a.n, _arrow(a.higher_is_better)] for k, a in res.aggregates.items()]
    lines = [format_table(["metric", "value", "n", "better"], rows)]
    for k, note in res.notes.items():
        lines.append(f"{k}: {note}")
    return "\n".join(lines)


def runs_table(runs: Sequence[Any]) -> str:
    """``unlearnkit runs ls``: newest first."""
    rows = [[r.name, r.kind, time.strftime("%Y-%m-%d %H:%M", time.localtime(r.updated)), r.done, r.failed]
            for r in runs]
    return format_table(["run", "kind", "updated", "done", "failed"], rows)


def compare_table(runs: Sequence[tuple[str, dict, Values]], metrics: Sequence[str] | None = None) -> tuple[str, dict]:
    """Rows of the first table of each run, aligned on the metrics they share (or ``metrics``)."""
    firsts = [(name, spec["tables"][0]) for name, spec, _ in runs if spec.get("tables")]
    if len(firsts) != len(runs):
        missing = [name for name, spec, _ in runs if not spec.get("tables")]
        raise ValueError(f"run(s) {', '.join(missing)} have no table yet")
    if metrics:
        cols = [column(m, m) for m in metrics]
    else:
        shared = set.intersection(*({c["metric"] for c in t["columns"]} for _, t in firsts))
        cols = [c for c in firsts[0][1]["columns"] if c["metric"] in shared]
    if not cols:
        raise ValueError("the runs share no metric: name the metrics to compare with --metrics")
    merged_rows: list[dict] = []
    merged_values: dict[str, dict] = {}
    for (name, table), (_, _, values) in zip(firsts, runs):
        for r in table["rows"]:
            if "failed" in r:
                continue
            keys = [f"{name}/{e}" for e in r["entries"]]
            merged_values.update({k: values.get(e, {}) for k, e in zip(keys, r["entries"])})
            merged_rows.append(row(f"{name}: {r['label']}", keys, r.get("skip", ())))
    spec = table_spec(cols, merged_rows, label_seeds=True, digits=firsts[0][1].get("digits", 4))
    spec["corner"] = "run: row"
    return render_table(spec, merged_values), {"columns": cols, "rows": tables_as_data([spec], merged_values)[0]["rows"]}
