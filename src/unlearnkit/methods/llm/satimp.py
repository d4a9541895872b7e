"""SatImp — saturation × importance token reweighting (Yang et al., 2025).

Forget term (minimised): mean_i sg(p_i^β1 (1−p_i)^β2)·log p_i. The saturation factor p^β1 (as
in WGA) fades tokens already unlearned; the importance factor (1−p)^β2 fades tokens the model
is near-certain of (typically function words and formatting), so the update concentrates on
tokens of intermediate likelihood. β1 = 0, β2 = 0 is GA.
"""

from __future__ import annotations

import torch
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, forget_token_logprobs, weighted_forget_term


def satimp_weights(token_lp: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """w_i = p_i^β1 · (1 − p_i)^β2  (no gradient; 1 − p computed as −expm1(log p) for accuracy)."""
    lp = token_lp.detach()
    return torch.exp(beta1 * lp) * (-torch.expm1(lp)).clamp_min(0.0) ** beta2


def satimp_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    w = satimp_weights(lp, inp.params.beta1, inp.params.beta2)
    return weighted_forget_term(lp, w, mask)


class SatImpParams(LMParams):
    beta1: float = Field(5.0, ge=0, description="β1: exponent of the saturation factor p^β1")
    beta2: float = Field(1.0, ge=0, description="β2: exponent of the importance factor (1−p)^β2")


register(MethodSpec(
    name="satimp", domain="llm", params=SatImpParams,
    summary="GA with token weights sg(p^β1·(1−p)^β2) (saturation × importance)",
    fn=LMObjective(forget=satimp_forget, default_retain="none"),
    paper="Yang et al. 2025, Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning (arXiv:2505.11953)",
))
