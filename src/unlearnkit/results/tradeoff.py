"""The trade-off section of the report: each method's forget ES-exact against MU, from the run's tables
(``summary.json`` with the index's values), raw and after calibration (nested ``calibration/*`` runs);
and the same plot of several runs overlaid (the comparison section of a multi-run report)."""

from __future__ import annotations

import numpy as np

from unlearnkit.results import figures as F
from unlearnkit.results.html import Figure
from unlearnkit.results.sections import RunData, report_section, svg_figure
from unlearnkit.results.tables import row_values

FORGET, UTILITY = "forget.es_exact", "mu"

TRADEOFF_CAPTION = ("Each method's forget ES-exact (y; lower = more of the forget set erased ↓) against model utility "
                    "MU (x; higher = better →), mean over seeds; ★ Original θ_o, ◆ Retrain θ_r (the model never "
                    "trained on the forget set: the target). Better is down and to the right, near Retrain.")


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


def calibrations(rd: RunData) -> list[RunData]:
    """The run's nested calibration runs."""
    return [c for c in rd.children if c.run.kind == "calibration"]


@report_section("tradeoff", order=100)
def tradeoff(rd: RunData) -> list[Figure]:
    raw = tradeoff_points(rd)
    if len(raw) < 2:
        return []
    panels = [("raw (as unlearned)", raw)]
    for c in calibrations(rd):
        cfg = c.run.config() if c.run.layout.config.is_file() else {}
        panels.append((f"calibrated ({cfg.get('metric', 'retain')} ≥ {cfg.get('tau', '?')} · θ_o)", tradeoff_points(c)))
    extra = (" Right: the same methods after calibration by model mixing θ(α) = (1−α)θ_o + αθ_u at equal retention, "
             "each method's α beside its point; compare the methods there.") if len(panels) > 1 else ""
    fig = F.tradeoff_figure(panels, "model utility MU ↑", "forget ES-exact ↓")
    return [svg_figure(fig, "Trade-off: forgetting vs utility", TRADEOFF_CAPTION + extra)]


def overlaid_tradeoff(data: list[RunData]) -> Figure | None:
    """Every run's trade-off points in one plot, one colour per run (raw; calibrated: each run's first setting)."""
    raw = [p for rd in data for p in tradeoff_points(rd, rd.run.name)]
    if len(raw) < 2:
        return None
    panels = [("raw (as unlearned)", raw)]
    cal = [p for rd in data for c in calibrations(rd)[:1] for p in tradeoff_points(c, rd.run.name)]
    if cal:
        panels.append(("calibrated (first calibration setting of each run)", cal))
    fig = F.tradeoff_figure(panels, "model utility MU ↑", "forget ES-exact ↓")
    return svg_figure(fig, "Trade-off of every run, overlaid", TRADEOFF_CAPTION + " One colour per run.")
