"""UNDIAL — self-distillation with adjusted logits (Dong et al., 2024).

Forget term (minimised): mean_i CE(t_i, π_θ(·|x, y_<i)) = −mean_i Σ_v t_i(v) log π_θ(v|x, y_<i),
with the fixed target t_i = softmax(z_o,i − β·onehot(y_i)), z_o,i the frozen θ_o's logits: the
original distribution with the true token's logit lowered by β, all other tokens keeping their
relative odds. The loss is bounded below (by the target's entropy), so unlike GA it cannot
diverge. The mean runs over answer tokens only (prompt and padding positions are masked).
Temperature scaling divides both the model's logits and the adjusted θ_o logits by T; loss
selection keeps the answer tokens the current model predicts best.
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


def undial_target(ref_logits: torch.Tensor, targets: torch.Tensor, beta: float, temperature: float = 1.0) -> torch.Tensor:
    """softmax((z_o − β·onehot(y)) / T)  # (B, T, V); ref_logits (B, T, V), targets (B, T)."""
    ref = upcast(ref_logits)
    adjusted = ref.scatter_add(-1, targets.unsqueeze(-1), torch.full_like(targets, -beta, dtype=ref.dtype).unsqueeze(-1))
    return torch.softmax(adjusted / temperature, dim=-1)


def undial_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    p = inp.params
    logits, targets, mask = shift(forward_logits(inp.model, inp.batch), inp.batch["labels"])
    with torch.no_grad():
        ref_logits = shift(forward_logits(inp.reference, inp.batch), inp.batch["labels"])[0]
        target = undial_target(ref_logits, targets, p.beta, p.temperature)
    logp = torch.log_softmax(upcast(logits) / p.temperature, dim=-1)  # (B, T, V)
    lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = select_lowest_loss(lp, mask, p.loss_selection)
    ce = -(target * logp).sum(-1)  # (B, T)
    return masked_mean(ce, mask), {"forget_nll": float(-masked_mean(lp, mask).detach())}


class UNDIALParams(LMParams):
    beta: float = Field(10.0, ge=0, description="β: how far the true token's θ_o logit is lowered in the target")


register(MethodSpec(
    name="undial", domain="llm", params=UNDIALParams,
    summary="self-distillation to θ_o's logits with the true token's logit lowered by β",
    fn=LMObjective(forget=undial_forget, default_retain="none", needs_reference=True),
    paper="Dong et al. 2024, UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in LLMs (arXiv:2402.10052)",
    needs=("reference",),
))
