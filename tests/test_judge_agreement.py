"""The labelled set and the agreement numbers (golden values; a judge over loopback)."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge import (
    AgreementRow,
    OpenAIBackend,
    RepetitionFluency,
    agreement,
    agreement_table,
    balanced_accuracy,
    category_table,
    load_labelled,
    spearman,
)
from unlearnkit.judge.labelled import LabelledCase

from .judge_helpers import ChatServer, user_text

EXPECTED_LABELS = {  # category → (natural, same_meaning)
    "unchanged": (True, True), "rephrase": (True, True), "refusal": (True, False),
    "wrong_fluent": (True, False), "collapse": (False, False), "collapse_fact": (False, True),
}


def test_labelled_set_is_shipped_and_consistent():
    cases = load_labelled()
    assert len(cases) >= 60 and len({c.id for c in cases}) == len(cases)
    counts = Counter(c.category for c in cases)
    assert set(counts) == set(EXPECTED_LABELS) and min(counts.values()) >= 6
    for c in cases:
        assert (c.natural, c.same_meaning) == EXPECTED_LABELS[c.category], c.id
        assert c.question.endswith("?") and c.original.strip() and c.response.strip()
    seed = {c.id: c for c in cases if "seed" in c.note}
    assert {c.response for c in seed.values()} >= {"She mainly writes in English."}


def test_labelled_loader_errors_name_the_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    good = load_labelled()[0].model_dump()
    p.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "X", "natural": "maybe"}) + "\n")
    with pytest.raises(UnlearnkitError, match="line 2"):
        load_labelled(p)
    p.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(UnlearnkitError, match="unique id"):
        load_labelled(p)
    with pytest.raises(UnlearnkitError, match="does not exist"):
        load_labelled(tmp_path / "none.jsonl")


def test_balanced_accuracy_and_spearman_golden():
    """truth T,T,T,F; predicted T,F,T,F → recall(T) = 2/3, recall(F) = 1 → (2/3 + 1) / 2 = 5/6.

    Spearman of scores 0.1, 0.2, 0.9, 0.8 against labels 0, 0, 1, 1: ranks 1, 2, 4, 3 and 1.5, 1.5, 3.5, 3.5;
    deviations −1.5, −0.5, 1.5, 0.5 and −1, −1, 1, 1 → ρ = 4 / √(5 · 4) = 0.894427.
    """
    assert balanced_accuracy([True, False, True, False], [True, True, True, False]) == pytest.approx(5 / 6)
    assert spearman([0.1, 0.2, 0.9, 0.8], [False, False, True, True]) == pytest.approx(4 / math.sqrt(20))
    assert math.isnan(spearman([0.5, 0.5, 0.5], [False, True, True]))


class Oracle:
    """A scorer that knows the labels (perfect agreement), leaving out every fifth case."""

    name = "oracle"
    metrics = ("naturalness", "similarity")

    def __init__(self, cases: list[LabelledCase]) -> None:
        self.by_response = {(c.question, c.response): c for c in cases}

    def score(self, metric, items):
        out = []
        for k, it in enumerate(items):
            c = self.by_response[(it.question, it.response)]
            good = c.natural if metric == "naturalness" else not c.same_meaning
            out.append(None if k % 5 == 0 else (0.9 if good else 0.1))
        return out


def test_agreement_of_a_perfect_scorer():
    cases = load_labelled()
    rows = agreement(Oracle(cases), cases)
    assert [(r.metric, r.label) for r in rows] == [("naturalness", "natural"), ("similarity", "different")]
    for r in rows:
        assert (r.n, r.scored) == (len(cases), len(cases) - math.ceil(len(cases) / 5))
        assert r.balanced_accuracy == 1.0 and r.spearman == pytest.approx(1.0)
        assert len(r.scores) == len(cases) and r.scores[0] is None
    text = category_table(rows, cases)
    assert text.splitlines()[2].startswith("| oracle ") and "collapse_fact" in text
    assert text.splitlines()[2].split("|")[3].strip() == "0.90"  # unchanged cases: natural → 0.9


def test_agreement_of_the_repetition_proxy():
    """distinct-2 ≥ 0.5 on every fluent case and below it on most collapsed ones."""
    [row] = agreement(RepetitionFluency())
    assert row.metric == "naturalness" and row.scored == row.n
    assert row.balanced_accuracy > 0.8 and row.spearman > 0.5


def test_agreement_through_a_judge_over_loopback(tmp_path):
    """A server that answers from the labels: the client, parser and agreement agree end to end."""
    cases = load_labelled()
    by_response = {c.response.strip()[:200]: c for c in cases}

    def reply(body, n):
        text = user_text(body)
        response = text.split("\nResponse: ", 1)[1].split("\n\nReply with JSON", 1)[0]
        c = by_response[response.replace(" …[truncated]", "")[:200]]
        if "NATURAL" in text:
            return json.dumps({"score": 5 if c.natural else 1, "reason": "per label"})
        return json.dumps({"score": 0 if c.same_meaning else 4, "reason": "per label"})

    with ChatServer(reply) as srv:
        b = OpenAIBackend(model="oracle", base_url=srv.url, concurrency=4)
        rows = agreement(b, cases)
    assert srv.count == 2 * len(cases)
    assert [(r.scorer, r.balanced_accuracy, r.scored) for r in rows] == [("openai:oracle", 1.0, len(cases))] * 2


def test_agreement_table_prints_every_row():
    rows = [AgreementRow("local:smollm2-135m", "naturalness", "natural", 62, 60, 0.75, 0.5, 12.0),
            AgreementRow("proxy:distinct-2", "naturalness", "natural", 62, 62, 0.9, float("nan"), 0.0)]
    text = agreement_table(rows)
    assert "| local:smollm2-135m | naturalness |" in text and "60/62" in text and "0.750" in text and "nan" in text
    assert "score >= 0.5" in text
