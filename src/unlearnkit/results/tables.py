"""Plain-text tables for the terminal (and markdown-compatible)."""

from __future__ import annotations

from typing import Any, Sequence


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


RUN_COLUMNS = [
    ("ES-exact retain ↑", "retain.es_exact"), ("ES-exact unlearn ↓", "forget.es_exact"),
    ("ES-perturb retain ↑", "retain.es_perturb"), ("ES-perturb unlearn ↓", "forget.es_perturb"),
    ("MU ↑", "mu"), ("FQ (ln p) ↑", "fq_log_p"), ("PrivLeak", "privleak"),
]


def run_table(rows: dict, failures: dict[str, str] | None = None, columns=RUN_COLUMNS) -> str:
    """Seed-style table: one row per method (mean over seeds), unlearning time in seconds."""
    import numpy as np

    out = []
    for name, (results, seconds) in rows.items():
        vals = [float(np.mean([r.value(k) for r in results])) for _, k in columns]
        label = name if len(results) == 1 else f"{name} (mean of {len(results)} seeds)"
        out.append([label, *vals, "-" if seconds is None else f"{seconds:.1f}"])
    for name, err in (failures or {}).items():
        out.append([f"{name} (failed)", *["-"] * len(columns), err[:40]])
    return format_table(["method", *(c for c, _ in columns), "unlearn s"], out)
