"""The judge's section of the report: per method, the LLM judge's (``judge.*``) and the offline proxies'
(``proxy.*``) scores — the columns ``unlearnkit judge`` adds to the run's first table."""

from __future__ import annotations

import numpy as np

from unlearnkit.results import figures as F
from unlearnkit.results.html import Figure
from unlearnkit.results.sections import RunData, report_section, svg_figure
from unlearnkit.results.tables import row_values

JUDGE_PREFIXES = ("judge.", "proxy.")


@report_section("judge", order=300)
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
    return [svg_figure(F.judge_figure(rows, metrics), "Judge scores",
                       "Per method, the LLM judge's (judge.*) and the offline proxies' (proxy.*) scores of its answers "
                       "to the forget questions, mean over seeds, in [0, 1], higher is better ↑: naturalness = fluent "
                       "and logical (gibberish scores low); similarity = the meaning differs from the original model's "
                       "answer (a rephrased leak scores low). See docs/judge.md for how far each judge agrees with "
                       "human labels.")]
