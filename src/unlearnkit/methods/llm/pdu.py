"""PDU — primal-dual unlearning (Entesari et al., 2025, "Constrained Entropic Unlearning: A
Primal-Dual Framework for Large Language Models", arXiv:2506.05314; OpenUnlearning's ``PDU``).

The problem  min_θ L_fgt(θ)  s.t.  L_rtn(θ) ≤ ε  is solved on its Lagrangian

    L(θ, λ) = L_fgt(θ) + λ·(L_rtn(θ) − ε),   λ ≥ 0,

one descent step in θ, then one ascent step in λ per optimiser step:
λ ← max(0, λ + η_λ·(L_rtn − ε)), with L_rtn the retain batch's NLL of that step (before the
update of θ). The dual variable starts at λ_0 and stays there for the first
``dual_warmup_epochs`` epochs (the paper's warm start).

- **Forget term** (logit-margin flattening, minimised): for every answer token the squared gap
  between the largest logit and the mean logit, (max_v z_v − mean_v z_v)², averaged over the
  answer tokens of each sequence, then over the batch (the paper's E_(x,y)[1/|y| Σ_t …]). It is
  0 exactly when the logits are constant, i.e. the next-token distribution is uniform; no softmax.
  OpenUnlearning's trainer averages over every position of the padded batch (prompt and padding
  included); here only answer tokens count, as for every other forget term.
- **Retain term** ``dual`` (the default, PDU's own): λ_t·(NLL on D_r − ε), NLL = mean answer-token
  NLL of the retain batch, λ_t the current dual variable; it also performs the dual ascent step.
  ``pdu+nll`` / ``pdu+kl`` / ``pdu+none`` combine the flattening loss with a fixed retain term
  instead (no dual variable).

The dual variable moves only on training steps (model in train mode): probes that evaluate the
terms in eval mode (G-effect) leave it unchanged. Each step's log carries ``dual``, the λ used in
that step's loss (and ``retain`` = λ·(NLL − ε), so NLL = retain/λ + ε). Temperature scaling
divides the logits (the loss scales by 1/T²); loss selection picks the tokens averaged.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from unlearnkit.engine.precision import upcast
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMObjective,
    LMParams,
    RetainTerm,
    forward_logits,
    retain_nll,
    select_lowest_loss,
    shift,
)


def logit_margin(logits: torch.Tensor) -> torch.Tensor:
    """(max_v z_v − mean_v z_v)² per position  # (B, T) from logits (B, T, V)."""
    z = upcast(logits)
    return (z.max(-1).values - z.mean(-1)) ** 2


def sequence_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's True entries, then over the rows that have any  # scalar."""
    m = mask.to(x.dtype)
    n = m.sum(-1)
    per = (x * m).sum(-1) / n.clamp_min(1.0)
    return per[n > 0].mean() if bool((n > 0).any()) else per.sum() * 0.0


def dual_value(params, state) -> float:
    return float(state.setdefault("pdu_dual", params.dual_init))


def pdu_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    p = inp.params
    logits, targets, mask = shift(forward_logits(inp.model, inp.batch), inp.batch["labels"])
    logits = upcast(logits) / p.temperature
    lp = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = select_lowest_loss(lp, mask, p.loss_selection)
    loss = sequence_mean(logit_margin(logits), mask)
    terms = {"forget_nll": float(-(lp * mask).sum().detach() / mask.sum().clamp_min(1))}
    if (p.retain or "dual") == "dual":
        terms["dual"] = dual_value(p, inp.state)
    return loss, terms


def dual_update(params, state, retain_loss: float) -> float:
    """One ascent step λ ← max(0, λ + η_λ·(L_rtn − ε)) once the warm-up epochs are over."""
    lam = dual_value(params, state)
    if state.get("pdu_epochs_done", 0) >= params.dual_warmup_epochs:
        lam = max(0.0, lam + params.dual_step_size * (retain_loss - params.retain_loss_eps))
        state["pdu_dual"] = lam
    return lam


def pdu_retain(model, reference, batch, params, state) -> torch.Tensor:
    """λ_t·(NLL on the retain batch − ε); then the dual ascent step (training steps only)."""
    nll = retain_nll(model, batch)
    lam = dual_value(params, state)
    out = lam * (nll - params.retain_loss_eps)
    if model.training:
        dual_update(params, state, float(nll.detach()))
    return out


def pdu_on_epoch_end(model, tokenizer, epoch, params, state, loader) -> None:
    state["pdu_epochs_done"] = epoch + 1


class PDUParams(LMParams):
    retain: Literal["none", "nll", "kl", "dual"] | None = Field(
        None, description="retain term; None = dual (the constrained form with its dual variable)")
    dual_init: float = Field(100.0, ge=0, description="λ_0: initial dual variable (OpenUnlearning's `alpha`, "
                                                      "100 on TOFU in the paper)")
    retain_loss_eps: float = Field(0.3, description="ε: bound on the retain NLL (0.3 on TOFU in the paper; set it "
                                                    "a little above θ_o's retain NLL)")
    dual_step_size: float = Field(5.0, ge=0, description="η_λ: step size of the dual ascent (5 on TOFU in the paper)")
    dual_warmup_epochs: int = Field(5, ge=0, description="epochs with λ fixed at λ_0 before the dual ascent starts "
                                                         "(5 of 10 on TOFU in the paper)")


register(MethodSpec(
    name="pdu", domain="llm", params=PDUParams,
    summary="primal-dual unlearning: logit-margin flattening s.t. retain NLL ≤ ε, dual variable logged per step",
    fn=LMObjective(forget=pdu_forget, default_retain="dual", on_epoch_end=pdu_on_epoch_end,
                   extra_retain={"dual": RetainTerm(pdu_retain, needs_reference=False,
                                                    summary="λ·(retain NLL − ε) with dual ascent on λ")}),
    paper="Entesari et al. 2025, Constrained Entropic Unlearning: A Primal-Dual Framework for LLMs (arXiv:2506.05314)",
    needs=("retain data",),
))
