"""The attack setting's section of the report (``unlearnkit attack`` writes ``attacks.json`` into its nested run
``attacks/<setting>/``): per entry the recovery of the forgetting under each attack and the worst case — lower is
better ↓ (the forgetting survives). Original's recovery is undefined (it forgot nothing); Retrain's is the floor.
"""

from __future__ import annotations

from unlearnkit.metrics.robustness import worst_recovery
from unlearnkit.results.html import Column, Figure, Table, TableRow
from unlearnkit.results.sections import RunData, report_section

_REFERENCES = {"original": "Original", "retrain": "Retrain"}


def recovery_tables(rd: RunData) -> list[Table]:
    """The entry × attack recovery table of ``attacks.json``; none when the run has no such file."""
    doc = rd.file("attacks.json")
    rec = doc.get("recoveries") if doc else None
    if not isinstance(rec, dict) or not rec:
        return []
    attacks = list(next(iter(rec.values())))
    rows = []
    for entry, per in rec.items():
        vals = [per.get(a) for a in attacks]
        rows.append(TableRow(_REFERENCES.get(entry, entry), [("-" if v is None else f"{v:.4f}", v)
                                                            for v in [*vals, worst_recovery(vals)]],
                             reference=entry in _REFERENCES))
    metric = doc.get("recovery_metric", "es")
    return [Table([*(Column(a, False) for a in attacks), Column("worst", False)], rows,
                  f"Recovery of forget {metric} under each attack, (m_attacked − m_u) / (m_o − m_u) on the held-out "
                  "half: 0 = the forgetting survives, 1 = θ_o's value restored (lower is better ↓; docs/metrics.md)",
                  "entry")]


@report_section("attacks", order=450, reads=("attacks.json",), tables=recovery_tables)
def attack_figures(rd: RunData) -> list[Figure]:
    """The section is its table (no figure yet)."""
    return []
