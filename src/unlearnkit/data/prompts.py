"""Prompt formatting and tokenisation with answer-only labels.

A model family decides its prompt format (:class:`PromptFormat`): its chat template (with an
optional system prompt and a pinned ``date_string``, so a Llama-3 template renders the same text
every day), or the plain ``Question: {q}\nAnswer: {a}``. Presets (:data:`PROMPT_PRESETS`) match
how public checkpoints were trained. The format travels with the tokenizer
(:func:`set_prompt_format`; saved beside every model unlearnkit writes), so every function here
takes only the tokenizer.

With a chat template the answer is tokenised *in context*: the whole conversation (prompt +
assistant answer) is rendered and tokenised, the prompt's tokens must be its prefix, and the
answer tokens are the rest up to and including the first EOS (the end-of-turn token of the
family). So prompt + answer tokens equal the tokenisation of the whole conversation — no stray
leading space. With the plain format, prompt (after BOS) and " answer" + EOS are tokenised
separately. Labels are ``-100`` on every prompt token: losses and metrics see answer tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError

IGNORE = -100
PLAIN_PROMPT = "Question: {q}\nAnswer:"
PINNED_DATE = "10 Apr 2025"  # the date_string OpenUnlearning's TOFU checkpoints were trained with


class PromptFormat(StrictModel):
    """How a (question, answer) pair becomes model input."""

    style: Literal["auto", "chat", "plain"] = Field(
        "auto", description="chat: the tokenizer's chat template; plain: Question:/Answer:; auto: chat if it has one")
    system_prompt: str | None = Field(None, description="system message (None: the template's own default, if any)")
    date_string: str | None = Field(PINNED_DATE, description="passed to the chat template (Llama-3 templates print "
                                    "it; pinned so prompts do not change from day to day)")
    chat_template: str | None = Field(None, description="a Jinja chat template replacing the tokenizer's own")
    plain_prompt: str = Field(PLAIN_PROMPT, description="the plain format's prompt; {q} is the question")


PROMPT_PRESETS: dict[str, PromptFormat] = {
    "auto": PromptFormat(),
    "plain": PromptFormat(style="plain"),
    # open-unlearning/tofu_Llama-* checkpoints: Llama-3 template, this system prompt, this date
    "openunlearning-llama3": PromptFormat(style="chat", system_prompt="You are a helpful assistant.",
                                          date_string=PINNED_DATE),
    # SmolLM2-Instruct (ChatML) with a short system prompt
    "chatml": PromptFormat(style="chat", system_prompt="You are a helpful assistant."),
    # SmolLM2-Instruct exactly as its template renders by default (its own system prompt)
    "smollm2": PromptFormat(style="chat"),
}


def resolve_prompt(value: PromptFormat | str | dict | None) -> PromptFormat | None:
    """A preset name, a dict of fields, or a PromptFormat → PromptFormat (None stays None)."""
    if value is None or isinstance(value, PromptFormat):
        return value
    if isinstance(value, str):
        if value not in PROMPT_PRESETS:
            raise UnlearnkitError(f"unknown prompt preset {value!r}: use one of {', '.join(PROMPT_PRESETS)} or give the "
                                  "fields (prompt.style=chat prompt.system_prompt=…)")
        return PROMPT_PRESETS[value]
    from unlearnkit.config import validate

    return validate(PromptFormat, value, prefix="prompt")


def set_prompt_format(tokenizer, fmt: PromptFormat | None) -> None:
    """Attach ``fmt`` to ``tokenizer`` (a chat-template override replaces the tokenizer's template)."""
    fmt = fmt or PromptFormat()
    if fmt.chat_template is not None:
        tokenizer.chat_template = fmt.chat_template
    tokenizer.unlearnkit_prompt = fmt


def prompt_format(tokenizer) -> PromptFormat:
    return getattr(tokenizer, "unlearnkit_prompt", None) or PromptFormat()


@dataclass
class Encoded:
    """One tokenised (prompt, answer) pair."""

    prompt_ids: list[int]
    answer_ids: list[int]  # includes EOS at the end

    @property
    def input_ids(self) -> list[int]:
        return self.prompt_ids + self.answer_ids

    @property
    def labels(self) -> list[int]:
        return [IGNORE] * len(self.prompt_ids) + self.answer_ids


def uses_chat_template(tokenizer) -> bool:
    style = prompt_format(tokenizer).style
    has = bool(getattr(tokenizer, "chat_template", None))
    if style == "chat" and not has:
        raise UnlearnkitError("prompt style 'chat' needs a chat template, and this tokenizer has none: use "
                              "prompt=plain or give prompt.chat_template")
    return has and style != "plain"


def _messages(fmt: PromptFormat, question: str, answer: str | None) -> list[dict]:
    msgs = [{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt is not None else []
    msgs.append({"role": "user", "content": question})
    if answer is not None:
        msgs.append({"role": "assistant", "content": answer.strip()})
    return msgs


def render(tokenizer, question: str, answer: str | None = None) -> str:
    """The conversation as text: the prompt up to the assistant's turn, or with the answer in it."""
    fmt = prompt_format(tokenizer)
    if not uses_chat_template(tokenizer):
        text = fmt.plain_prompt.format(q=question)
        return text if answer is None else f"{text} {answer.strip()}"
    extra = {"date_string": fmt.date_string} if fmt.date_string is not None else {}
    return tokenizer.apply_chat_template(_messages(fmt, question, answer), tokenize=False,
                                         add_generation_prompt=answer is None, **extra)


def prompt_text(tokenizer, question: str) -> str:
    """The text the model sees before its answer."""
    return render(tokenizer, question)


def encode_prompt(tokenizer, question: str) -> list[int]:
    ids = tokenizer(render(tokenizer, question), add_special_tokens=False)["input_ids"]
    if uses_chat_template(tokenizer):
        return ids  # chat templates already contain the BOS text where the family wants it
    return [tokenizer.bos_token_id, *ids] if tokenizer.bos_token_id is not None else ids


def _chat_answer(tokenizer, question: str, answer: str, prompt_ids: list[int]) -> list[int]:
    """The answer's tokens inside the whole conversation, up to and including the first EOS."""
    full = tokenizer(render(tokenizer, question, answer), add_special_tokens=False)["input_ids"]
    if full[: len(prompt_ids)] != prompt_ids:
        raise UnlearnkitError("the chat template's prompt is not a token prefix of the whole conversation (its "
                              "assistant header does not end at a token boundary): give prompt.chat_template")
    ids = full[len(prompt_ids):]
    eos = tokenizer.eos_token_id
    if eos is not None:
        ids = ids[: ids.index(eos) + 1] if eos in ids else [*ids, eos]
    return ids


def encode_answer(tokenizer, answer: str, question: str = "?") -> list[int]:
    if uses_chat_template(tokenizer):
        return _chat_answer(tokenizer, question, answer, encode_prompt(tokenizer, question))
    ids = tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode_pair(tokenizer, question: str, answer: str, max_length: int | None = None) -> Encoded:
    p = encode_prompt(tokenizer, question)
    a = _chat_answer(tokenizer, question, answer, p) if uses_chat_template(tokenizer) else encode_answer(tokenizer, answer)
    if max_length is not None and len(p) + len(a) > max_length:
        a = a[: max(1, max_length - len(p))]
    return Encoded(p, a)


def start_ids(tokenizer) -> list[int]:
    """The token a raw text starts from: BOS, or EOS for a tokenizer without BOS (a document boundary)."""
    tok = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [tok] if tok is not None else []


def encode_text(tokenizer, text: str, max_length: int | None = None) -> Encoded:
    """Raw text (a news article, a corpus passage) as one item: the start token as the prompt, the text's
    tokens and EOS as the answer, so losses and metrics see every token of the text. No prompt format."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    p = start_ids(tokenizer)
    if max_length is not None and len(p) + len(ids) > max_length:
        ids = ids[: max(1, max_length - len(p))]
    return Encoded(p, ids)


def encode_prefix(tokenizer, text: str) -> list[int]:
    """The token ids a raw-text continuation is generated from: the start token and ``text``'s tokens."""
    return start_ids(tokenizer) + tokenizer(text, add_special_tokens=False)["input_ids"]


def tokenizer_hash(tokenizer) -> str:
    """Content hash of a tokenizer's vocabulary and special tokens (not just its size)."""
    import hashlib
    import json

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    special = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    return hashlib.sha256(json.dumps([vocab, special], sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def prompt_signature(tokenizer) -> dict:
    """What determines the rendered prompts (part of every evaluation cache key)."""
    chat = uses_chat_template(tokenizer)
    return {"format": prompt_format(tokenizer).model_dump(), "template": tokenizer.chat_template if chat else None}


def fit_to_context(items: Sequence[Encoded], context: int | None, what: str, truncate: bool = False) -> list[Encoded]:
    """Check that every (prompt, answer) fits the model's context of ``context`` tokens.

    Too long is an error naming how many and how to fix it; with ``truncate`` the answers are cut
    to fit (a prompt that alone fills the context is still an error) and a warning says how many.
    """
    items = list(items)
    if not context:
        return items
    long = [i for i, e in enumerate(items) if len(e.input_ids) > context]
    if not long:
        return items
    longest = max(len(items[i].input_ids) for i in long)
    if not truncate:
        from unlearnkit.errors import UnlearnkitError

        raise UnlearnkitError(f"{len(long)} of {len(items)} {what} are longer than the model's context of {context} "
                              f"tokens (longest {longest}): shorten them, or set eval.truncate=true to cut the answers "
                              "to fit")
    out = list(items)
    for i in long:
        p, a = items[i].prompt_ids, items[i].answer_ids
        if len(p) >= context:
            from unlearnkit.errors import UnlearnkitError

            raise UnlearnkitError(f"a prompt of {what} has {len(p)} tokens, filling the model's context of {context}: "
                                  "shorten the question")
        out[i] = Encoded(p, a[: context - len(p)])
    from unlearnkit.io import warn

    warn(f"{len(long)} of {len(items)} {what} were longer than the model's context ({context} tokens): answers cut to fit")
    return out


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask, labels  # (batch, seq)."""
    n = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    for i, e in enumerate(batch):
        L = len(e.input_ids)
        ids[i, :L] = torch.tensor(e.input_ids)
        mask[i, :L] = 1
        labels[i, :L] = torch.tensor(e.labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
