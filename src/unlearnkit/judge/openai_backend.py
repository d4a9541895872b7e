"""Judge through any OpenAI-compatible chat-completions endpoint (hosted API, vLLM, Ollama,
llama.cpp server) with the ``openai`` client.

- the API key is read from an environment variable (``api_key_env``, default ``OPENAI_API_KEY``);
  a self-hosted endpoint (``base_url`` given) may run without one;
- at most ``concurrency`` requests are in flight (a thread pool of that size);
- 429, 5xx, timeouts and connection errors are retried ``max_retries`` times with exponential
  backoff ``min(backoff_max, backoff_base · 2^attempt)`` (a ``Retry-After`` header, when longer,
  wins, still capped); the ``openai`` client's own retries are switched off so this policy is
  the only one;
- 401/403/404 raise :class:`UnlearnkitError` at once (they need the user, not a retry); other
  4xx answers become a missing result for that item;
- tokens are counted from ``usage`` of each response; cost = tokens × price per 1k tokens,
  ``None`` (unknown) while both prices are 0.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from unlearnkit.config import StrictModel, validate
from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.base import Completion, Usage


class OpenAIJudgeConfig(StrictModel):
    """Settings of an OpenAI-compatible judge endpoint."""

    model: str = Field(..., min_length=1)
    base_url: str | None = Field(None, description="e.g. http://localhost:8000/v1; None = the client's default")
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(4, ge=1, le=256)
    max_retries: int = Field(5, ge=0)
    backoff_base: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    timeout: float = Field(60.0, gt=0)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(128, ge=1)
    seed: int | None = None
    json_mode: bool = Field(False, description="send response_format={'type': 'json_object'}")
    price_prompt_per_1k: float = Field(0.0, ge=0)
    price_completion_per_1k: float = Field(0.0, ge=0)


def _retry_after(err) -> float:
    try:
        return float(err.response.headers.get("retry-after", 0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


class OpenAIBackend:
    """A judge behind an OpenAI-compatible endpoint (see the module doc)."""

    kind = "openai"

    def __init__(self, config: OpenAIJudgeConfig | dict[str, Any] | None = None, **settings: Any) -> None:
        try:
            import openai
        except ImportError:
            raise UnlearnkitError("the openai judge needs the openai client: pip install 'unlearnkit[judge]'") from None
        data = config.model_dump() if isinstance(config, OpenAIJudgeConfig) else dict(config or {})
        self.config = validate(OpenAIJudgeConfig, {**data, **settings}, prefix="judge")
        cfg = self.config
        key = os.environ.get(cfg.api_key_env)
        if not key and cfg.base_url is None:
            raise UnlearnkitError(f"the judge needs an API key: set the environment variable {cfg.api_key_env}")
        self.model_id = cfg.model
        self.usage = Usage(cfg.price_prompt_per_1k, cfg.price_completion_per_1k)
        self._openai = openai
        self._client = openai.OpenAI(api_key=key or "no-key", base_url=cfg.base_url, timeout=cfg.timeout, max_retries=0)
        self._sleep = time.sleep

    @property
    def label(self) -> str:
        return f"openai:{self.model_id}"

    def identity(self) -> dict[str, Any]:
        c = self.config
        return {"kind": self.kind, "model": c.model, "base_url": c.base_url,
                "decoding": {"temperature": c.temperature, "max_tokens": c.max_tokens, "seed": c.seed,
                             "json_mode": c.json_mode}}

    def complete(self, conversations: list[list[dict[str, str]]]) -> list[Completion]:
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(conversations))) as pool:
            return list(pool.map(self._one, conversations))

    def _request(self, messages: list[dict[str, str]]):
        c = self.config
        extra: dict[str, Any] = {}
        if c.seed is not None:
            extra["seed"] = c.seed
        if c.json_mode:
            extra["response_format"] = {"type": "json_object"}
        return self._client.chat.completions.create(model=c.model, messages=messages, temperature=c.temperature,
                                                    max_tokens=c.max_tokens, **extra)

    def _fatal(self, err) -> UnlearnkitError:
        status = getattr(err, "status_code", None)
        if status in (401, 403):
            return UnlearnkitError(f"the judge endpoint refused the API key (HTTP {status}): "
                                   f"set {self.config.api_key_env} to a valid key")
        return UnlearnkitError(f"the judge endpoint has no model {self.config.model!r} or no chat-completions route "
                               f"(HTTP {status}): check --base-url (it usually ends in /v1) and the model name")

    def _one(self, messages: list[dict[str, str]]) -> Completion:
        o, c = self._openai, self.config
        retryable = (o.RateLimitError, o.InternalServerError, o.APITimeoutError, o.APIConnectionError)
        error, last = "", None
        for attempt in range(c.max_retries + 1):
            if attempt:
                self.usage.add(retries=1)
                self._sleep(min(c.backoff_max, max(c.backoff_base * 2 ** (attempt - 1), _retry_after(last))))
            self.usage.add(requests=1)
            try:
                resp = self._request(messages)
            except (o.AuthenticationError, o.PermissionDeniedError, o.NotFoundError) as e:
                raise self._fatal(e) from None
            except retryable as e:
                last, error = e, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                continue
            except o.APIStatusError as e:
                last, error = e, f"HTTP {e.status_code}: {str(e).splitlines()[0][:200]}"
                if e.status_code >= 500:
                    continue
                break
            return self._completion(resp)
        self.usage.add(failed=1)
        return Completion(None, error=f"{error} (after {attempt + 1} attempts)")

    def _completion(self, resp) -> Completion:
        u = getattr(resp, "usage", None)
        pt, ct = (u.prompt_tokens or 0, u.completion_tokens or 0) if u is not None else (0, 0)
        self.usage.add(prompt_tokens=pt, completion_tokens=ct)
        choices = getattr(resp, "choices", None) or []
        text = choices[0].message.content if choices else None
        if text is None:
            return Completion(None, pt, ct, error="the response has no choices[0].message.content")
        return Completion(text, pt, ct)
