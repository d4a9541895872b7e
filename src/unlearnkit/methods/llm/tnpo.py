"""TNPO — token-wise NPO (Wang et al., 2025, "Rethinking LLM Unlearning Objectives").

NPO's gradient is GA's reweighted per sequence by w = 2p^β / (p^β + p_ref^β); TNPO applies the
same weight per token. Forget term (minimised): mean_i sg(w_i)·log p_i with
w_i = 2p_i^β / (p_i^β + p_ref,i^β) = 2σ(β·(log p_i − log p_ref,i)), p_ref from the frozen θ_o.
At the start p = p_ref, so every weight is 1 and the first step equals GA's; as a token is
unlearned (p_i ≪ p_ref,i) its weight falls to 0 (NPO's early-stopping effect, per token).
Temperature scaling divides the logits of θ and θ_o alike (weights stay 1 at the start).
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


def tnpo_weights(token_lp: torch.Tensor, ref_lp: torch.Tensor, beta: float) -> torch.Tensor:
    """w_i = 2p_i^β / (p_i^β + p_ref,i^β) = 2σ(β(log p_i − log p_ref,i))  (no gradient; stable in log space)."""
    return 2.0 * torch.sigmoid(beta * (token_lp.detach() - ref_lp.detach()))


def tnpo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    ref_lp, _ = reference_token_logprobs(inp.reference, inp.batch, inp.params.temperature)
    w = tnpo_weights(lp, ref_lp, inp.params.beta)
    return weighted_forget_term(lp, w, mask)


class TNPOParams(LMParams):
    beta: float = Field(4.0, gt=0, description="β: exponent in w_i = 2p_i^β / (p_i^β + p_ref,i^β)")


register(MethodSpec(
    name="tnpo", domain="llm", params=TNPOParams,
    summary="token-wise NPO: GA with per-token NPO weights 2p^β/(p^β+p_ref^β)",
    fn=LMObjective(forget=tnpo_forget, default_retain="none", needs_reference=True),
    paper="Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond (arXiv:2502.19301)",
    needs=("reference",),
))
