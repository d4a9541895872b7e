"""``unlearnkit report``: one self-contained HTML page for one run, or several runs side by side.

    runs (index + files) → RunData → sections: tables (sortable, best per column marked),
    figures (inline SVG / PNG, each with a caption saying what it shows and which way is better),
    files (relative links to per-sample values, logs, models), provenance → one HTML file

Everything the page needs is inside it: figures are ``data:`` URIs, the sorting script and the styles
are inline, and a Content-Security-Policy forbids fetching anything, so the file opens offline and
can be sent to a colleague. Numbers come from the run index (the same values ``unlearnkit runs show``
prints). The page knows no analysis: its figures (and the tables of runs without a table spec, and
blocks under Files) come from the sections registered in :mod:`unlearnkit.results.sections` by the
modules that write each analysis's files; :mod:`unlearnkit.recipes.report` imports them all.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unlearnkit import __version__
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_write_text
from unlearnkit.results.html import (
    Column,
    Figure,
    Table,
    TableRow,
    details,
    esc,
    figure_html,
    kv_table,
    page,
    table_html,
)
from unlearnkit.results.index import RunIndex
from unlearnkit.results.noise import HTML_LEGEND, REFERENCE_LABELS, TIE
from unlearnkit.results.sections import RunData, applicable, load, png_uri  # noqa: F401 - re-exported
from unlearnkit.results.store import Run
from unlearnkit.results.tables import cell, compare_table, noise_marks, row_values
from unlearnkit.results.tradeoff import (  # noqa: F401 - re-exported
    FORGET,
    TRADEOFF_CAPTION,
    UTILITY,
    overlaid_tradeoff,
    tradeoff_points,
)

_RUN_FILES = (".json", ".csv", ".md", ".png")


# ---------------------------------------------------------------------------------------------
# the page


def build_report(runs: Sequence[Run], out_dir: Path) -> str:
    """The HTML text of the report of ``runs`` (links relative to ``out_dir``, where it will be written)."""
    data = [load(r) for r in runs]
    body, nav = [], []
    if len(data) > 1:
        nav.append(("comparison", "comparison"))
        body.append(comparison_section(data))
    for i, rd in enumerate(data):
        anchor = f"run-{i}"
        nav.append((anchor, rd.run.name))
        body.append(run_section(rd, out_dir, anchor))
    names = ", ".join(rd.run.name for rd in data)
    title = f"unlearnkit report: {names}" if len(data) == 1 else f"unlearnkit report: {len(data)} runs"
    subtitle = f"generated {time.strftime('%Y-%m-%d %H:%M')} by unlearnkit {__version__}; runs: {names}"
    return page(title, subtitle, nav, "".join(body))


def write_report(runs: Sequence[Run], out: Path | str | None = None) -> Path:
    """Write the report atomically: to ``out``, or (one run) to ``<run dir>/report.html``."""
    if out is None:
        html = build_report(runs, runs[0].layout.root)
        return runs[0].write_text(runs[0].layout.report.name, html)
    out = Path(out).expanduser().absolute()
    html = build_report(runs, out.parent)
    atomic_write_text(out, html)
    return out


def run_section(rd: RunData, out_dir: Path, anchor: str) -> str:
    run = rd.run
    done, failed = _counts(run)
    parts = [f'<section id="{esc(anchor)}"><h2>{esc(run.name)}</h2>',
             kv_table([("kind", run.kind), ("directory", run.layout.root), ("entries", f"{done} done, {failed} failed")]),
             "<h3>Tables</h3>", tables_html(rd)]
    figs = run_figures(rd)
    if figs:
        parts += ["<h3>Figures</h3>", *(figure_html(f) for f in figs)]
    parts += ["<h3>Files</h3>", files_html(rd, out_dir), "<h3>Provenance</h3>", provenance_html(rd), "</section>"]
    return "".join(parts)


def _counts(run: Run) -> tuple[int, int]:
    with RunIndex() as ix:
        rows = ix.entries(run.name)
    if rows:
        return sum(r.status == "done" for r in rows), sum(r.status == "failed" for r in rows)
    entries = run.layout.entries()
    return sum(run.record(e) is not None for e in entries), sum(run.failure(e) is not None for e in entries)


# ---------------------------------------------------------------------------------------------
# tables


def spec_table(spec: dict, rd: RunData) -> Table:
    """A run-table spec (summary.json) with the index's values: cells as printed, numbers to sort by."""
    values = rd.values
    digits = spec.get("digits", 4)
    cols = [Column(c["header"], rd.higher_is_better(c["metric"])) for c in spec["columns"]]
    rows = []
    for r in spec["rows"]:
        if "failed" in r:
            rows.append(TableRow(r["label"], [("-", None)] * len(cols), failed=str(r["failed"])))
            continue
        cells = []
        for c in spec["columns"]:
            vals = row_values(r, c["metric"], values)
            shown = cell(vals, c, digits, r, spec.get("intervals"))
            cells.append((shown if shown is not None else "-", float(np.mean(vals)) if vals else None))
        n = len(r.get("entries", []))
        label = f"{r['label']} (mean of {n} seeds)" if spec.get("label_seeds", True) and n > 1 else r["label"]
        rows.append(TableRow(label, cells, reference=r["label"].lower() in REFERENCE_LABELS))
    reps, meta = rd.replicates, spec.get("intervals") or {}
    marks = noise_marks(spec, values, [(reps, list(r.get("entries", [])), meta) for r in spec["rows"]],
                        {c["metric"]: col.higher_is_better for c, col in zip(spec["columns"], cols)})
    return Table(cols, rows, spec.get("title"), spec.get("corner", "method"),
                 list(spec.get("notes", [])) + ([HTML_LEGEND] if marks else []),
                 ties={ij for ij, m in marks.items() if m == TIE})


