"""WGA — weighted gradient ascent (Wang et al., 2025, "Rethinking LLM Unlearning Objectives").

Forget term (minimised): mean_i sg(p_i^α)·log p_i over the forget answer tokens. The weight
p_i^α cancels GA's inverse-likelihood factor in the gradient (∇ log p = ∇p / p), so tokens the
model has already unlearned (p_i → 0) stop receiving large updates. α = 0 is GA.
Temperature scaling acts on the logits that give both log p_i and the weight.
"""

from __future__ import annotations

import torch
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, forget_token_logprobs, weighted_forget_term


def wga_weights(token_lp: torch.Tensor, alpha: float) -> torch.Tensor:
    """w_i = p_i^α = exp(α·log p_i)  (no gradient)."""
    return torch.exp(alpha * token_lp.detach())


def wga_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    w = wga_weights(lp, inp.params.weight_alpha)
    return weighted_forget_term(lp, w, mask)


class WGAParams(LMParams):
    weight_alpha: float = Field(1.0, ge=0, description="α: exponent of p_i in the token weight sg(p_i^α) "
                                                       "(not `alpha`, the retain-term weight)")


register(MethodSpec(
    name="wga", domain="llm", params=WGAParams,
    summary="weighted gradient ascent: GA with token weights sg(p^α)",
    fn=LMObjective(forget=wga_forget, default_retain="none"),
    paper="Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond (arXiv:2502.19301)",
))
