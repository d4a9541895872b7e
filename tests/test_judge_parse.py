"""Judge rubrics and answer parsing: golden values, pinned prompt versions."""

from __future__ import annotations

import pytest

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.parse import AnswerError, extract_json_object, normalise, parse_answer
from unlearnkit.judge.rubrics import MAX_RESPONSE_CHARS, RUBRICS, get_rubric, repair_messages

# A prompt edit changes its hash; bump the rubric's version and update the hash here (and the
# prompt in docs/judge.md), so cached answers of the old prompt are never reused.
PINNED = {
    "naturalness@v1": "6c1b8df408e46632",
    "similarity@v1": "b8e9b8fc115fd4be",
    "forget@v1": "5eedb00754360d91",
    "retain@v1": "f71b69fcd536ef5e",
}


def test_prompt_versions_are_pinned():
    assert {r.prompt_id: r.prompt_hash for r in RUBRICS.values()} == PINNED


def test_prompts_are_in_the_docs():
    """docs/judge.md prints every rubric template verbatim."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "judge.md").read_text(encoding="utf-8")
    for r in RUBRICS.values():
        assert r.template in doc, f"docs/judge.md lacks the current template of {r.prompt_id}"


@pytest.mark.parametrize(
    "text, score",
    [
        ('{"score": 4, "reason": "fine"}', 4),
        ('Sure! ```json\n{"score": 4.0, "reason": "fine"}\n``` Hope this helps.', 4),  # fence + words around
        ('{"score": "5", "reason": "good"}', 5),  # numeric string
        ('{"reason": "zero", "score": 0, "extra": [1, 2]}', 0),  # extra key ignored
        ('{not json} then {"score": 2, "reason": "second object"}', 2),  # first object that decodes
    ],
)
def test_valid_answers(text, score):
    """Naturalness is 0–5: normalised score = raw / 5 (4 → 0.8, 5 → 1.0, 0 → 0.0, 2 → 0.4)."""
    p = parse_answer(text, get_rubric("naturalness"))
    assert p.criteria == {"score": score}
    assert p.score == pytest.approx(score / 5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("The answer is fluent, 4/5.", "no JSON object"),
        ('{"score": 4.5, "reason": "x"}', "integer from 0 to 5"),
        ('{"score": 6, "reason": "x"}', "got 6"),
        ('{"score": -1, "reason": "x"}', "got -1"),
        ('{"score": true, "reason": "x"}', "got true"),
        ('{"score": null, "reason": "x"}', "got null"),
        ('{"score": "four", "reason": "x"}', '"four"'),
        ('{"score": NaN, "reason": "x"}', "integer"),
        ('{"score": 3}', '"reason"'),
        ('{"score": 3, "reason": "   "}', "non-empty"),
        ('{"reason": "x"}', '"score"'),
        ("[3, \"x\"]", "no JSON object"),
    ],
)
def test_malformed_answers_raise(text, message):
    with pytest.raises(AnswerError, match=message):
        parse_answer(text, get_rubric("naturalness"))


def test_reason_is_one_line():
    p = parse_answer('{"score": 1, "reason": "  repeats\\n one word \\t over and over "}', get_rubric("naturalness"))
    assert p.reason == "repeats one word over and over"


def test_multi_criterion_normalisation():
    """forget is three 0–10 criteria: (10/10 + 5/10 + 0/10) / 3 = 0.5; retain (8/10 + 3/10) / 2 = 0.55."""
    forget = parse_answer('{"knowledge_removal": 10, "verbatim_removal": 5, "fluency": 0, "reason": "r"}',
                          get_rubric("forget"))
    assert forget.score == pytest.approx(0.5)
    assert forget.criteria == {"knowledge_removal": 10, "verbatim_removal": 5, "fluency": 0}
    assert normalise({"correctness": 8, "fluency": 3}, get_rubric("retain")) == pytest.approx(0.55)
    with pytest.raises(AnswerError, match='"verbatim_removal"'):
        parse_answer('{"knowledge_removal": 10, "fluency": 10, "reason": "r"}', get_rubric("forget"))
    with pytest.raises(AnswerError, match="from 0 to 10"):
        parse_answer('{"correctness": 11, "fluency": 3, "reason": "r"}', get_rubric("retain"))


def test_extract_json_object_skips_non_objects():
    assert extract_json_object('["a"] {"b": 1}') == {"b": 1}


def test_rendering():
    sim = get_rubric("similarity")
    msgs = sim.messages("Where was Ana born?", "In Velport.", "Ana was born in Velport.")
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert "Question: Where was Ana born?" in user and "Original answer: Ana was born in Velport." in user
    assert "Response: In Velport." in user and "$" not in user
    nat = get_rubric("naturalness").messages("Q?", "a" * (MAX_RESPONSE_CHARS + 50))[1]["content"]
    assert "a" * MAX_RESPONSE_CHARS + " …[truncated]" in nat and "a" * (MAX_RESPONSE_CHARS + 1) not in nat
    assert "Response: (empty response)" in get_rubric("naturalness").messages("Q?", "  ")[1]["content"]
    with pytest.raises(UnlearnkitError, match="non-empty reference"):
        sim.messages("Q?", "resp", "")
    fixed = repair_messages(msgs, "oops", "no JSON object found")
    assert [m["role"] for m in fixed] == ["system", "user", "assistant", "user"]
    assert fixed[2]["content"] == "oops" and "no JSON object found" in fixed[3]["content"]


def test_unknown_rubric_suggests():
    with pytest.raises(UnlearnkitError, match="Did you mean naturalness"):
        get_rubric("naturalnes")