def tables_html(rd: RunData) -> str:
    out = []
    for r in [rd, *rd.children]:
        specs = r.summary.get("tables") or []
        head = f"<p class=\"legend\">{esc(r.run.name)} ({esc(r.run.kind)})</p>" if r is not rd else ""
        if specs:
            out.append(head + "".join(table_html(spec_table(s, r)) for s in specs))
        elif tables := section_tables(r):
            out.append(head + "".join(table_html(t) for t in tables))
        elif r.metrics:
            out.append(head + table_html(entries_table(r)))
        text = r.run.layout.table.read_text(encoding="utf-8") if r.run.layout.table.is_file() else ""
        if text.strip():
            out.append(details(f"table.md of {r.run.name} (as printed)", f"<pre>{esc(text)}</pre>", open_=not specs))
    return "".join(out) or '<p class="note">(no table yet: the run has not finished)</p>'


def section_tables(rd: RunData) -> list[Table]:
    """The tables of the first registered section that has some for this run (a run without a table spec)."""
    for s in applicable(rd):
        if s.tables is not None and (tables := s.tables(rd)):
            return tables
    return []


def entries_table(rd: RunData, max_columns: int = 40) -> Table:
    """Every finished entry and its metrics (runs without a table spec: analyses)."""
    names = list(dict.fromkeys(k for ms in rd.metrics.values() for k in ms))[:max_columns]
    cols = [Column(n, rd.higher_is_better(n)) for n in names]
    rows = [TableRow(e, [("-" if ms.get(n) is None or ms[n].value is None else f"{ms[n].value:.4g}",
                          ms[n].value if n in ms else None) for n in names])
            for e, ms in sorted(rd.metrics.items())]
    return Table(cols, rows, "entries", "entry")


# ---------------------------------------------------------------------------------------------
# figures: the registered sections


def run_figures(rd: RunData) -> list[Figure]:
    """Every figure this run has data for: the registered sections' (:mod:`unlearnkit.results.sections`), in order."""
    return [f for s in applicable(rd) for f in s.figures(rd)]


# ---------------------------------------------------------------------------------------------
# files and provenance


def _link(path: Path, out_dir: Path, text: str) -> str:
    rel = Path(os.path.relpath(path, out_dir)).as_posix()
    return f'<a href="{esc(urllib.parse.quote(rel))}">{esc(text)}</a>'


