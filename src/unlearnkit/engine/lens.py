"""The logit lens: an answer's log-probability read out after every decoder layer.

For a prompt x, answer tokens y_1..y_n (the answer ends with EOS) and a model of L decoder layers with residual
stream h_l after layer l (h_0 the embeddings, as the model feeds them to layer 1), the read-out at layer l is

    lens_l(x, y) = (1/n) Σ_i log softmax(head(norm(h_l)))[y_i]   at the position that predicts y_i,

with ``norm`` the model's final norm and ``head`` its output head (softcapped where the model softcaps its logits):
the answer's mean token log-probability if the model stopped after layer l. At l = L the read-out is the model's
own mean answer log-probability (the decoder's output already went through the final norm, so it goes to the head
as it is). The encoding — prompt format, answer tokens with EOS, context check — is the one of
:func:`unlearnkit.engine.passes.teacher_forced_pass`. The attack's value per sample is the best layer's read-out,
max over l (:func:`best_layer`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from unlearnkit.data.prompts import IGNORE, Encoded, collate, encode_pair, fit_to_context
from unlearnkit.engine.data import head_logits, lean_head
from unlearnkit.engine.passes import chunked_rows, model_context
from unlearnkit.engine.precision import upcast
from unlearnkit.errors import UnlearnkitError

# Where each supported family keeps its final norm (attribute path from the causal-LM model).
FINAL_NORMS = ("model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm")


def final_norm(model) -> torch.nn.Module:
    """The model's final norm, the module between the last decoder layer and the output head."""
    for path in FINAL_NORMS:
        obj = model
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if isinstance(obj, torch.nn.Module):
            return obj
    raise UnlearnkitError(f"the logit lens cannot find the final norm of {type(model).__name__}: it supports models "
                          "that keep it at " + ", ".join(FINAL_NORMS) + " (Llama-style, GPT-2, GPT-NeoX); use one")


def _lens_parts(model):
    """(decoder, to_logits, norm, vocab): the decoder, its output head as a function of rows (softcapped as the model
    softcaps, :func:`~unlearnkit.engine.data.lean_head`), the final norm and the vocabulary size."""
    parts = lean_head(model)
    if parts is None:
        raise UnlearnkitError(f"the logit lens needs a model whose logits are its output head applied to the decoder's "
                              f"output, and {type(model).__name__} scales or wraps them: use a plain causal LM")
    decoder, head, softcap = parts
    return decoder, head_logits(head, softcap), final_norm(model), head.out_features


def _target_logprob(logits: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor]:
    """(log π(tgt | row) per row of ``logits``,)."""
    return (torch.log_softmax(upcast(logits), dim=-1).gather(1, tgt[:, None])[:, 0],)


def _lens_batch(model, parts, items: list[Encoded], pad_id: int) -> np.ndarray:
    """Mean answer log-prob of each item of one batch at every layer  # (L + 1, batch)."""
    decoder, to_logits, norm, vocab = parts
    device = next(model.parameters()).device
    batch = collate(items, pad_id)
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    targets = batch["labels"][:, 1:].to(device)  # token t+1 is predicted at position t
    select = torch.zeros_like(ids, dtype=torch.bool)
    select[:, :-1] = targets != IGNORE  # (batch, seq)
    tgt = targets[targets != IGNORE]  # (N,)
    sample = torch.arange(len(items), device=device)[:, None].expand_as(select)[select]  # (N,) row → item
    counts = (targets != IGNORE).sum(1).double()  # (batch,)
    out = decoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    states = [norm(h[select]) for h in out.hidden_states[:-1]] + [out.last_hidden_state[select]]  # L + 1 × (N, d)
    rows = []
    for h in states:
        parts = chunked_rows(h, to_logits, vocab, tgt, _target_logprob)
        lp = (torch.cat([p[0] for p in parts]) if parts else tgt).double()
        rows.append(torch.zeros(len(items), dtype=torch.float64, device=device).index_add_(0, sample, lp) / counts)
    return torch.stack(rows).cpu().numpy()


@torch.no_grad()
def encoded_lens(model, tokenizer, encoded: Sequence[Encoded], batch_size: int = 32) -> np.ndarray:
    """:func:`lens_logprobs` on already tokenised items  # (L + 1, n)."""
    parts = _lens_parts(model)
    out = None
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            vals = _lens_batch(model, parts, [encoded[i] for i in idx], tokenizer.pad_token_id)
            out = np.zeros((vals.shape[0], len(encoded))) if out is None else out
            out[:, idx] = vals
    finally:
        model.train(was_training)
    return np.zeros((getattr(model.config, "num_hidden_layers", 0) + 1, 0)) if out is None else out


def lens_logprobs(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 32,
                  truncate: bool = False) -> np.ndarray:
    """Mean answer-token log-prob of each (question, answer) pair read out after every layer: row l is layer l
    (0 the embeddings, L the last layer, equal to :func:`~unlearnkit.engine.passes.teacher_forced_pass`'s
    ``mean_logprob()``), column i the i-th pair  # (L + 1, n)."""
    encoded = fit_to_context([encode_pair(tokenizer, q, a) for q, a in pairs], model_context(model),
                             "(question, answer) pairs", truncate)
    return encoded_lens(model, tokenizer, encoded, batch_size)


def best_layer(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (column of ``values``, (layers, n)), the best layer's read-out and that layer (the first of ties)
    # 2 × (n,)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"expected a (layers, samples) array with at least one layer, got shape {values.shape}")
    layer = values.argmax(0)
    return values[layer, np.arange(values.shape[1])], layer
