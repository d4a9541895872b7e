"""Data types shared by the judge loop, its backends and its cache."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class JudgeItem(BaseModel):
    """One response to judge. ``reference`` is the original (or ground-truth) answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    question: str
    response: str
    reference: str = ""


class JudgeResult(BaseModel):
    """One judgement. ``score`` is in [0, 1] (higher = better) or ``None`` when missing.

    A missing result keeps every raw answer (``raw``) and says why (``missing_reason``); it is
    never scored 0. Everything here is deterministic for a given cache key (no times, no
    counters of the current run), so a rerun from the cache is byte-identical.
    """

    model_config = ConfigDict(extra="forbid")

    item_id: str
    rubric: str
    prompt_version: str  # e.g. "naturalness@v1"
    prompt_hash: str
    backend: str  # "openai" | "local"
    judge_model: str
    score: float | None = Field(None, ge=0.0, le=1.0)
    criteria: dict[str, int] = {}  # raw integers on the rubric's scale
    reason: str | None = None
    missing_reason: str | None = None
    raw: list[str] = []  # the judge's text, one entry per attempt
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def missing(self) -> bool:
        return self.score is None


@dataclass
class Completion:
    """A backend's answer to one conversation: text, or an error after the backend's own retries."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass
class Usage:
    """Requests, tokens and cost of one backend object (thread-safe counters).

    ``cost`` is ``None`` (unknown) unless a price per 1k tokens was configured.
    """

    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    requests: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, retries: int = 0, failed: int = 0, prompt_tokens: int = 0,
            completion_tokens: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.failed += failed
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens

    @property
    def cost(self) -> float | None:
        if not (self.price_prompt_per_1k or self.price_completion_per_1k):
            return None
        return (self.prompt_tokens * self.price_prompt_per_1k + self.completion_tokens * self.price_completion_per_1k) / 1000

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries, "failed": self.failed,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "cost": self.cost}


@runtime_checkable
class Backend(Protocol):
    """What the judge loop needs from a judge model.

    ``identity()`` returns everything that decides the answers besides the conversation
    (backend kind, model id, endpoint, decoding settings); it is part of the cache key.
    ``complete`` answers every conversation, in order; transport failures that outlive the
    backend's retries come back as ``Completion(text=None, error=...)``.
    """

    kind: str
    model_id: str
    usage: Usage

    def identity(self) -> dict[str, Any]: ...

    def complete(self, conversations: list[list[dict[str, str]]]) -> list[Completion]: ...

    @property
    def label(self) -> str: ...