def files_html(rd: RunData, out_dir: Path) -> str:
    items = []
    for r in [rd, *rd.children]:
        lay = r.run.layout
        for f in sorted(lay.root.iterdir()) if lay.root.is_dir() else []:
            if f.is_file() and f.suffix in _RUN_FILES and f.name not in ("run.json",):
                items.append(_link(f, out_dir, f"{r.run.name}: {f.name}"))
        if lay.trackers.is_dir():
            items.append(_link(lay.trackers, out_dir, f"{r.run.name}: trackers/ (experiment-tracker logs)"))
        for e in lay.entries():
            rec = r.run.record(e)
            if rec is None:
                continue
            links = [_link(lay.result_file(e), out_dir, "results.json")]
            if rec.per_sample:
                links.append(_link(lay.results(e) / rec.per_sample, out_dir, rec.per_sample))
            if lay.log(e).is_file():
                links.append(_link(lay.log(e), out_dir, "training log"))
            if lay.model(e).is_dir():
                links.append(_link(lay.model(e), out_dir, "θ_u"))
            items.append(f"{esc(r.run.name)} / {esc(e)}: " + ", ".join(links))
    extra = "".join(s.files(rd) for s in applicable(rd) if s.files is not None)
    listing = "".join(f"<li>{i}</li>" for i in items) or "<li>(none)</li>"
    return extra + details(f"{len(items)} files and entries (relative links)", f'<ul class="files">{listing}</ul>')


def provenance_of(rd: RunData) -> dict:
    prov = rd.summary.get("provenance")
    if isinstance(prov, dict):
        return prov
    for e in sorted(rd.metrics):
        rec = rd.run.record(e)
        if rec is not None and rec.provenance:
            return rec.provenance
    return {}


def provenance_html(rd: RunData) -> str:
    prov = provenance_of(rd)
    try:
        config = rd.run.config()
    except UnlearnkitError:  # a run without a readable config still gets a report
        config = prov.get("config")
    pairs = [(k, prov.get(k)) for k in ("unlearnkit_version", "git_revision", "created", "seed") if prov.get(k) is not None]
    out = [kv_table(pairs) if pairs else '<p class="note">(no provenance recorded)</p>']
    if prov.get("libraries"):
        out.append(details("library versions", kv_table(list(prov["libraries"].items())), open_=True))
    if prov.get("hardware"):
        out.append(details("hardware", kv_table([(k, v) for k, v in prov["hardware"].items()]), open_=True))
    out.append(details("config", f"<pre>{esc(json.dumps(config, indent=2, default=str))}</pre>"))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# several runs


def comparison_section(data: list[RunData]) -> str:
    parts = ['<section id="comparison"><h2>Comparison</h2>']
    inputs = [(rd.run.name, rd.summary, rd.values) for rd in data]
    metrics = {k for rd in data for ms in rd.metrics.values() for k in ms}
    hib = {m: next((rd.higher_is_better(m) for rd in data if rd.higher_is_better(m) is not None), None)
           for m in metrics}
    try:
        _, cmp = compare_table(inputs, directions=hib, replicates={rd.run.name: rd.replicates for rd in data})
    except ValueError as e:
        parts.append(f'<p class="note">No comparison table: {esc(e)}.</p>')
    else:
        cols = [Column(c["header"], hib.get(c["metric"])) for c in cmp["columns"]]
        rows = [TableRow(r["label"], [(r["cells"][c["metric"]], r["values"][c["metric"]]) for c in cmp["columns"]],
                         reference=r["label"].split(": ", 1)[-1].lower() in REFERENCE_LABELS) for r in cmp["rows"]]
        ties = {(i, j) for i, r in enumerate(cmp["rows"]) for j, c in enumerate(cmp["columns"])
                if r["marks"].get(c["metric"]) == "inside_noise"}
        notes = [HTML_LEGEND] if any(r["marks"] for r in cmp["rows"]) else []
        parts.append(table_html(Table(cols, rows, "Rows of every run's first table, on the metrics they share",
                                      "run: row", notes, ties)))
    fig = overlaid_tradeoff(data)
    if fig is not None:
        parts.append(figure_html(fig))
    return "".join(parts) + "</section>"
