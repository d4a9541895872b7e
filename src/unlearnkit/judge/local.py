"""Judge with a local Hugging Face causal LM: chat template, batched greedy generation.

The conversation is rendered with the tokenizer's chat template (``add_generation_prompt``;
a plain ``System:/User:/Assistant:`` layout when the tokenizer has none), optionally followed
by a *prefill* — the start of the assistant's answer, e.g. ``{"score":`` — that steers a small
model into the JSON format; the returned text is prefill + continuation. Generation is greedy
and batched with left padding through :func:`unlearnkit.engine.generate.generate_ids`, so the
answers are deterministic and (up to floating-point ties) independent of the batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import Field

from unlearnkit.config import StrictModel, validate
from unlearnkit.engine.generate import generate_ids
from unlearnkit.judge.base import Completion, Usage


class LocalJudgeConfig(StrictModel):
    """Decoding settings of a local judge (all part of the cache key)."""

    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    prefill: str = Field("", description='start of the assistant answer, e.g. \'{"score":\'')


def load_judge_model(name: str):
    """(model, tokenizer) for a judge: a short name (``smollm2-135m``), a saved directory or a hub name."""
    from unlearnkit.models.lm import load_model

    return load_model(name)


def weights_fingerprint(name: str) -> str | None:
    """Identity of a judge's weights (content hash, or hub name at its resolved commit)."""
    from unlearnkit.models.lm import model_id

    return model_id(name)


def render_conversation(tokenizer, conversation: list[dict[str, str]]) -> str:
    """The prompt text for a chat: the tokenizer's chat template, or a plain layout."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in conversation]
    return "\n\n".join(turns) + "\n\nAssistant:"


class LocalBackend:
    """A judge model in this process. Give it a loaded (model, tokenizer) and a ``model_id``,
    or build it with :meth:`from_pretrained`."""

    kind = "local"

    def __init__(self, model, tokenizer, model_id: str, config: LocalJudgeConfig | dict[str, Any] | None = None,
                 weights: str | None = None, **settings: Any) -> None:
        data = config.model_dump() if isinstance(config, LocalJudgeConfig) else dict(config or {})
        self.config = validate(LocalJudgeConfig, {**data, **settings}, prefix="judge")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer = model.eval(), tokenizer
        self.model_id, self.weights = model_id, weights
        self.usage = Usage()

    @classmethod
    def from_pretrained(cls, name: str | Path, loader: Callable[[str], Any] = load_judge_model,
                        **settings: Any) -> LocalBackend:
        name = str(name)
        model, tok = loader(name)
        return cls(model, tok, model_id=name, weights=weights_fingerprint(name), **settings)

    @property
    def label(self) -> str:
        return f"local:{self.model_id}"

    def identity(self) -> dict[str, Any]:
        c = self.config
        return {"kind": self.kind, "model": self.model_id, "weights": self.weights,
                "decoding": {"greedy": True, "max_new_tokens": c.max_new_tokens, "prefill": c.prefill}}

    def complete(self, conversations: list[list[dict[str, str]]]) -> list[Completion]:
        tok, prefill = self.tokenizer, self.config.prefill
        prompts = [tok(render_conversation(tok, conv) + prefill, add_special_tokens=False)["input_ids"]
                   for conv in conversations]
        if not prompts:
            return []
        outs = generate_ids(self.model, tok, prompts, self.config.max_new_tokens, self.config.batch_size)
        self.usage.add(requests=len(prompts), prompt_tokens=sum(map(len, prompts)),
                       completion_tokens=sum(map(len, outs)))
        return [Completion(prefill + tok.decode(o, skip_special_tokens=True), len(p), len(o))
                for p, o in zip(prompts, outs)]
