"""WTNPO — weighted token-wise NPO (Wang et al., 2025, "Rethinking LLM Unlearning Objectives").

TNPO's token weight multiplied by WGA's: forget term (minimised) mean_i sg(w_i)·log p_i with
w_i = 2p_i^(β+α) / (p_i^β + p_ref,i^β) = p_i^α · 2σ(β(log p_i − log p_ref,i)).
α = 0 is TNPO. Temperature scaling divides the logits of θ and θ_o alike.
"""

from __future__ import annotations

import torch
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forget_token_logprobs,
    reference_token_logprobs,
    weighted_forget_term,
)
from unlearnkit.methods.llm.tnpo import tnpo_weights
from unlearnkit.methods.llm.wga import wga_weights


def wtnpo_weights(token_lp: torch.Tensor, ref_lp: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """w_i = 2p_i^(β+α) / (p_i^β + p_ref,i^β) = p_i^α · 2σ(β(log p_i − log p_ref,i))  (no gradient)."""
    return wga_weights(token_lp, alpha) * tnpo_weights(token_lp, ref_lp, beta)


def wtnpo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    ref_lp, _ = reference_token_logprobs(inp.reference, inp.batch, inp.params.temperature)
    w = wtnpo_weights(lp, ref_lp, inp.params.weight_alpha, inp.params.beta)
    return weighted_forget_term(lp, w, mask)


class WTNPOParams(LMParams):
    weight_alpha: float = Field(1.5, ge=0, description="α: extra exponent of p_i in the token weight "
                                                       "(not `alpha`, the retain-term weight)")
    beta: float = Field(4.0, gt=0, description="β: the TNPO exponent")


register(MethodSpec(
    name="wtnpo", domain="llm", params=WTNPOParams,
    summary="weighted token-wise NPO: GA with token weights 2p^(β+α)/(p^β+p_ref^β)",
    fn=LMObjective(forget=wtnpo_forget, default_retain="none", needs_reference=True),
    paper="Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond (arXiv:2502.19301)",
    needs=("reference",),
))
