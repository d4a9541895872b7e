"""``unlearnkit report``: one self-contained HTML page for one run, or several runs side by side.

    runs (index + files) → RunData → sections: tables (sortable, best per column marked),
    figures (inline SVG / PNG, each with a caption saying what it shows and which way is better),
    files (relative links to per-sample values, logs, models), provenance → one HTML file

Everything the page needs is inside it: figures are ``data:`` URIs, the sorting script and the styles
are inline, and a Content-Security-Policy forbids fetching anything, so the file opens offline and
can be sent to a colleague. Numbers come from the run index (the same values ``unlearnkit runs show``
prints); figures from the files the recipes wrote (``curves.json``, ``pcc.json``, ``sweep.json``,
``g_effect.json``, ``layers.json``, ``squeezing.json``, ``continual.json``, vision entries).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unlearnkit import __version__
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_write_text, read_json_or_none
from unlearnkit.results import figures as F
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
from unlearnkit.results.index import MetricRow, RunIndex
from unlearnkit.results.noise import HTML_LEGEND, REFERENCE_LABELS, REPLICATES_FILE, TIE, Replicates
from unlearnkit.results.plots import alpha_curves_figure, svg_data_uri
from unlearnkit.results.store import Metric, Run
from unlearnkit.results.tables import cell, compare_table, noise_marks, row_values

FORGET, UTILITY = "forget.es_exact", "mu"
_RUN_FILES = (".json", ".csv", ".md", ".png")


@dataclass
class RunData:
    """A run as the report sees it: its summary (table specs), its metrics, its nested runs."""

    run: Run
    summary: dict
    metrics: dict[str, dict[str, MetricRow]]
    children: list[RunData] = field(default_factory=list)

    @property
    def values(self) -> dict[str, dict[str, float | None]]:
        return {e: {k: m.value for k, m in ms.items()} for e, ms in self.metrics.items()}

    def higher_is_better(self, metric: str) -> bool | None:
        return next((ms[metric].higher_is_better for ms in self.metrics.values()
                     if metric in ms and ms[metric].higher_is_better is not None), None)

    def file(self, name: str) -> dict | None:
        data = read_json_or_none(self.run.layout.file(name))
        return data if isinstance(data, dict) else None

    @property
    def replicates(self) -> Replicates:
        return Replicates(self.run.layout.file(REPLICATES_FILE))


def load(run: Run) -> RunData:
    """The run's summary and metrics (from the index; from its result files when it is not indexed)."""
    metrics = run.metrics()
    if not metrics:
        metrics = {}
        for e in run.layout.entries():
            rec = run.record(e)
            if rec is not None:
                metrics[e] = {k: MetricRow(k, m.value, m.n, m.higher_is_better)
                              for k, m in ((k, Metric.of(v)) for k, v in rec.aggregates.items())}
    return RunData(run, run.summary(), metrics, [load(c) for c in run.children()])


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
        elif (t := r.file("pcc.json")) and isinstance(t.get("pcc"), dict):
            out.append(head + "".join(table_html(pcc_table(role, per)) for role, per in t["pcc"].items()))
        elif r.metrics:
            out.append(head + table_html(entries_table(r)))
        text = r.run.layout.table.read_text(encoding="utf-8") if r.run.layout.table.is_file() else ""
        if text.strip():
            out.append(details(f"table.md of {r.run.name} (as printed)", f"<pre>{esc(text)}</pre>", open_=not specs))
    return "".join(out) or '<p class="note">(no table yet: the run has not finished)</p>'


def pcc_table(role: str, per: dict[str, dict[str, float | None]]) -> Table:
    interventions = sorted({iv for ivs in per.values() for iv in ivs})
    rows = [TableRow(m, [("-" if ivs.get(iv) is None else f"{ivs[iv]:.3f}", ivs.get(iv)) for iv in interventions])
            for m, ivs in per.items()]
    return Table([Column(iv, True) for iv in interventions], rows,
                 f"{role} data: Pearson r of each metric before vs after each intervention (↑ = more reliable)", "metric")


