"""BS-T — bootstrapping at the token level (Li et al., 2025, "LLM Unlearning with LLM Beliefs").

GA lowers the target token y_i, and the softmax pushes the freed mass onto the model's other
high-likelihood tokens (the "squeezing effect": the answer comes back rephrased). BS-T also
suppresses those beliefs. Soft target per answer position:

    t_i = (1−λ)·onehot(y_i) + λ·sg(top-k renormalised π_θ(·|x, y_<i))

and the forget term (minimised) is mean_i ⟨t_i, log π_θ(·|x, y_<i)⟩
= mean_i [(1−λ)·log p_i + λ·Σ_{v∈top-k} q_i(v)·log π_θ(v|x, y_<i)], q_i = sg(π_θ restricted to
its top-k tokens, renormalised). λ = 0 is GA. The mean is over answer tokens of the batch (as
for GA), temperature scaling divides the logits (for π_θ and q alike), loss selection keeps the
answer tokens with the smallest cross-entropy. The top-k set includes y_i whenever the model
ranks it among its k most likely tokens (as in the paper's formula).
"""

from __future__ import annotations

import torch
from pydantic import Field

from unlearnkit.engine.precision import upcast
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forward_logits,
    masked_mean,
    select_lowest_loss,
    shift,
)


def bst_token_terms(logits: torch.Tensor, labels: torch.Tensor, lam: float, top_k: int, temperature: float = 1.0):
    """Per answer position: ⟨t_i, log π_θ⟩ (B, T−1), log p_i of the label (B, T−1), the answer mask.

    ``logits`` (B, T, V) and ``labels`` (B, T) unshifted, as the model sees them.
    """
    lg, tgt, mask = shift(logits, labels)
    logp = torch.log_softmax(upcast(lg) / temperature, dim=-1)  # (B, T−1, V)
    lp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    top_lp = logp.topk(min(top_k, logp.shape[-1]), dim=-1).values  # (B, T−1, k)
    q = torch.softmax(top_lp.detach(), dim=-1)  # top-k renormalised π_θ, no gradient
    belief = (q * top_lp).sum(-1)
    return (1.0 - lam) * lp + lam * belief, lp, mask


def bst_loss(model, batch, params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_BST on one batch (mean over its selected answer tokens), with the tokens' log p and mask."""
    term, lp, mask = bst_token_terms(forward_logits(model, batch), batch["labels"], params.lam, params.top_k,
                                     params.temperature)
    mask = select_lowest_loss(lp, mask, params.loss_selection)
    return masked_mean(term, mask), lp, mask


def bst_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    loss, lp, mask = bst_loss(inp.model, inp.batch, inp.params)
    return loss, {"forget_nll": float(-masked_mean(lp, mask).detach())}


class BSTParams(LMParams):
    lam: float = Field(0.2, ge=0, le=1, description="λ: weight of the model's top-k beliefs in the soft target")
    top_k: int = Field(20, ge=1, description="k: how many of the model's most likely tokens form the belief")


register(MethodSpec(
    name="bs-t", domain="llm", params=BSTParams,
    summary="bootstrapping (token): GA on a soft target mixing y with the model's top-k beliefs",
    fn=LMObjective(forget=bst_forget, default_retain="nll"),
    paper="Li et al. 2025, LLM Unlearning with LLM Beliefs (arXiv:2510.19422)",
))
