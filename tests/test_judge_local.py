"""The local Hugging Face judge on a tiny random-init chat model."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge import JudgeCache, JudgeItem, LocalBackend, judge_responses, make_backend
from unlearnkit.judge.local import render_conversation
from unlearnkit.judge.rubrics import get_rubric

from .judge_helpers import tiny_chat_model

ITEMS = [
    JudgeItem(id="a", question="Where was Ana born?", response="Ana was born in Velport.", reference="In Brenholm."),
    JudgeItem(id="b", question="What does Oskar write?", response="always always always always", reference="Poems."),
    JudgeItem(id="c", question="Who?", response="I don't know.", reference="Nobody at all, as far as anyone can tell."),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-judge")
    model, tok = tiny_chat_model(path)
    return model, tok, path


def test_chat_template_is_applied(tiny):
    model, tok, _ = tiny
    conv = get_rubric("naturalness").messages("Q?", "A.")
    text = render_conversation(tok, conv)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    tok_plain = type(tok).from_pretrained(tiny[2])
    tok_plain.chat_template = None
    plain = render_conversation(tok_plain, conv)
    assert plain.startswith("System: ") and plain.endswith("\n\nAssistant:")


def test_deterministic_and_batching_equals_one_by_one(tiny):
    model, tok, _ = tiny
    convs = [get_rubric("similarity").messages(it.question, it.response, it.reference) for it in ITEMS]
    batched = LocalBackend(model, tok, "tiny", batch_size=3, max_new_tokens=12).complete(convs)
    again = LocalBackend(model, tok, "tiny", batch_size=3, max_new_tokens=12).complete(convs)
    single = LocalBackend(model, tok, "tiny", batch_size=1, max_new_tokens=12).complete(convs)
    assert [c.text for c in batched] == [c.text for c in again] == [c.text for c in single]
    assert all(c.completion_tokens <= 12 and c.prompt_tokens > 50 for c in batched)


def test_prefill_starts_the_answer(tiny):
    model, tok, _ = tiny
    b = LocalBackend(model, tok, "tiny", max_new_tokens=4, prefill='{"score":')
    [c] = b.complete([get_rubric("naturalness").messages("Q?", "A.")])
    assert c.text.startswith('{"score":')
    assert b.identity()["decoding"] == {"greedy": True, "max_new_tokens": 4, "prefill": '{"score":'}


def test_random_model_answers_are_missing_not_zero(tiny, tmp_path):
    """A random model writes no JSON: every result is missing, keeps its raw text, and is cached."""
    _, _, path = tiny
    b = LocalBackend.from_pretrained(path, max_new_tokens=8)
    assert b.identity()["weights"] and b.label == f"local:{path}"
    cache = JudgeCache(tmp_path)
    res = judge_responses(b, "naturalness", ITEMS, cache=cache, max_parse_retries=1)
    assert all(r.missing and r.score is None and r.attempts == 2 and len(r.raw) == 2 for r in res)
    assert all(r.backend == "local" and r.prompt_version == "naturalness@v1" for r in res)
    assert b.usage.requests == 6
    again = judge_responses(b, "naturalness", ITEMS, cache=cache, max_parse_retries=1)
    assert b.usage.requests == 6 and [r.model_dump_json() for r in again] == [r.model_dump_json() for r in res]


def test_make_backend_local(tiny):
    b = make_backend(f"local:{tiny[2]}", batch_size=2)
    assert isinstance(b, LocalBackend) and b.config.batch_size == 2
    with pytest.raises(UnlearnkitError, match="does not exist"):
        make_backend("local:./no/such/model")
    with pytest.raises(UnlearnkitError, match="batch_size"):
        LocalBackend(tiny[0], tiny[1], "tiny", batch_size=0)


def test_logprob_scorer_is_the_expected_score_and_batch_independent(tiny):
    """score = Σ_k p(k) · k / 5, p(k) ∝ π(" k") + π(" ") · π("k" | " ") after '{"score":' (k = 0..5)."""
    from unlearnkit.judge import LogprobScorer
    from unlearnkit.judge.logprob import PREFILL

    model, tok, _ = tiny
    batched = LogprobScorer(model, tok, "tiny", batch_size=3).score("similarity", ITEMS)
    single = LogprobScorer(model, tok, "tiny", batch_size=1).score("similarity", ITEMS)
    assert batched == pytest.approx(single, abs=1e-6) and all(0.0 <= s <= 1.0 for s in batched)
    it = ITEMS[0]
    text = render_conversation(tok, get_rubric("similarity").messages(it.question, it.response, it.reference)) + PREFILL
    space = tok(" ", add_special_tokens=False)["input_ids"][0]
    ids = tok(text, add_special_tokens=False)["input_ids"] + [space]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -2:].double()
    first, second = logits[0].log_softmax(-1), logits[1].log_softmax(-1)
    p = []
    for k in range(6):
        merged, bare = tok(f" {k}", add_special_tokens=False)["input_ids"], tok(str(k), add_special_tokens=False)["input_ids"]
        pk = first[merged[0]].exp() if len(merged) == 1 else 0.0
        p.append(float(pk + (first[space] + second[bare[0]]).exp()))
    expected = sum(k / 5 * pk for k, pk in enumerate(p)) / sum(p)
    assert single[0] == pytest.approx(expected, abs=1e-9)
    with pytest.raises(UnlearnkitError, match="not 'forget'"):
        LogprobScorer(model, tok, "tiny").score("forget", ITEMS)
