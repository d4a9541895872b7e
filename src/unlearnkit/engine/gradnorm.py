"""Per-sample gradient norms for the GradNorm membership-inference attack (docs/metrics.md).

For one (question, answer) pair or raw text, the loss is the mean answer-token NLL; the norm is
‖∇_θ loss‖_p over every floating-point parameter of the model (p = 1, 2 or inf). Gradients come
from :func:`torch.autograd.grad`, so the parameters' ``.grad`` buffers, their ``requires_grad``
flags, the RNG and the model's train/eval mode are exactly as before (safe as a probe during
training).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unlearnkit.data.prompts import Encoded, collate
from unlearnkit.engine.data import causal_lm_loss
from unlearnkit.engine.precision import upcast


def _norm(grads: list[torch.Tensor], p: int | str) -> float:
    if p == "inf":
        return max(float(g.abs().max()) for g in grads)
    if p == 1:
        return float(sum(g.abs().sum() for g in grads))
    return float(torch.sqrt(sum((upcast(g) ** 2).sum() for g in grads)))


def gradient_norms(model, tokenizer, encoded: Sequence[Encoded], p: int | str = 2) -> list[float]:
    """‖∇_θ mean NLL(x)‖_p for each item (one backward pass per item)."""
    if p not in (1, 2, "inf"):
        raise ValueError(f"p must be 1, 2 or 'inf', got {p!r}")
    device = next(model.parameters()).device
    params = [q for q in model.parameters() if q.is_floating_point()]
    flags = [q.requires_grad for q in params]
    was_training = model.training
    model.eval()
    out = []
    try:
        for q in params:
            q.requires_grad_(True)
        with torch.enable_grad():
            for e in encoded:
                batch = collate([e], tokenizer.pad_token_id)
                loss = causal_lm_loss(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                      batch["labels"].to(device))
                out.append(_norm([g for g in torch.autograd.grad(loss, params, allow_unused=True) if g is not None], p))
    finally:
        for q, f in zip(params, flags):
            q.requires_grad_(f)
        model.train(was_training)
    return out
