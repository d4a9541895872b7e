"""SimNPO — simple NPO without a reference model (Fan et al., 2024).

Forget term (minimised): mean_b −(2/β)·log σ(β·(NLL_mean,b − δ)), with
NLL_mean,b = −mean_i log p_i the length-normalised NLL of forget sequence b. The reference
model of NPO is replaced by length normalisation and a margin δ (the paper's γ = β·δ).
Loss selection picks the tokens of each sequence's mean; a sequence left with no selected
token is dropped from the batch mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, forget_token_logprobs


def simnpo_loss(nll_mean: torch.Tensor, beta: float, delta: float) -> torch.Tensor:
    """mean_b −(2/β)·log σ(β·(nll_mean_b − δ))  (nll_mean: (B,))."""
    return (-(2.0 / beta) * F.logsigmoid(beta * (nll_mean - delta))).mean()


def sequence_mean_nll(token_lp: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """−mean_i log p_i per sequence  # (B,), and which sequences have at least one token."""
    m = mask.to(token_lp.dtype)
    n = m.sum(-1)
    return -(token_lp * m).sum(-1) / n.clamp_min(1.0), n > 0


def simnpo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    nll, valid = sequence_mean_nll(lp, mask)
    loss = simnpo_loss(nll[valid], inp.params.beta, inp.params.delta)
    return loss, {"forget_nll": float(nll[valid].mean().detach())}


class SimNPOParams(LMParams):
    beta: float = Field(4.5, gt=0, description="β: inverse temperature of the preference loss")
    delta: float = Field(0.0, description="δ: reward margin subtracted from the length-normalised NLL")


register(MethodSpec(
    name="simnpo", domain="llm", params=SimNPOParams,
    summary="NPO without a reference model: length-normalised NLL with a margin",
    fn=LMObjective(forget=simnpo_forget, default_retain="none"),
    paper="Fan et al. 2024, Simplicity Prevails: Rethinking Negative Preference Optimization for LLM Unlearning (arXiv:2410.07163)",
))
