"""NPO — negative preference optimisation (Zhang et al., 2024).

Forget term: −(2/β)·log σ(−β·(log π_θ(y|x) − log π_ref(y|x))) with sequence-summed answer
log-probs and π_ref the frozen θ_o; mean over the batch. Temperature scaling divides the logits
of both θ and θ_o (so the ratio is 1 at the start); loss selection picks the tokens summed.
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
    reference_token_logprobs,
    sequence_logprob,
)


def npo_loss(seq_lp: torch.Tensor, ref_seq_lp: torch.Tensor, beta: float) -> torch.Tensor:
    """mean_b −(2/β)·log σ(−β·(seq_lp − ref_seq_lp))  (seq_lp, ref_seq_lp: (B,))."""
    return (-(2.0 / beta) * F.logsigmoid(-beta * (seq_lp - ref_seq_lp))).mean()


def npo_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    lp, mask = forget_token_logprobs(inp)
    ref_lp, _ = reference_token_logprobs(inp.reference, inp.batch, inp.params.temperature)
    seq, ref_seq = sequence_logprob(lp, mask), sequence_logprob(ref_lp, mask)
    loss = npo_loss(seq, ref_seq, inp.params.beta)
    return loss, {"log_ratio": float((seq - ref_seq).mean().detach())}


class NPOParams(LMParams):
    beta: float = Field(0.1, gt=0, description="inverse temperature β of the preference loss")


register(MethodSpec(
    name="npo", domain="llm", params=NPOParams,
    summary="negative preference optimisation against the frozen original model",
    fn=LMObjective(forget=npo_forget, default_retain="none", needs_reference=True),
    paper="Zhang et al. 2024, Negative Preference Optimization (arXiv:2404.05868)",
    needs=("reference",),
))
