"""Batched greedy generation (left padding; stops once every sequence has emitted EOS)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearnkit.data.prompts import encode_prompt


@torch.no_grad()
def generate_ids(model, tokenizer, prompts: Sequence[list[int]], max_new_tokens: int = 200,
                 batch_size: int = 64) -> list[list[int]]:
    """Greedy continuations of token-id prompts, cut after the first EOS (EOS excluded)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = next(model.parameters()).device
    out: list[list[int]] = []
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # fewer pads per batch
    results: dict[int, list[int]] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        n = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), n), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), n), dtype=torch.long)
        for row, i in enumerate(idx):
            p = prompts[i]
            ids[row, n - len(p) :] = torch.tensor(p)
            mask[row, n - len(p) :] = 1
        gen = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
            max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad,
            num_beams=1, top_p=None, top_k=None, temperature=None,
        )[:, n:].tolist()
        for row, i in enumerate(idx):
            seq = gen[row]
            if eos in seq:
                seq = seq[: seq.index(eos)]
            results[i] = seq
    out = [results[i] for i in range(len(prompts))]
    return out


def generate_answers(model, tokenizer, questions: Sequence[str], max_new_tokens: int = 200,
                     batch_size: int = 64) -> list[str]:
    """Greedy answers to questions, formatted with the model family's prompt format."""
    prompts = [encode_prompt(tokenizer, q) for q in questions]
    ids = generate_ids(model, tokenizer, prompts, max_new_tokens, batch_size)
    return [tokenizer.decode(x, skip_special_tokens=True).strip() for x in ids]


@torch.no_grad()
def extraction_strength_by_generation(model, tokenizer, question: str, answer: str) -> float:
    """ES computed by greedy decoding, independently of the teacher-forced pass.

    For every prefix length k = 0..n−1 of the answer tokens y (EOS included), decode n−k
    tokens greedily from prompt + y_≤k; k* is the smallest k whose rollout reproduces
    y_{k+1..n}, or n if none does. ES = 1 − k*/n. Used as a cross-check of
    :func:`unlearnkit.metrics.extraction_strength` on teacher-forced argmax flags.
    """
    from unlearnkit.data.prompts import encode_answer

    prompt = encode_prompt(tokenizer, question)
    ans = encode_answer(tokenizer, answer)
    n = len(ans)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    seqs = [prompt + ans[:k] for k in range(n)]
    width = max(len(s) for s in seqs)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for k, s in enumerate(seqs):
        ids[k, width - len(s) :] = torch.tensor(s)
        mask[k, width - len(s) :] = 1
    gen = model.generate(
        input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False, max_new_tokens=n,
        min_new_tokens=n, eos_token_id=None, pad_token_id=pad, num_beams=1, top_p=None, top_k=None,
        temperature=None,
    )[:, width:].tolist()
    for k in range(n):
        if gen[k][: n - k] == ans[k:]:
            return 1.0 - k / n
    return 0.0


@torch.no_grad()
def sample_ids(model, tokenizer, prompts: Sequence[list[int]], n: int, max_new_tokens: int,
               batch_size: int = 64, temperature: float = 1.0) -> list[list[list[int]]]:
    """``n`` sampled continuations per token-id prompt (plain ancestral sampling at ``temperature``:
    no top-k / top-p truncation), batched with left padding. Each continuation is cut after its
    first EOS, which is kept (so it is a complete answer the model can be trained on); a
    continuation that hits ``max_new_tokens`` first is returned as is. Uses the global torch RNG.
    """
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: dict[int, list[list[int]]] = {}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    try:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                p = prompts[i]
                ids[row, width - len(p) :] = torch.tensor(p)
                mask[row, width - len(p) :] = 1
            gen = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True, temperature=temperature,
                top_k=0, top_p=1.0, num_return_sequences=n, max_new_tokens=max_new_tokens, eos_token_id=eos,
                pad_token_id=pad, num_beams=1,
            )[:, width:].tolist()
            for row, i in enumerate(idx):
                outs = []
                for seq in gen[row * n : (row + 1) * n]:
                    if eos in seq:
                        seq = seq[: seq.index(eos) + 1]
                    outs.append(seq)
                results[i] = outs
    finally:
        model.train(was_training)
    return [results[i] for i in range(len(prompts))]
