"""Tokenised QA data sets and seeded loaders."""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from unlearnkit.data.prompts import Encoded, collate, encode_pair, encode_text


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


def sft_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean NLL over answer tokens (labels are -100 on prompt and padding)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    return out.loss, {}
