"""Prompt formatting and tokenisation with answer-only labels.

A model family decides its prompt format: the tokenizer's chat template where it has one,
else ``Question: {q}\\nAnswer: {a}``. The prompt and the answer are tokenised separately
and concatenated, so the boundary is exact; labels are ``-100`` on every prompt token, so
losses and metrics see answer tokens only. The answer ends with the EOS token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

IGNORE = -100
PLAIN_PROMPT = "Question: {q}\nAnswer:"


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
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_text(tokenizer, question: str) -> str:
    """The text the model sees before its answer."""
    if uses_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_PROMPT.format(q=question)


def encode_prompt(tokenizer, question: str) -> list[int]:
    text = prompt_text(tokenizer, question)
    if uses_chat_template(tokenizer):
        # chat templates already contain the BOS text where the family wants it
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def encode_answer(tokenizer, answer: str) -> list[int]:
    ids = tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def encode_pair(tokenizer, question: str, answer: str, max_length: int | None = None) -> Encoded:
    p, a = encode_prompt(tokenizer, question), encode_answer(tokenizer, answer)
    if max_length is not None and len(p) + len(a) > max_length:
        a = a[: max(1, max_length - len(p))]
    return Encoded(p, a)


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
