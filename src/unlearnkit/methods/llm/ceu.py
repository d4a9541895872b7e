"""CE-U — cross-entropy unlearning (Yang, 2025, "CE-U: Cross Entropy Unlearning", arXiv:2503.01224;
as OpenUnlearning's ``CEU`` trainer defines it).

Forget term (minimised): mean_i CE(q_i, π_θ(·|x, y_<i)) = −mean_i Σ_v q_i(v) log π_θ(v|x, y_<i)
with the fixed target q_i = softmax(sg(z_i) with z_i[y_i] = −∞): the model's own current
distribution with the true token removed and the rest renormalised. Its gradient in the logits
is π_i − q_i, so the true token's logit is pushed down by p_i and every other token up in
proportion to its current odds; no reference model, no retain data. The first
``ignore_first_n_answer_tokens`` answer tokens of every sequence are left out (default 1, the
footnote in the paper's training settings: the first answer token is often forced by the
question). The mean runs over the remaining answer tokens of the batch. Temperature scaling
divides the logits of the model and of the target; loss selection keeps the answer tokens the
current model predicts best.
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


def skip_first_answer_tokens(mask: torch.Tensor, n: int) -> torch.Tensor:
    """``mask`` (B, T) without the first ``n`` True positions of every row."""
    if n <= 0:
        return mask
    return mask & (mask.long().cumsum(-1) > n)


def ceu_target(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """softmax(sg(z) with z[y] = −∞)  # (B, T, V): the distribution without the true token."""
    masked = upcast(logits.detach()).scatter(-1, targets.unsqueeze(-1), float("-inf"))
    return torch.softmax(masked, dim=-1)


def ceu_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    p = inp.params
    logits, targets, mask = shift(forward_logits(inp.model, inp.batch), inp.batch["labels"])
    logits = upcast(logits) / p.temperature
    mask = skip_first_answer_tokens(mask, p.ignore_first_n_answer_tokens)
    logp = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = select_lowest_loss(lp, mask, p.loss_selection)
    q = ceu_target(logits, targets)
    ce = -(q * logp).sum(-1)  # (B, T)
    return masked_mean(ce, mask), {"forget_nll": float(-masked_mean(lp, mask).detach())}


class CEUParams(LMParams):
    ignore_first_n_answer_tokens: int = Field(
        1, ge=0, description="answer tokens left out at the start of every answer (OpenUnlearning's default 1)")


register(MethodSpec(
    name="ceu", domain="llm", params=CEUParams,
    summary="cross-entropy unlearning: CE to the model's own distribution with the true token removed",
    fn=LMObjective(forget=ceu_forget, default_retain="none"),
    paper="Yang 2025, CE-U: Cross Entropy Unlearning (arXiv:2503.01224); OpenUnlearning's CEU trainer",
))