def entries_table(rd: RunData, max_columns: int = 40) -> Table:
    """Every finished entry and its metrics (runs without a table spec: analyses)."""
    names = list(dict.fromkeys(k for ms in rd.metrics.values() for k in ms))[:max_columns]
    cols = [Column(n, rd.higher_is_better(n)) for n in names]
    rows = [TableRow(e, [("-" if ms.get(n) is None or ms[n].value is None else f"{ms[n].value:.4g}",
                          ms[n].value if n in ms else None) for n in names])
            for e, ms in sorted(rd.metrics.items())]
    return Table(cols, rows, "entries", "entry")


# ---------------------------------------------------------------------------------------------
# figures


def _svg(fig, title: str, caption: str) -> Figure:
    return Figure(title, caption, svg_data_uri(fig))


def run_figures(rd: RunData) -> list[Figure]:
    """Every figure this run has data for, in a fixed order."""
    out: list[Figure] = []
    for make in (tradeoff, alpha_curves, judge_scores, reliability_figures, sweep, g_effect, layers, squeezing,
                 continual, vision_figures):
        out += make(rd)
    return out


def tradeoff_points(rd: RunData, group: str = "") -> list[F.Point]:
    """The rows of the run's tables (each label once: Original and Retrain head every table of a split run)
    that have both a utility and a forget value."""
    values, pts, seen = rd.values, [], set()
    for r in [r for spec in rd.summary.get("tables") or [] for r in spec["rows"]]:
        xs, ys = row_values(r, UTILITY, values), row_values(r, FORGET, values)
        if "failed" in r or not xs or not ys or r["label"] in seen:
            continue
        seen.add(r["label"])
        alpha = row_values(r, "alpha", values)
        kind = r["label"].lower() if r["label"].lower() in ("original", "retrain") else "method"
        pts.append(F.Point(r["label"], float(np.mean(xs)), float(np.mean(ys)), kind,
                           float(np.mean(alpha)) if alpha else None, group))
    return pts


def _calibrations(rd: RunData) -> list[RunData]:
    return [c for c in rd.children if c.run.kind == "calibration"]


TRADEOFF_CAPTION = ("Each method's forget ES-exact (y; lower = more of the forget set erased ↓) against model utility "
                    "MU (x; higher = better →), mean over seeds; ★ Original θ_o, ◆ Retrain θ_r (the model never "
                    "trained on the forget set: the target). Better is down and to the right, near Retrain.")


def tradeoff(rd: RunData) -> list[Figure]:
    raw = tradeoff_points(rd)
    if len(raw) < 2:
        return []
    panels = [("raw (as unlearned)", raw)]
    for c in _calibrations(rd):
        cfg = c.run.config() if c.run.layout.config.is_file() else {}
        panels.append((f"calibrated ({cfg.get('metric', 'retain')} ≥ {cfg.get('tau', '?')} · θ_o)", tradeoff_points(c)))
    extra = (" Right: the same methods after calibration by model mixing θ(α) = (1−α)θ_o + αθ_u at equal retention, "
             "each method's α beside its point; compare the methods there.") if len(panels) > 1 else ""
    fig = F.tradeoff_figure(panels, "model utility MU ↑", "forget ES-exact ↓")
    return [_svg(fig, "Trade-off: forgetting vs utility", TRADEOFF_CAPTION + extra)]


JUDGE_PREFIXES = ("judge.", "proxy.")


def judge_scores(rd: RunData) -> list[Figure]:
    """The judge's and the proxies' scores of each row of the run's first table (``unlearnkit judge``)."""
    specs = rd.summary.get("tables") or []
    metrics = [c["metric"] for c in specs[0]["columns"] if c["metric"].startswith(JUDGE_PREFIXES)] if specs else []
    if not metrics:
        return []
    values, rows = rd.values, []
    for r in specs[0]["rows"]:
        scores = {m: float(np.mean(v)) for m in metrics if (v := row_values(r, m, values))}
        if scores and "failed" not in r:
            rows.append((r["label"], scores))
    if not rows:
        return []
    return [_svg(F.judge_figure(rows, metrics), "Judge scores",
                 "Per method, the LLM judge's (judge.*) and the offline proxies' (proxy.*) scores of its answers to the "
                 "forget questions, mean over seeds, in [0, 1], higher is better ↑: naturalness = fluent and logical "
                 "(gibberish scores low); similarity = the meaning differs from the original model's answer (a "
                 "rephrased leak scores low). See docs/judge.md for how far each judge agrees with human labels.")]


