"""The judge loop: render each item with a rubric, ask the backend, parse, repair, cache.

``judge_responses(backend, rubric, items)`` returns one :class:`JudgeResult` per item, in
order. For the items not in the cache it sends every conversation to the backend in one call
(the backend batches or runs them concurrently); answers that do not parse get a repair turn
(the judge's own answer plus the parse error, :func:`~unlearnkit.judge.rubrics.repair_messages`)
and are asked again, up to ``max_parse_retries`` times, then recorded as missing with every
raw answer. Parsed and permanently malformed results are cached; a transport failure (the
backend gave up after its own retries) is returned as missing and not cached, so a rerun
asks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.base import Backend, JudgeItem, JudgeResult
from unlearnkit.judge.cache import JudgeCache, key_material
from unlearnkit.judge.parse import AnswerError, parse_answer
from unlearnkit.judge.rubrics import Rubric, get_rubric, repair_messages


@dataclass
class _Pending:
    """An item on its way through the attempts."""

    conversation: list[dict[str, str]]
    raw: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_error: str = ""


def _result(backend: Backend, rubric: Rubric, item: JudgeItem, p: _Pending, **fields) -> JudgeResult:
    return JudgeResult(
        item_id=item.id, rubric=rubric.name, prompt_version=rubric.prompt_id, prompt_hash=rubric.prompt_hash,
        backend=backend.kind, judge_model=backend.model_id, raw=list(p.raw), attempts=len(p.raw),
        prompt_tokens=p.prompt_tokens, completion_tokens=p.completion_tokens, **fields,
    )


def _attempt(backend: Backend, rubric: Rubric, items: Sequence[JudgeItem], pending: dict[int, _Pending],
             done: dict[int, JudgeResult], cacheable: set[int]) -> dict[int, _Pending]:
    """One round: ask for every pending item; return those whose answer did not parse."""
    order = sorted(pending)
    completions = backend.complete([pending[i].conversation for i in order])
    again: dict[int, _Pending] = {}
    for i, c in zip(order, completions):
        p = pending[i]
        p.prompt_tokens += c.prompt_tokens
        p.completion_tokens += c.completion_tokens
        if c.text is None:
            done[i] = _result(backend, rubric, items[i], p, missing_reason=f"backend error: {c.error}")
            continue
        p.raw.append(c.text)
        try:
            parsed = parse_answer(c.text, rubric)
        except AnswerError as e:
            p.last_error = str(e)
            p.conversation = repair_messages(p.conversation, c.text, str(e))
            again[i] = p
            continue
        done[i] = _result(backend, rubric, items[i], p, score=parsed.score, criteria=parsed.criteria,
                          reason=parsed.reason)
        cacheable.add(i)
    return again


def _cached(store: JudgeCache, key: dict, item_id: str) -> JudgeResult | None:
    """The cached result, or None (a stored result that no longer validates counts as damaged)."""
    hit = store.get(key)
    if hit is None:
        return None
    try:
        return JudgeResult.model_validate({**hit, "item_id": item_id})
    except ValidationError:
        store.stats["damaged"] += 1
        return None


def judge_responses(backend: Backend, rubric: str | Rubric, items: Sequence[JudgeItem], *,
                    cache: JudgeCache | bool = True, max_parse_retries: int = 2,
                    chunk_size: int = 256) -> list[JudgeResult]:
    """Judge every item with ``rubric``; one result per item, in order (see the module doc).

    ``cache``: True = the default cache under ``$UNLEARNKIT_HOME/cache/judge``, False = none,
    or a :class:`JudgeCache`. ``max_parse_retries``: repair turns after a malformed answer.
    Items go to the backend ``chunk_size`` at a time and each chunk is cached when it is done,
    so an interrupted run keeps what it has judged.
    """
    rubric = get_rubric(rubric)
    if max_parse_retries < 0 or chunk_size < 1:
        raise UnlearnkitError(f"judge needs max_parse_retries >= 0 and chunk_size >= 1 "
                              f"(got {max_parse_retries}, {chunk_size})")
    store = JudgeCache() if cache is True else (cache or None)
    out: list[JudgeResult] = []
    for s in range(0, len(items), chunk_size):
        out.extend(_judge_chunk(backend, rubric, items[s : s + chunk_size], store, max_parse_retries))
    return out


def _judge_chunk(backend: Backend, rubric: Rubric, items: Sequence[JudgeItem], store: JudgeCache | None,
                 max_parse_retries: int) -> list[JudgeResult]:
    identity = backend.identity()
    keys = [key_material(identity, rubric, it, max_parse_retries) for it in items]
    done: dict[int, JudgeResult] = {}
    pending: dict[int, _Pending] = {}
    for i, it in enumerate(items):
        hit = _cached(store, keys[i], it.id) if store else None
        if hit is not None:
            done[i] = hit
        else:
            pending[i] = _Pending(rubric.messages(it.question, it.response, it.reference))
    cacheable: set[int] = set()
    for _ in range(1 + max_parse_retries):
        if not pending:
            break
        pending = _attempt(backend, rubric, items, pending, done, cacheable)
    for i, p in pending.items():
        done[i] = _result(backend, rubric, items[i], p,
                          missing_reason=f"malformed answer after {len(p.raw)} attempts: {p.last_error}")
        cacheable.add(i)
    if store:
        for i in sorted(cacheable):
            store.put(keys[i], done[i])
    return [done[i] for i in range(len(items))]
