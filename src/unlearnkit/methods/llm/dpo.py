"""DPO (IDK) — direct preference optimisation with chosen = a refusal, rejected = the true answer
(Rafailov et al., 2023, applied to unlearning as in TOFU / Zhang et al., 2024).

Forget term (minimised):

    −(2/β)·log σ(β·[(log π_θ(r|x) − log π_ref(r|x)) − (log π_θ(y|x) − log π_ref(y|x))])

with sequence-summed answer log-probs, r a refusal from the data layer's list (drawn afresh
each time, as in PO), y the true answer, π_ref the frozen θ_o; mean over the batch. The scale
2/β (instead of the DPO paper's 1) matches NPO's, so that dropping the chosen term gives NPO
exactly (as in open-unlearning); it only rescales the gradient. Temperature scaling divides
the logits of θ and θ_o; loss selection picks the true-answer tokens summed (the refusal is
summed over all its tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forget_token_logprobs,
    forward_logits,
    reference_token_logprobs,
    sequence_logprob,
    token_logprobs,
)
from unlearnkit.methods.llm.po import refusal_collate, refusal_items


def dpo_loss(chosen: torch.Tensor, ref_chosen: torch.Tensor, rejected: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:
    """mean_b −(2/β)·log σ(β·((chosen − ref_chosen) − (rejected − ref_rejected)))  (all (B,))."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    return (-(2.0 / beta) * F.logsigmoid(beta * margin)).mean()


def dpo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    T = inp.params.temperature
    ref_batch = inp.batch["refusal"]
    lp_y, mask_y = forget_token_logprobs(inp)  # the true (rejected) answer
    ref_lp_y, _ = reference_token_logprobs(inp.reference, inp.batch, T)
    lp_r, mask_r = token_logprobs(forward_logits(inp.model, ref_batch), ref_batch["labels"], T)
    ref_lp_r, _ = reference_token_logprobs(inp.reference, ref_batch, T)
    rejected, ref_rejected = sequence_logprob(lp_y, mask_y), sequence_logprob(ref_lp_y, mask_y)
    chosen, ref_chosen = sequence_logprob(lp_r, mask_r), sequence_logprob(ref_lp_r, mask_r)
    loss = dpo_loss(chosen, ref_chosen, rejected, ref_rejected, inp.params.beta)
    return loss, {"chosen_log_ratio": float((chosen - ref_chosen).mean().detach()),
                  "rejected_log_ratio": float((rejected - ref_rejected).mean().detach())}


class DPOParams(LMParams):
    beta: float = Field(0.1, gt=0, description="β: inverse temperature of the preference loss")


register(MethodSpec(
    name="dpo", domain="llm", params=DPOParams,
    summary="DPO with a refusal as the chosen and the true answer as the rejected response",
    fn=LMObjective(forget=dpo_forget, default_retain="none", needs_reference=True, forget_data=refusal_items,
                   forget_collate=refusal_collate),
    paper="Rafailov et al. 2023, Direct Preference Optimization (arXiv:2305.18290); IDK variant: Maini et al. 2024, TOFU",
    needs=("reference", "refusals"),
))
