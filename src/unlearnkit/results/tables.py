"""Plain-text tables for the terminal (markdown-compatible), and the run tables as data.

A run's table is stored as a **spec** (``summary.json``): columns name metrics, rows name the
entries they average over. :func:`render_tables` turns a spec and the entries' values (from the
run index) into text, so the table a recipe prints, ``table.md`` and ``unlearnkit runs show`` are
the same function of the same numbers.

Spec (a dict, JSON-serialisable)::

    {"title": "…" | None, "digits": 4, "label_seeds": true,
     "columns": [{"header": "MU ↑", "metric": "mu", "digits": 4, "sd": false, "ci": true}, …],
     "rows": [{"label": "ga", "entries": ["ga__s0", "ga__s1"], "skip": ["…"]},
              {"label": "gd", "entries": ["gd__s0"], "ci": {"mu": [0.61, 0.74]}},
              {"label": "kl", "failed": "error text"}, …],
     "notes": ["line", …],
     "intervals": {"level": 0.95, "resamples": 1000, "seed": 0, "pairing": "…"}}

A cell is the mean over the row's entries (``-`` when none has the metric or it is in ``skip``);
with ``sd`` and several values it reads ``mean ± sd`` (sample sd); with ``ci`` it reads ``value ± half-width``
of the 95 % interval — t over the row's seeds, or the row's stored bootstrap interval over the eval samples
(:mod:`unlearnkit.results.noise`; a spec without ``ci`` renders as before). With ``label_seeds`` a row of k > 1
entries is labelled ``<label> (mean of k seeds)``. A failed row shows ``-`` and the error's start.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from unlearnkit.results.noise import (
    BEST,
    LEGEND,
    TIE,
    Replicates,
    Spread,
    best_of,
    cell_interval,
    is_reference,
    ties_with_best,
)


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


def column(header: str, metric: str, digits: int | None = None, sd: bool = False, ci: bool = False) -> dict:
    return {"header": header, "metric": metric, "digits": digits, "sd": sd, **({"ci": True} if ci else {})}


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


def cell(vals: list[float], col: dict, digits: int, spec_row: dict | None = None, meta: dict | None = None) -> Any:
    if not vals:
        return None
    d = col.get("digits") if col.get("digits") is not None else digits
    iv = cell_interval(vals, col, spec_row, meta)
    if iv is not None:
        return f"{iv.value:.{d}f} ± {iv.half_width:.{d}f}"
    if col.get("sd") and len(vals) > 1:
        return f"{np.mean(vals):.{d}f} ± {np.std(vals, ddof=1):.{d}f}"
    return fmt(float(np.mean(vals)), d)


def table_rows(spec: dict, values: Values) -> list[list[Any]]:
    """The rows of a spec as printed: label, then one cell per column."""
    digits = spec.get("digits", 4)
    cols = spec["columns"]
    out = []
    for r in spec["rows"]:
        if "failed" in r:
            out.append([f"{r['label']} (failed)", *["-"] * (len(cols) - 1), str(r["failed"])[:40]])
            continue
        n = len(r.get("entries", []))
        label = f"{r['label']} (mean of {n} seeds)" if spec.get("label_seeds", True) and n > 1 else r["label"]
        out.append([label, *[cell(row_values(r, c["metric"], values), c, digits, r, spec.get("intervals"))
                             for c in cols]])
    return out


def render_table(spec: dict, values: Values) -> str:
    table = format_table([spec.get("corner", "method"), *(c["header"] for c in spec["columns"])],
                         table_rows(spec, values), spec.get("digits", 4))
    return "\n".join([*([spec["title"]] if spec.get("title") else []), table, *spec.get("notes", [])])


def render_tables(specs: Sequence[dict], values: Values) -> str:
    return "\n\n".join(render_table(s, values) for s in specs)


def tables_as_data(specs: Sequence[dict], values: Values) -> list[dict]:
    """The tables with their cell values (means over entries) for ``--json``; a cell with an interval adds it
    under the row's ``intervals`` (metric → value, lo, hi, half_width, method, n, level)."""
    out = []
    for s in specs:
        rows = []
        for r in s["rows"]:
            per = {c["metric"]: row_values(r, c["metric"], values) for c in s["columns"]}
            ivs = {}
            for c in s["columns"]:
                iv = cell_interval(per[c["metric"]], c, r, s.get("intervals"))
                if iv is not None:
                    ivs[c["metric"]] = iv.to_json()
            rows.append({"label": r["label"], "entries": r.get("entries", []), "failed": r.get("failed"),
                         "values": {m: (float(np.mean(v)) if v else None) for m, v in per.items()},
                         **({"intervals": ivs} if ivs else {})})
        out.append({"title": s.get("title"), "columns": [{"header": c["header"], "metric": c["metric"]}
                                                         for c in s["columns"]], "rows": rows})
    return out


Source = tuple[Replicates | None, list[str], dict]  # a row's replicates file, entries, the spec's interval settings