def alpha_curves(rd: RunData) -> list[Figure]:
    out = []
    for c in _calibrations(rd):
        curves = c.file("curves.json")
        if curves:
            metric = (c.run.config() if c.run.layout.config.is_file() else {}).get("metric", "retain metric")
            out.append(_svg(alpha_curves_figure(curves, metric), "α-curves of the calibration",
                            f"Left: {metric} of θ(α) as α goes from θ_o (0) to θ_u (1), with the target τ·θ_o (dashed) "
                            "and each method's chosen α (dotted): the largest α that keeps the target. Right: forget "
                            "ES-exact along the same mix (lower is better ↓)."))
    return out


def reliability_figures(rd: RunData) -> list[Figure]:
    doc = rd.file("pcc.json")
    if not doc or not isinstance(doc.get("pcc"), dict):
        return []
    n = len(doc.get("pool", []))
    out = [_svg(F.pcc_figure(doc["pcc"], n), "Metric reliability under red-team interventions",
                f"Pearson correlation, over a pool of {n} models, between each metric's values before and after each "
                "intervention, per metric and intervention; higher is better ↑ (the metric still ranks the models the "
                "same way under attack).")]
    for role in ("forget", "retain"):
        png = rd.run.layout.file(f"scatter_{role}.png")
        if png.is_file():
            out.append(Figure(f"Before vs after, {role} data", "Each panel: one metric (row) under one intervention "
                              "(column), one dot per pool model; points on a line = a reliable metric.", png_uri(png)))
    return out


