"""Tokenised QA data sets and seeded loaders."""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedModel

from unlearnkit.data.prompts import IGNORE, Encoded, collate, encode_pair, encode_text
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.precision import upcast


class EncodedDataset(Dataset):
    def __init__(self, items: Sequence[Encoded]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Encoded:
        return self.items[i]


def encode_records(tokenizer, records: Sequence[dict], question_key: str = "question",
                   answer_key: str = "answer", max_length: int | None = None) -> list[Encoded]:
    """(question, answer) records in the model's prompt format; a record with only ``text`` (a raw-text
    corpus passage: MUSE articles, WMDP corpora) as raw text (:func:`~unlearnkit.data.prompts.encode_text`)."""
    return [encode_text(tokenizer, r["text"], max_length) if question_key not in r and "text" in r
            else encode_pair(tokenizer, r[question_key], r[answer_key], max_length) for r in records]


def chunk_texts(tokenizer, texts: Sequence[str], max_tokens: int) -> list[dict]:
    """Raw texts cut into windows of at most ``max_tokens`` tokens (start token and EOS included), as text
    records ``{"text": …}`` for :func:`encode_records`: long documents train as consecutive chunks, as MUSE does."""
    if max_tokens < 3:
        raise ValueError("max_tokens must leave room for the start token, one text token and EOS")
    out = []
    for t in texts:
        ids = tokenizer(t, add_special_tokens=False)["input_ids"]
        step = max_tokens - 2
        out += [{"text": tokenizer.decode(ids[i : i + step])} for i in range(0, max(1, len(ids)), step)]
    return out


def make_loader(items: Sequence[Encoded], batch_size: int, pad_id: int, shuffle: bool = True,
                seed: int = 0) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(
        EncodedDataset(items), batch_size=batch_size, shuffle=shuffle, generator=g,
        collate_fn=lambda b: collate(b, pad_id),
    )


def lean_head(model):
    """(decoder, head, softcap) when the logits are head(decoder output) [softcapped]; else None."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    cfg = getattr(model, "config", None)
    if decoder is None or not isinstance(head, torch.nn.Linear) or any(
            getattr(cfg, k, None) not in (None, 1, 1.0) for k in ("logit_scale", "logits_scaling")):
        return None
    return decoder, head, getattr(cfg, "final_logit_softcapping", None)


def answer_rows(model, input_ids, attention_mask, select, lean: bool = True):
    """(rows, to_logits, vocab) at the ``select``-ed positions: the decoder's hidden states and the output head
    (softcapped where the model softcaps) that turns a block of rows into logits, so the head runs on those positions
    only; with ``lean=False`` or a model whose logits are not head(hidden), the model's own full logits and the
    identity."""
    parts = lean_head(model) if lean else None
    if parts is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[select]
        return logits, lambda rows: rows, logits.shape[-1]
    decoder, head, softcap = parts
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[select]
    return hidden, head_logits(head, softcap), head.out_features


def head_logits(head: torch.nn.Module, softcap: float | None):
    """rows → logits: the output head, then the model's final-logit softcap (tanh(x / c)·c) where it has one."""
    def to_logits(rows: torch.Tensor) -> torch.Tensor:
        logits = head(rows)
        return torch.tanh(logits / softcap) * softcap if softcap else logits

    return to_logits


def causal_lm_loss(model, input_ids, attention_mask, labels) -> torch.Tensor:
    """Mean NLL of ``labels`` (−100 = ignored) under next-token prediction, as transformers' ``ForCausalLMLoss``
    defines it (labels shifted by one), with two differences: the output head runs on the answer positions only (a
    plain transformers model in one process; otherwise the model's full logits, then those positions), and the
    logits are upcast only from half precision (:func:`~unlearnkit.engine.precision.upcast`) — transformers casts
    them to float32, which would put float32 rounding back into a float64 model's training."""
    shifted = torch.nn.functional.pad(labels, (0, 1), value=IGNORE)[..., 1:].to(input_ids.device)
    keep = shifted != IGNORE
    rows, to_logits, _ = answer_rows(model, input_ids, attention_mask, keep,
                                     lean=dist.world_size() == 1 and isinstance(model, PreTrainedModel))
    return torch.nn.functional.cross_entropy(upcast(to_logits(rows)), shifted[keep])


def sft_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean NLL over answer tokens (labels are -100 on prompt and padding)."""
    return causal_lm_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"]), {}