def noise_marks(spec: dict, values: Values, sources: Sequence[Source],
                directions: Mapping[str, bool | None]) -> dict[tuple[int, int], str]:
    """(row, column) → ``*`` for the best method row of a column with a direction and ``~`` for every other
    method row whose difference to it lies inside the noise; only columns where some cell has an interval
    (a table without intervals gets no marks: it renders as before)."""
    out: dict[tuple[int, int], str] = {}
    for j, c in enumerate(spec["columns"]):
        m = c["metric"]
        vals: dict[int, float] = {}
        spreads: dict[int, Spread | None] = {}
        for i, (r, (reps, entries, meta)) in enumerate(zip(spec["rows"], sources)):
            v = row_values(r, m, values)
            if "failed" in r or not v or is_reference(r["label"]):
                continue
            vals[i] = float(np.mean(v))
            iv = cell_interval(v, c, r, meta)
            rep = reps.get(entries[0], m) if reps is not None and len(entries) == 1 and iv is not None else None
            spreads[i] = None if iv is None else Spread(iv, rep, (meta or {}).get("pairing"))
        if not any(spreads.values()):
            continue
        best = best_of(vals, directions.get(m))
        out.update({(i, j): BEST for i in best})
        out.update({(i, j): TIE for i in ties_with_best(best, spreads)})
    return out


# ---------------------------------------------------------------------------------------------
# The language-model run table: the task's columns (TOFU: the seed's layout)

SECONDS = "unlearn_seconds"


def lm_columns(base: Sequence[tuple[str, str]], seconds: bool = True, extra: Sequence[dict] = (),
               ci: bool = False) -> list[dict]:
    """The task's columns ``base`` ((header, metric) pairs, ``Task.columns``; with ``ci`` each prints its 95 %
    interval), then ``unlearn s`` (mean unlearning wall time) and any extra columns."""
    cols = [column(h, m, ci=ci) for h, m in base]
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


def compare_table(runs: Sequence[tuple[str, dict, Values]], metrics: Sequence[str] | None = None,
                  directions: Mapping[str, bool | None] | None = None,
                  replicates: Mapping[str, Replicates] | None = None) -> tuple[str, dict]:
    """Rows of the first table of each run, aligned on the metrics they share (or ``metrics``). Where cells have
    intervals, the best method row of each directed column (``directions``: metric → higher is better) is marked
    ``*`` and the rows inside its noise ``~`` (``replicates``: run → its bootstrap replicates, for paired
    differences), with a legend line."""
    firsts = [(name, spec["tables"][0]) for name, spec, _ in runs if spec.get("tables")]
    if len(firsts) != len(runs):
        missing = [name for name, spec, _ in runs if not spec.get("tables")]
        raise ValueError(f"run(s) {', '.join(missing)} have no table yet")
    if metrics:
        cols = [column(m, m, ci=any(c.get("ci") for _, t in firsts for c in t["columns"] if c["metric"] == m))
                for m in metrics]
    else:
        shared = set.intersection(*({c["metric"] for c in t["columns"]} for _, t in firsts))
        cols = [c for c in firsts[0][1]["columns"] if c["metric"] in shared]
    if not cols:
        raise ValueError("the runs share no metric: name the metrics to compare with --metrics")
    merged_rows: list[dict] = []
    merged_values: dict[str, dict] = {}
    sources: list[Source] = []
    for (name, table), (_, _, values) in zip(firsts, runs):
        for r in table["rows"]:
            if "failed" in r:
                continue
            keys = [f"{name}/{e}" for e in r["entries"]]
            merged_values.update({k: values.get(e, {}) for k, e in zip(keys, r["entries"])})
            merged_rows.append({**row(f"{name}: {r['label']}", keys, r.get("skip", ())),
                                **({"ci": r["ci"]} if r.get("ci") else {})})
            sources.append(((replicates or {}).get(name), list(r["entries"]), table.get("intervals") or {}))
    spec = table_spec(cols, merged_rows, label_seeds=True, digits=firsts[0][1].get("digits", 4))
    spec["corner"] = "run: row"
    spec["intervals"] = next((m for _, _, m in sources if m), None)
    cells = table_rows(spec, merged_values)
    marks = noise_marks(spec, merged_values, sources, directions or {})
    data_rows = tables_as_data([spec], merged_values)[0]["rows"]
    for i, (r, d) in enumerate(zip(cells, data_rows)):
        d["cells"] = {c["metric"]: fmt(r[j + 1]) for j, c in enumerate(cols)}
        d["marks"] = {c["metric"]: ("best" if marks[(i, j)] == BEST else "inside_noise") for j, c in enumerate(cols)
                      if (i, j) in marks}
    for (i, j), mark in marks.items():
        cells[i][j + 1] = f"{cells[i][j + 1]} {mark}"
    text = format_table([spec["corner"], *(c["header"] for c in cols)], cells, spec["digits"])
    return text + (f"\n{LEGEND}" if marks else ""), {"columns": cols, "rows": data_rows}