def png_uri(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def sweep(rd: RunData) -> list[Figure]:
    doc = rd.file("sweep.json")
    if not doc or len(doc.get("all") or []) < 2:
        return []
    return [_svg(F.sweep_figure(doc), "Hyperparameter sweep after calibration",
                 "One panel per knob (LR, BS, early stopping ES, temperature TS, loss selection LS): each variant's "
                 "forget ES-exact after calibration to equal retention (lower is better ↓), its α on top; dashed: the "
                 "base setting.")]


def g_effect(rd: RunData) -> list[Figure]:
    doc = rd.file("g_effect.json")
    if not doc or not doc.get("methods"):
        return []
    return [_svg(F.g_effect_figure(doc), "G-effect curves",
                 "e = ⟨∇L_obj, ∇R⟩ per optimiser step (R = mean answer NLL), symlog scale. Left, e_u on forget data: "
                 "more negative = the objective erases the forget set faster (better ↓). Right, e_r on retain data: "
                 "closer to 0 or positive = less collateral damage (better ↑).")]


def layers(rd: RunData) -> list[Figure]:
    doc = rd.file("layers.json")
    if not doc or not doc.get("sweep"):
        return []
    out = [_svg(F.layers_figure(doc), "Layer-wise patching",
                "θ_o with one parameter group (embedding, layer L_i, head) taken from θ_u: MU (↑ better), FQ (↑ better) "
                "and forget ES-exact (↓ better) per group; dashed lines: θ_o and θ_u. A group that moves forget ES "
                "toward θ_u while keeping MU near θ_o carries the forgetting.")]
    if isinstance(doc.get("cru"), dict) and doc["cru"].get("test"):
        out.append(_svg(F.cru_figure(doc["cru"]), "CRU",
                        "Left: MU and FQ on the validation half when the k best-ranked groups come from θ_u (the "
                        "chosen k dotted). Right: θ_o, θ_u and the CRU model on the test half; up and right is better."))
    return out


def squeezing(rd: RunData) -> list[Figure]:
    doc = rd.file("squeezing.json")
    if not doc or not doc.get("methods"):
        return []
    return [_svg(F.squeezing_figure(doc), "Squeezing effect",
                 "Change since step 0 of the mean per-token log-prob of the forget answers (target), their paraphrases, "
                 "and answers sampled from θ_o in high / mid / low likelihood bands. Target and paraphrase should fall "
                 "(↓); a method that pushes mass onto θ_o's own high-likelihood answers (high band rising) squeezes "
                 "rather than forgets.")]


def continual(rd: RunData) -> list[Figure]:
    doc = rd.file("continual.json")
    if not doc or not doc.get("curves"):
        return []
    return [_svg(F.continual_figure(doc), "Continual unlearning",
                 f"{doc.get('stages', '?')} forget requests applied one after another (stage 0 = θ_o): utility and "
                 "retain ES-exact should stay high (↑), forget ES-exact — overall and on the requests already processed "
                 "— should fall (↓), FQ should rise (↑).")]


def vision_figures(rd: RunData) -> list[Figure]:
    specs = [s for s in rd.summary.get("tables") or [] if any(c["metric"] == "Gap" for c in s["columns"])]
    if not specs:
        return []
    values, panels = rd.values, []
    for s in specs:
        bars = []
        for r in s["rows"]:
            g = row_values(r, "Gap", values)
            if g and r["label"].lower() not in REFERENCE_LABELS:
                bars.append((r["label"], float(np.mean(g)), float(np.std(g, ddof=1)) if len(g) > 1 else 0.0))
        panels.append(((s.get("title") or "").split(" — ")[0], bars))
    out = [_svg(F.gap_figure(panels), "Gap to Retrain per scenario",
                "Per scenario, each method's Gap: the mean absolute difference of UA, RA, TA and MIA to Retrain "
                "(lower is better ↓), mean over seeds with ± sd; Original θ_o is the do-nothing baseline.")]
    return out + tarf(rd)


def tarf_rows(rd: RunData) -> list[dict]:
    rows = []
    for e in sorted(rd.metrics):
        rec = rd.run.record(e)
        log = (rec.extra.get("log") or {}) if rec else {}
        if "identified" in log:
            rows.append({"scenario": rec.entry.get("group", ""), "seed": rec.entry.get("seed"),
                         "identified": ", ".join(log["identified"]), "hidden": ", ".join(log.get("hidden_truth", [])),
                         "precision": log.get("precision"), "recall": log.get("recall")})
    return rows


def tarf(rd: RunData) -> list[Figure]:
    rows = tarf_rows(rd)
    if not rows:
        return []
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["scenario"], []).append(r)
    bars = [(sc, float(np.mean([r["precision"] for r in rs])), float(np.mean([r["recall"] for r in rs])))
            for sc, rs in by.items()]
    return [_svg(F.tarf_figure(bars), "TARF: identification of the hidden target classes",
                 "Precision and recall (%) of the classes TARF identified as the forget target against the hidden "
                 "truth, mean over seeds per scenario; higher is better ↑ (table under Files: identification).")]


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
    extra = ""
    if rows := tarf_rows(rd):
        t = Table([Column("seed"), Column("identified"), Column("hidden target"), Column("precision %", True),
                   Column("recall %", True)],
                  [TableRow(r["scenario"], [(str(r["seed"]), r["seed"]), (r["identified"], None), (r["hidden"], None),
                                            (f"{r['precision']:.0f}", r["precision"]), (f"{r['recall']:.0f}", r["recall"])])
                   for r in rows], "TARF identification", "scenario")
        extra = table_html(t)
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


def overlaid_tradeoff(data: list[RunData]) -> Figure | None:
    raw = [p for rd in data for p in tradeoff_points(rd, rd.run.name)]
    if len(raw) < 2:
        return None
    panels = [("raw (as unlearned)", raw)]
    cal = [p for rd in data for c in _calibrations(rd)[:1] for p in tradeoff_points(c, rd.run.name)]
    if cal:
        panels.append(("calibrated (first calibration setting of each run)", cal))
    fig = F.tradeoff_figure(panels, "model utility MU ↑", "forget ES-exact ↓")
    return _svg(fig, "Trade-off of every run, overlaid", TRADEOFF_CAPTION + " One colour per run.")
