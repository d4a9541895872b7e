"""How far to trust a judge: agreement of judges and proxies with the labelled set.

For each scorer and metric:

- **naturalness** is compared with the label ``natural``; **similarity** (higher = more
  different) with ``not same_meaning``.
- **threshold rule**: a score in [0, 1] predicts the positive label iff ``score ≥ 0.5`` — the
  middle of every scale (on the 0–5 rubrics: raw 3, 4 or 5). It is fixed, not fitted.
- **balanced accuracy** = mean over the two label values of the recall of that value
  (0.5 = chance, whatever the class balance).
- **Spearman** ρ between the scores and the 0/1 labels (scipy; ties averaged); NaN when the
  scores are constant.
- missing judgements are left out of both numbers and counted (``scored`` of ``n``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from unlearnkit.judge.base import Backend, JudgeItem, JudgeResult
from unlearnkit.judge.cache import JudgeCache
from unlearnkit.judge.core import judge_responses
from unlearnkit.judge.labelled import LabelledCase, load_labelled

THRESHOLD = 0.5
LABELS = {"naturalness": "natural", "similarity": "different"}


@runtime_checkable
class Scorer(Protocol):
    """Anything that gives [0, 1] scores (or None = missing) for some of the judge metrics."""

    name: str
    metrics: tuple[str, ...]

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]: ...


class JudgeScorer:
    """A backend as a :class:`Scorer`: the naturalness and similarity rubrics through the cache."""

    metrics = ("naturalness", "similarity")

    def __init__(self, backend: Backend, cache: JudgeCache | bool = True, max_parse_retries: int = 2) -> None:
        self.backend, self.cache, self.max_parse_retries = backend, cache, max_parse_retries
        self.name = backend.label
        self.results: dict[str, list[JudgeResult]] = {}

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]:
        res = judge_responses(self.backend, metric, items, cache=self.cache, max_parse_retries=self.max_parse_retries)
        self.results[metric] = res
        return [r.score for r in res]


@dataclass(frozen=True)
class AgreementRow:
    scorer: str
    metric: str
    label: str
    n: int
    scored: int
    balanced_accuracy: float
    spearman: float
    seconds: float
    scores: tuple[float | None, ...] = field(default=(), repr=False)  # per case, in the order of the cases


def label_of(case: LabelledCase, metric: str) -> bool:
    return case.natural if metric == "naturalness" else not case.same_meaning


def balanced_accuracy(predicted: Sequence[bool], truth: Sequence[bool]) -> float:
    """Mean over the label values present in ``truth`` of the recall of that value."""
    recalls = []
    for value in sorted(set(truth)):
        idx = [i for i, t in enumerate(truth) if t == value]
        recalls.append(sum(predicted[i] == value for i in idx) / len(idx))
    return sum(recalls) / len(recalls) if recalls else math.nan


def spearman(scores: Sequence[float], labels: Sequence[bool]) -> float:
    from scipy.stats import spearmanr

    if len(scores) < 2 or len(set(scores)) < 2 or len(set(labels)) < 2:
        return math.nan
    return float(spearmanr(scores, [int(x) for x in labels]).statistic)


def as_scorer(obj) -> Scorer:
    if isinstance(obj, Scorer):
        return obj
    if isinstance(obj, Backend):
        return JudgeScorer(obj)
    raise TypeError(f"expected a judge backend or a scorer, got {type(obj).__name__}")


def agreement(scorer: Scorer | Backend, cases: Sequence[LabelledCase] | None = None,
              metrics: Sequence[str] | None = None) -> list[AgreementRow]:
    """One row per metric the scorer gives (see the module doc for the numbers)."""
    scorer = as_scorer(scorer)
    cases = load_labelled() if cases is None else list(cases)
    items = [c.item() for c in cases]
    rows = []
    for metric in scorer.metrics:
        if metrics is not None and metric not in metrics:
            continue
        t0 = time.perf_counter()
        scores = scorer.score(metric, items)
        seconds = time.perf_counter() - t0
        kept = [(s, label_of(c, metric)) for s, c in zip(scores, cases) if s is not None]
        s_kept, t_kept = [s for s, _ in kept], [t for _, t in kept]
        ba = balanced_accuracy([s >= THRESHOLD for s in s_kept], t_kept) if kept else math.nan
        rows.append(AgreementRow(scorer.name, metric, LABELS[metric], len(cases), len(kept), ba,
                                 spearman(s_kept, t_kept), seconds, tuple(scores)))
    return rows


def agreement_table(rows: Sequence[AgreementRow]) -> str:
    """The rows as a text table (``unlearnkit.results.tables.format_table``)."""
    from unlearnkit.results.tables import format_table

    body = [[r.scorer, r.metric, r.label, f"{r.scored}/{r.n}", r.balanced_accuracy, r.spearman, f"{r.seconds:.1f}"]
            for r in rows]
    table = format_table(["judge / proxy", "metric", "label", "scored", "balanced acc", "Spearman", "s"], body, digits=3)
    return table + f"\nthreshold: score >= {THRESHOLD} predicts the label; missing judgements are left out."


def category_table(rows: Sequence[AgreementRow], cases: Sequence[LabelledCase]) -> str:
    """Mean score per labelled-set category (columns) for every row: where a judge goes wrong."""
    from unlearnkit.results.tables import format_table

    cats = list(dict.fromkeys(c.category for c in cases))
    body = []
    for r in rows:
        means = []
        for cat in cats:
            vals = [s for s, c in zip(r.scores, cases) if c.category == cat and s is not None]
            means.append(sum(vals) / len(vals) if vals else None)
        body.append([r.scorer, r.metric, *means])
    return format_table(["judge / proxy", "metric", *cats], body, digits=2)
