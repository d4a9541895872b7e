"""FLAT — loss adjustment with only forget data (Wang et al., ICLR 2025, "LLM Unlearning via Loss
Adjustment with Only Forget Data", arXiv:2410.11143; reference code github.com/UCSC-REAL/FLAT).

FLAT maximises an f-divergence between the distribution of a *template* response y_e (a refusal
from the data layer's list, drawn afresh per draw as in PO) and that of the forget response y_f
to the same forget question, through its variational form with the optimal variational function
g* and the convex conjugate f*. Forget term (minimised), mean over the forget items of a batch:

    L = −g*(P_e) + f*(g*(P_f)),   P = (1/|y|)·Σ_t π_θ(y_t | x, y_<t)

P is the mean answer-token *probability* of the response (not a log-probability). Raising P_e
and lowering P_f both lower L: the template answer is learnt and the forget answer unlearnt, with
importance weights g*'(P_e) and (f*∘g*)'(P_f) set by the divergence. The divergences, with
g* the f-GAN output activation (Nowozin et al., 2016) and (g*(v), f*(g*(v))):

    tv (default)  tanh(v)/2,                tanh(v)/2
    kl            v,                        exp(v − 1)
    reverse_kl    −exp(−v),                 v − 1
    hellinger     1 − exp(−v),              exp(v) − 1
    neyman        1 − exp(−v),              2 − 2·exp(−v/2)
    pearson       v,                        v + v²/4
    js            log 2 − log(1 + e^(−v)),  v + log(1 + e^(−v)) − log 2
    jeffrey       v,                        v + v²/4 + v³/16  (the reference code's series for f*)

Every g* and f*∘g* increases in v, so every choice learns the template and unlearns the forget
answer. The default is Total-Variation, the reference code's default (`variants:
Total-Variation` in its config/forget.yaml). Where the reference code differs: it averages the
token probabilities over every position of the padded batch (prompt and padding counting as 0)
and applies g*, f* to that batch mean; here P is each response's mean over its answer tokens and
g*, f* are applied per forget item, then averaged (the empirical E[·] of the variational bound).
Its reverse-KL, squared-Hellinger and Neyman variants write exp(v) where f-GAN's activation has
exp(−v), which turns them around (they would raise the forget answer's probability); here they
follow f-GAN.
No retain data and no reference model (default retain: none). Temperature scaling divides the
logits; loss selection picks the forget-answer tokens averaged (the template is averaged over all
its tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    forward_logits,
    select_lowest_loss,
    token_logprobs,
)
from unlearnkit.methods.llm.po import refusal_collate, refusal_items

Divergence = Literal["tv", "kl", "reverse_kl", "hellinger", "neyman", "pearson", "js", "jeffrey"]
Fn = Callable[[torch.Tensor], torch.Tensor]

# name -> (g*(v), f*(g*(v))) as functions of the mean token probability v
DIVERGENCES: dict[str, tuple[Fn, Fn]] = {
    "tv": (lambda v: torch.tanh(v) / 2, lambda v: torch.tanh(v) / 2),
    "kl": (lambda v: v, lambda v: torch.exp(v - 1)),
    "reverse_kl": (lambda v: -torch.exp(-v), lambda v: v - 1),
    "hellinger": (lambda v: 1 - torch.exp(-v), lambda v: torch.exp(v) - 1),
    "neyman": (lambda v: 1 - torch.exp(-v), lambda v: 2 - 2 * torch.exp(-v / 2)),
    "pearson": (lambda v: v, lambda v: v + v**2 / 4),
    "js": (lambda v: math.log(2) - F.softplus(-v), lambda v: v + F.softplus(-v) - math.log(2)),
    "jeffrey": (lambda v: v, lambda v: v + v**2 / 4 + v**3 / 16),
}


def mean_token_prob(token_lp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """P = (1/|y|)·Σ_t p_t per sequence  # (B,) from token log-probs and the answer mask (B, T)."""
    m = mask.to(token_lp.dtype)
    return (token_lp.exp() * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def flat_loss(p_template: torch.Tensor, p_forget: torch.Tensor, divergence: str) -> torch.Tensor:
    """mean_b [−g*(P_e,b) + f*(g*(P_f,b))]  (P_e, P_f: (B,))."""
    g, conj = DIVERGENCES[divergence]
    return (-g(p_template) + conj(p_forget)).mean()


def flat_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    p = inp.params
    lp_f, mask_f = token_logprobs(forward_logits(inp.model, inp.batch), inp.batch["labels"], p.temperature)
    mask_f = select_lowest_loss(lp_f, mask_f, p.loss_selection)
    tb = inp.batch["refusal"]
    lp_e, mask_e = token_logprobs(forward_logits(inp.model, tb), tb["labels"], p.temperature)
    p_f, p_e = mean_token_prob(lp_f, mask_f), mean_token_prob(lp_e, mask_e)
    loss = flat_loss(p_e, p_f, p.divergence)
    return loss, {"forget_prob": float(p_f.mean().detach()), "template_prob": float(p_e.mean().detach())}


class FLATParams(LMParams):
    divergence: Divergence = Field("tv", description="the f-divergence: tv (the reference code's default), kl, "
                                                     "reverse_kl, hellinger, neyman, pearson, js, jeffrey")


register(MethodSpec(
    name="flat", domain="llm", params=FLATParams,
    summary="f-divergence between a template (refusal) answer and the forget answer, forget data only",
    fn=LMObjective(forget=flat_forget, default_retain="none", forget_data=refusal_items,
                   forget_collate=refusal_collate),
    paper="Wang et al. 2025 (ICLR), LLM Unlearning via Loss Adjustment with Only Forget Data (arXiv:2410.11143)",
    needs=("refusals",),
))
