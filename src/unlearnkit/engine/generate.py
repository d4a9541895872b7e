"""Batched greedy generation (left padding; stops once every sequence has emitted EOS)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearnkit.data.prompts import encode_prompt
from unlearnkit.engine import distributed as dist


def left_pad(seqs: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Token-id sequences as one left-padded batch: (input_ids, attention_mask, width)."""
    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, x in enumerate(seqs):
        ids[row, width - len(x) :] = torch.tensor(x)
        mask[row, width - len(x) :] = 1
    return ids, mask, width


def _length_sorted_batches(prompts: Sequence[list[int]], batch_size: int):
    """Indices of ``prompts`` in batches of similar length (fewer pads per batch)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for s in range(0, len(order), batch_size):
        yield order[s : s + batch_size]


@torch.no_grad()
def generate_ids(model, tokenizer, prompts: Sequence[list[int]], max_new_tokens: int = 200,
                 batch_size: int = 64) -> list[list[int]]:
    """Greedy continuations of token-id prompts, cut after the first EOS (EOS excluded).

    With several processes the length-sorted batches are shared out round robin and gathered back in
    prompt order (every process gets all of them; each batch is the batch one process would decode).
    """
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    device = next(model.parameters()).device
    results: dict[int, list[int]] = {}
    for idx in dist.shard(list(_length_sorted_batches(prompts, batch_size))):
        ids, mask, width = left_pad([prompts[i] for i in idx], pad)
        gen = model.generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
            max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad,
            num_beams=1, top_p=None, top_k=None, temperature=None,
        )[:, width:].tolist()
        for row, i in enumerate(idx):
            seq = gen[row]
            if eos in seq:
                seq = seq[: seq.index(eos)]
            results[i] = seq
    if dist.world_size() > 1:
        results = {i: v for part in dist.gather(results) for i, v in part.items()}
    return [results[i] for i in range(len(prompts))]


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
    ids, mask, width = left_pad([prompt + ans[:k] for k in range(n)], pad)
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
    try:
        for idx in _length_sorted_batches(prompts, batch_size):
            ids, mask, width = left_pad([prompts[i] for i in idx], pad)
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


def sample_answers(model, tokenizer, questions: Sequence[str], n: int, temperature: float = 1.0,
                   max_new_tokens: int = 64, seed: int = 0, batch_size: int = 64) -> list[list[str]]:
    """``n`` answers per question sampled from the full distribution (:func:`sample_ids`), decoded
    without EOS. Uses its own seeded RNG: the caller's RNG state is unchanged."""
    prompts = [encode_prompt(tokenizer, q) for q in questions]
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        ids = sample_ids(model, tokenizer, prompts, n, max_new_tokens, max(1, batch_size // n), temperature)
    return [[tokenizer.decode(s, skip_special_tokens=True).strip() for s in per] for per in ids]
