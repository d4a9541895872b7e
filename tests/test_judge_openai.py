"""The OpenAI-compatible judge end to end, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading

import pytest

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge import JudgeCache, JudgeItem, OpenAIBackend, judge_responses, make_backend

from .judge_helpers import ChatServer, user_text

OK = '{"score": 4, "reason": "fluent answer"}'
ITEMS = [JudgeItem(id=f"q{i}", question=f"Where was author {i} born?", response=f"Author {i} was born in Velport.",
                   reference=f"Author {i} was born in Brenholm.") for i in range(6)]


def backend(server: ChatServer, **kw) -> OpenAIBackend:
    settings = {"base_url": server.url, "backoff_base": 0.0, "concurrency": 1, **kw}
    b = OpenAIBackend(model="judge-model", **settings)
    b._sleep = lambda s: None  # backoff delays are checked in test_backoff_schedule
    return b


def test_valid_answers_and_token_accounting(tmp_path):
    with ChatServer(lambda body, n: OK) as srv:
        b = backend(srv, price_prompt_per_1k=2.0, price_completion_per_1k=4.0)
        res = judge_responses(b, "similarity", ITEMS[:3], cache=JudgeCache(tmp_path))
    assert [r.score for r in res] == [0.8, 0.8, 0.8] and [r.item_id for r in res] == ["q0", "q1", "q2"]
    r = res[0]
    assert (r.prompt_version, r.backend, r.judge_model, r.attempts, r.raw) == ("similarity@v1", "openai", "judge-model", 1, [OK])
    assert (r.prompt_tokens, r.completion_tokens, r.reason) == (10, 5, "fluent answer")
    # 3 requests × (10 prompt + 5 completion) tokens; cost = (30 × 2 + 15 × 4) / 1000 = 0.12
    assert b.usage.as_dict() == {"requests": 3, "retries": 0, "failed": 0, "prompt_tokens": 30,
                                 "completion_tokens": 15, "cost": pytest.approx(0.12)}
    body = srv.requests[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0 and body["max_tokens"] == 128
    assert "Original answer: Author 0 was born in Brenholm." in user_text(body)


def test_cost_is_unknown_without_prices(tmp_path):
    with ChatServer(lambda body, n: OK) as srv:
        b = backend(srv)
        judge_responses(b, "naturalness", ITEMS[:1], cache=False)
    assert b.usage.cost is None


def test_concurrency_limit_holds():
    """A barrier of 3 parties in the handler: every round needs 3 requests at once, and no more may come."""
    barrier = threading.Barrier(3, timeout=60)
    with ChatServer(lambda body, n: OK, gate=barrier.wait) as srv:
        b = backend(srv, concurrency=3)
        items = [JudgeItem(id=str(i), question="Q?", response=f"answer {i}") for i in range(9)]
        res = judge_responses(b, "naturalness", items, cache=False)
    assert all(r.score == 0.8 for r in res)
    assert srv.count == 9 and srv.max_in_flight == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_error_then_success(status):
    replies = [(status, "try again", {}), OK]
    with ChatServer(lambda body, n: replies[min(n, 1)]) as srv:
        b = backend(srv)
        [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=False)
    assert r.score == 0.8 and r.attempts == 1 and r.raw == [OK]
    assert srv.count == 2 and b.usage.retries == 1 and b.usage.requests == 2


def test_timeout_then_success():
    slow = threading.Event()

    def reply(body, n):
        if n == 0:
            slow.wait(60)  # longer than the client's timeout; released at the end
        return OK

    with ChatServer(reply) as srv:
        b = backend(srv, timeout=1.0)
        try:
            [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=False)
        finally:
            slow.set()
    # the first request timed out and was retried (a very busy machine may need more than one retry)
    assert r.score == 0.8 and srv.count >= 2 and b.usage.retries == srv.count - 1 and b.usage.failed == 0


def test_backoff_schedule():
    """Delays: base · 2^k capped at backoff_max → 0.5, 1, 2, 2 (cap 2); Retry-After 3 s wins but is capped too."""
    replies = [(500, "x", {})] * 4 + [(429, "slow down", {"Retry-After": "3"}), OK]
    with ChatServer(lambda body, n: replies[n]) as srv:
        b = backend(srv, backoff_base=0.5, backoff_max=2.0, max_retries=5)
        sleeps: list[float] = []
        b._sleep = sleeps.append
        [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=False)
    assert r.score == 0.8
    assert sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_retries_exhausted_is_missing_and_not_cached(tmp_path):
    cache = JudgeCache(tmp_path)
    with ChatServer(lambda body, n: (500, "down", {})) as srv:
        b = backend(srv, max_retries=2)
        [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=cache)
        assert r.missing and r.score is None and "backend error" in r.missing_reason and "after 3 attempts" in r.missing_reason
        assert srv.count == 3 and b.usage.failed == 1
        judge_responses(b, "naturalness", ITEMS[:1], cache=cache)
        assert srv.count == 6  # nothing was cached: the rerun asks again
    assert cache.stats["writes"] == 0


def test_malformed_then_valid():
    replies = ["I would rate this a four.", OK]
    with ChatServer(lambda body, n: replies[n]) as srv:
        b = backend(srv)
        [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=False)
    assert r.score == 0.8 and r.attempts == 2 and r.raw == ["I would rate this a four.", OK]
    repair = srv.requests[1]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert repair[2]["content"] == "I would rate this a four." and "no JSON object found" in repair[3]["content"]


def test_permanently_malformed_is_missing_with_raw_text_and_cached(tmp_path):
    cache = JudgeCache(tmp_path)
    with ChatServer(lambda body, n: '{"score": 9, "reason": "off the scale"}') as srv:
        b = backend(srv)
        [r] = judge_responses(b, "naturalness", ITEMS[:1], cache=cache, max_parse_retries=2)
        assert r.missing and r.score is None and r.criteria == {}
        assert r.attempts == 3 and r.raw == ['{"score": 9, "reason": "off the scale"}'] * 3
        assert r.missing_reason.startswith("malformed answer after 3 attempts") and "got 9" in r.missing_reason
        assert srv.count == 3
        [again] = judge_responses(b, "naturalness", ITEMS[:1], cache=cache, max_parse_retries=2)
        assert srv.count == 3 and again == r  # a judge's malformed answer is its answer: cached


def test_cache_hit_on_rerun_sends_nothing_and_is_byte_identical(tmp_path):
    cache = JudgeCache(tmp_path)
    with ChatServer(lambda body, n: OK) as srv:
        b = backend(srv, concurrency=2)
        first = judge_responses(b, "similarity", ITEMS, cache=cache)
        files = {p: p.read_bytes() for p in tmp_path.rglob("*.json")}
        assert srv.count == len(ITEMS) and len(files) == len(ITEMS)
        second = judge_responses(b, "similarity", ITEMS, cache=cache)
        assert srv.count == len(ITEMS)  # no request sent
        assert [r.model_dump_json() for r in second] == [r.model_dump_json() for r in first]
        assert {p: p.read_bytes() for p in tmp_path.rglob("*.json")} == files
        assert cache.stats["hits"] == len(ITEMS)
        # another rubric, retry budget or decoding setting is another key
        judge_responses(b, "naturalness", ITEMS[:1], cache=cache)
        judge_responses(b, "similarity", ITEMS[:1], cache=cache, max_parse_retries=0)
        judge_responses(backend(srv, max_tokens=64), "similarity", ITEMS[:1], cache=cache)
        assert srv.count == len(ITEMS) + 3


def test_damaged_cache_file_is_recomputed(tmp_path):
    cache = JudgeCache(tmp_path)
    with ChatServer(lambda body, n: OK) as srv:
        b = backend(srv)
        judge_responses(b, "naturalness", ITEMS[:2], cache=cache)
        paths = sorted(tmp_path.rglob("*.json"))
        entry = json.loads(paths[0].read_text())
        entry["result"]["score"] = 0.0  # tampered: the content hash no longer matches
        paths[0].write_text(json.dumps(entry))
        paths[1].write_text("{ truncated")
        res = judge_responses(b, "naturalness", ITEMS[:2], cache=cache)
        assert srv.count == 4 and [r.score for r in res] == [0.8, 0.8]
        assert cache.stats["damaged"] == 2
        judge_responses(b, "naturalness", ITEMS[:2], cache=cache)
        assert srv.count == 4  # rewritten files are good again
        # a consistent entry whose result no longer validates (an older format) is damaged too
        from unlearnkit.judge.cache import _sha256

        entry = json.loads(paths[0].read_text())
        entry["result"]["score"] = 7.0
        entry["sha256"] = _sha256(entry["result"])
        paths[0].write_text(json.dumps(entry))
        judge_responses(b, "naturalness", ITEMS[:2], cache=cache)
        assert srv.count == 5 and cache.stats["damaged"] == 3


def test_chunks_are_cached_as_they_finish(tmp_path):
    """chunk_size=2: a server that dies on the 5th request still leaves the first two chunks cached."""
    cache = JudgeCache(tmp_path)
    with ChatServer(lambda body, n: OK if n < 4 else (401, "gone", {})) as srv:
        with pytest.raises(UnlearnkitError):
            judge_responses(backend(srv), "naturalness", ITEMS, cache=cache, chunk_size=2)
    assert cache.stats["writes"] == 4 and len(list(tmp_path.rglob("*.json"))) == 4
    with pytest.raises(UnlearnkitError, match="chunk_size >= 1"):
        judge_responses(backend(srv), "naturalness", ITEMS, cache=False, chunk_size=0)


def test_json_mode_and_seed_are_sent():
    with ChatServer(lambda body, n: OK) as srv:
        judge_responses(backend(srv, json_mode=True, seed=7), "naturalness", ITEMS[:1], cache=False)
    assert srv.requests[0]["response_format"] == {"type": "json_object"} and srv.requests[0]["seed"] == 7


def test_fatal_http_errors_name_the_fix(monkeypatch):
    with ChatServer(lambda body, n: (401, "bad key", {})) as srv:
        with pytest.raises(UnlearnkitError, match="set OPENAI_API_KEY"):
            judge_responses(backend(srv), "naturalness", ITEMS[:1], cache=False)
    with ChatServer(lambda body, n: (404, "no such model", {})) as srv:
        with pytest.raises(UnlearnkitError, match="base-url"):
            judge_responses(backend(srv), "naturalness", ITEMS[:1], cache=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UnlearnkitError, match="OPENAI_API_KEY"):
        OpenAIBackend(model="gpt-x")  # the official endpoint needs a key
    with pytest.raises(UnlearnkitError, match="concurrency"):
        OpenAIBackend(model="m", base_url="http://127.0.0.1:1/v1", concurrency=0)


def test_api_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-123")
    seen = []
    with ChatServer(lambda body, n: OK) as srv:
        srv.handle_orig = srv.handle

        def spy(h):
            seen.append(h.headers.get("Authorization"))
            srv.handle_orig(h)

        srv.handle = spy
        b = make_backend("openai:judge-model", base_url=srv.url, api_key_env="MY_JUDGE_KEY")
        judge_responses(b, "naturalness", ITEMS[:1], cache=False)
    assert seen == ["Bearer sk-test-123"]


def test_bad_backend_spec():
    with pytest.raises(UnlearnkitError, match="local:MODEL or openai:MODEL"):
        make_backend("gpt-4o")
