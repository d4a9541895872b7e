"""The reliability study's section of the report (:mod:`unlearnkit.analysis.reliability`;
``unlearnkit reliability`` writes ``pcc.json`` and ``scatter_<role>.png``): the Pearson r of each metric
before vs after each intervention as tables (the run has no table spec) and bars, and the before/after
scatter grids. Its own module, so that a report does not import the study's model code."""

from __future__ import annotations

from unlearnkit.results import figures as F
from unlearnkit.results.html import Column, Figure, Table, TableRow
from unlearnkit.results.sections import RunData, png_uri, report_section, svg_figure


def pcc_table(role: str, per: dict[str, dict[str, float | None]]) -> Table:
    interventions = sorted({iv for ivs in per.values() for iv in ivs})
    rows = [TableRow(m, [("-" if ivs.get(iv) is None else f"{ivs[iv]:.3f}", ivs.get(iv)) for iv in interventions])
            for m, ivs in per.items()]
    return Table([Column(iv, True) for iv in interventions], rows,
                 f"{role} data: Pearson r of each metric before vs after each intervention (↑ = more reliable)", "metric")


def pcc_tables(rd: RunData) -> list[Table]:
    """One table per data role (forget, retain) from ``pcc.json``; none when the run has no such file."""
    doc = rd.file("pcc.json")
    if not doc or not isinstance(doc.get("pcc"), dict):
        return []
    return [pcc_table(role, per) for role, per in doc["pcc"].items()]


@report_section("reliability", order=400, reads=("pcc.json",), tables=pcc_tables)
def reliability_figures(rd: RunData) -> list[Figure]:
    doc = rd.file("pcc.json")
    if not doc or not isinstance(doc.get("pcc"), dict):
        return []
    n = len(doc.get("pool", []))
    out = [svg_figure(F.pcc_figure(doc["pcc"], n), "Metric reliability under red-team interventions",
                      f"Pearson correlation, over a pool of {n} models, between each metric's values before and after "
                      "each intervention, per metric and intervention; higher is better ↑ (the metric still ranks the "
                      "models the same way under attack).")]
    for role in ("forget", "retain"):
        png = rd.run.layout.file(f"scatter_{role}.png")
        if png.is_file():
            out.append(Figure(f"Before vs after, {role} data", "Each panel: one metric (row) under one intervention "
                              "(column), one dot per pool model; points on a line = a reliable metric.", png_uri(png)))
    return out
