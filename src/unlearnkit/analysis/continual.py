"""Continual unlearning (docs/analysis.md): k forget requests applied one after another.

The forget split is cut into k requests by subject (contiguous runs of subjects, sizes as equal
as possible; see :func:`forget_requests`). Stage j unlearns request j from the output of stage
j − 1 with the method's hyperparameters unchanged (same learning rate, epochs over *that*
request, seed); the retain data are the same D_r at every stage (``retainXX`` never contains
any request). After every stage the model is evaluated on the full benchmark against θ_r
(retrained without the whole forget split), and forget ES is also split into the requests
already processed ("forgotten so far") and those still to come.

``unlearnkit run continual=k`` (:mod:`unlearnkit.recipes.continual`) records every stage j < k as
an entry of its own (``<entry>__stage<j>``, resumable), the curve in the entry's results, and for
the run ``continual.json`` / ``continual.csv`` / ``continual.png`` with the curves of cumulative
decline. With k = 1 the run is the normal run (same directory, same results). The report's section
of ``continual.json`` (:mod:`unlearnkit.results.sections`) is at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.results import figures as F
from unlearnkit.results.sections import figure_section

STAGE_KEYS = {"mu": "mu", "fq_log_p": "fq_log_p", "forget_es_exact": "forget.es_exact",
              "forget_es_perturb": "forget.es_perturb", "retain_es_exact": "retain.es_exact",
              "retain_prob": "retain.prob", "ra_rouge": "ra.rouge", "wf_rouge": "wf.rouge", "privleak": "privleak"}


def forget_requests(records: list[dict], k: int, subject_names: list[str] | None) -> list[list[int]]:
    """Record indices of k requests: contiguous groups of whole subjects, as equal as possible."""
    from unlearnkit.data.halves import subject_blocks

    if k < 1:
        raise UnlearnkitError(f"continual must be ≥ 1 (the number of forget requests), got {k}")
    blocks = subject_blocks(records, subject_names)
    if k > len(blocks):
        raise UnlearnkitError(f"continual={k} needs at least {k} subjects in the forget split, which has {len(blocks)}: "
                              f"use continual ≤ {len(blocks)} or a larger forget split")
    cuts = np.array_split(np.arange(len(blocks)), k)
    return [[i for b in c for i in blocks[b]] for c in cuts]


def stage_summary(res, stage: int, forget_questions: list[str] | None = None,
                  request_questions: list[set[str]] | None = None, keys: dict[str, str] | None = None) -> dict[str, Any]:
    """Aggregates of one stage (``keys``: curve key → aggregate, default TOFU's) plus forget ES-exact on requests
    done (≤ stage) and to come (> stage)."""
    out: dict[str, Any] = {"stage": stage}
    out.update({k: res.get(v) for k, v in (keys or STAGE_KEYS).items()})
    if forget_questions is not None and request_questions is not None:
        es = res.per_sample["forget"]["es_exact"]
        done = [e for q, e in zip(forget_questions, es, strict=True)
                if any(q in request_questions[j] for j in range(stage))]
        todo = [e for q, e in zip(forget_questions, es, strict=True)
                if any(q in request_questions[j] for j in range(stage, len(request_questions)))]
        out["forget_es_done"] = float(np.mean(done)) if done else None
        out["forget_es_to_come"] = float(np.mean(todo)) if todo else None
    return out


def curves_rows(curves: dict[str, list[dict]]) -> list[dict]:
    return [{"entry": e, **s} for e, ss in curves.items() for s in ss]


def plot_curves(curves: dict[str, list[dict]], k: int, path: Path) -> Path:
    """The curves of cumulative decline: one panel per metric, one line per method entry."""
    from unlearnkit.results.plots import pyplot, save_figure

    plt = pyplot()
    panels = (("mu", "MU ↑"), ("retain_es_exact", "retain ES-exact ↑"), ("forget_es_exact", "forget ES-exact (all) ↓"),
              ("forget_es_done", "forget ES-exact, requests done ↓"), ("fq_log_p", "FQ (ln p) vs θ_r ↑"))
    first = next(iter(curves.values()), [{}])[0]
    if "mu" not in first:  # another task: one panel per curve key it records
        panels = tuple((key, key) for key in first if key != "stage")[:6]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for e, ss in curves.items():
            xs = [s["stage"] for s in ss if s.get(key) is not None]
            ax.plot(xs, [s[key] for s in ss if s.get(key) is not None], marker="o", ms=3, label=e)
        ax.set_xlabel("stage (0 = θ_o)")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(k + 1))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Continual unlearning: {k} forget requests applied one after another")
    return save_figure(fig, path)


def continual_unlearn(model, tok, spec, params, requests: list[list[dict]], retain_records: list[dict],
                      refusals: list[str] | None, after_stage: Callable[[int, Any], None] | None = None,
                      start: int = 0, desc: str = "") -> list:
    """Apply the requests start..k−1 in order to ``model`` (in place); ``after_stage(j, log)`` after each
    (j is 1-based). Returns the training logs. With one request this is exactly ``unlearn``."""
    from unlearnkit.methods.unlearn import unlearn

    logs = []
    for j in range(start, len(requests)):
        log = unlearn(model, tok, spec, params, requests[j], retain_records, refusals, desc=f"{desc} stage {j + 1}")
        logs.append(log)
        if after_stage is not None:
            after_stage(j + 1, log)
    return logs


continual_figures = figure_section(  # The report's curves per stage (``continual.json``).
    "continual", order=900, file="continual.json", needs="curves", draw=F.continual_figure, title="Continual unlearning",
    caption=lambda doc: (f"{doc.get('stages', '?')} forget requests applied one after another (stage 0 = θ_o): utility "
             "and retain ES-exact should stay high (↑), forget ES-exact — overall and on the requests already "
             "processed — should fall (↓), FQ should rise (↑)."))