"""The vision section of the report (``unlearnkit run vision``): each method's Gap to Retrain per scenario
(from the run's tables: the columns named ``Gap``), and TARF's identification of the hidden target
classes (from the entries' training logs: ``identified``, ``hidden_truth``, ``precision``, ``recall``)
as a figure and, under Files, a table per seed."""

from __future__ import annotations

import numpy as np

from unlearnkit.results import figures as F
from unlearnkit.results.html import Column, Figure, Table, TableRow, table_html
from unlearnkit.results.noise import REFERENCE_LABELS
from unlearnkit.results.sections import RunData, report_section, svg_figure
from unlearnkit.results.tables import row_values


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
    return [svg_figure(F.tarf_figure(bars), "TARF: identification of the hidden target classes",
                       "Precision and recall (%) of the classes TARF identified as the forget target against the "
                       "hidden truth, mean over seeds per scenario; higher is better ↑ (table under Files: "
                       "identification).")]


def tarf_table(rd: RunData) -> str:
    """TARF's identification per scenario and seed (shown under Files); empty without TARF entries."""
    rows = tarf_rows(rd)
    if not rows:
        return ""
    t = Table([Column("seed"), Column("identified"), Column("hidden target"), Column("precision %", True),
               Column("recall %", True)],
              [TableRow(r["scenario"], [(str(r["seed"]), r["seed"]), (r["identified"], None), (r["hidden"], None),
                                        (f"{r['precision']:.0f}", r["precision"]), (f"{r['recall']:.0f}", r["recall"])])
               for r in rows], "TARF identification", "scenario")
    return table_html(t)


@report_section("vision", order=1000, files=tarf_table)
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
    out = [svg_figure(F.gap_figure(panels), "Gap to Retrain per scenario",
                      "Per scenario, each method's Gap: the mean absolute difference of UA, RA, TA and MIA to Retrain "
                      "(lower is better ↓), mean over seeds with ± sd; Original θ_o is the do-nothing baseline.")]
    return out + tarf(rd)
