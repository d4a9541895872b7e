"""Building blocks of language-model unlearning objectives (docs/methods.md).

A language-model method is a **forget term** + a **retain term** + **knobs**:

    L = γ · L_forget(D_f) + α · L_retain(D_r),   L_retain ∈ {none, nll, kl}

- forget terms live one per file in ``methods/llm/<name>.py`` and register an
  :class:`LMObjective` there;
- retain terms are :func:`retain_nll` (GD) and :func:`retain_kl` (KL(π_θo ‖ π_θ) per answer
  token) — any forget term combines with any retain term through the naming rule
  ``<forget>+<retain>`` (``npo+kl``, ``wga+nll``, ``ga+none``); a method may also offer retain
  terms of its own (:class:`RetainTerm`, e.g. RMU's ``act``: activation matching to θ_o), which
  combine by the same rule (``rmu+act``, ``rmu+nll``);
- knobs shared by every method: learning rate, epochs, batch size, early stopping
  (``max_steps``), **temperature scaling** (logits / T inside the forget term) and **loss
  selection** (the forget term sees only the fraction q of answer tokens with the smallest
  cross-entropy in the batch).

Everything here is a plain function; methods share code by calling them, never by inheritance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from unlearnkit.config import BatchSize, Epochs, LearningRate, OmitWhenDefault, Precision, Seed
from unlearnkit.data.prompts import IGNORE
from unlearnkit.engine.precision import upcast
from unlearnkit.models.adapters import LoraSpec

RetainKind = Literal["none", "nll", "kl"]  # the retain terms every method accepts


class LMParams(OmitWhenDefault):
    """Knobs every language-model method has (defaults sized for the embedded benchmark)."""

    lr: LearningRate = Field(1e-4, description="learning rate")
    epochs: Epochs = Field(5, description="passes over the forget set")
    batch_size: BatchSize = Field(8, description="forget (and retain) examples per step")
    grad_accum: int = Field(1, ge=1, le=100_000)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    gamma: float = Field(1.0, ge=0, description="weight γ of the forget term")
    alpha: float = Field(1.0, ge=0, description="weight α of the retain term")
    retain: RetainKind | None = Field(None, description="retain term; None = the method's default")
    temperature: float = Field(1.0, gt=0, description="temperature scaling of logits inside the forget term")
    loss_selection: float = Field(1.0, gt=0, le=1, description="q: fraction of lowest-CE answer tokens the forget term uses")
    max_steps: int | None = Field(None, ge=1, le=10**9, description="early stopping: stop after this many optimiser steps")
    seed: Seed = 0
    peft: LoraSpec | None = Field(None, description="train LoRA adapters instead of every weight (rank r, alpha, "
                                  "dropout, target_modules or all-linear; save_merged); see docs/scale.md")
    gradient_checkpointing: bool = Field(False, description="recompute activations in the backward pass (less memory, "
                                         "about a third more compute)")
    precision: Precision = Field(
        "auto", description="training precision: auto = bf16 mixed precision on a GPU that has it, float32 on a CPU; "
        "bf16 = bf16 autocast on a CPU too (float32 weights; ~1.7x faster where the CPU has native bf16)")

    # the scale and precision knobs appear in dumps (and so in entry hashes) only when set: results made before they
    # existed keep their hashes
    omit_when_default: ClassVar[dict[str, Any]] = {"peft": None, "gradient_checkpointing": False, "precision": "auto"}


@dataclass
class ForgetInputs:
    """What a forget term receives for one step."""

    model: torch.nn.Module
    batch: dict[str, Any]  # input_ids, attention_mask, labels (+ method-specific keys)  # (batch, seq)
    params: Any  # the method's LMParams subclass
    reference: torch.nn.Module | None = None  # frozen θ_o, present only when the method needs it
    state: dict[str, Any] = field(default_factory=dict)  # per-run state (e.g. RMU's direction)


ForgetTerm = Callable[[ForgetInputs], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class RetainTerm:
    """A retain term that only some methods offer (e.g. RMU's activation matching).

    ``fn(model, reference, batch, params, state) -> scalar`` on a retain batch; ``reference`` is
    the frozen θ_o (present when ``needs_reference``), ``state`` the run state the forget term sees.
    The method's params class must accept the term's name in its ``retain`` field (e.g. RMU's
    ``retain: Literal["none", "nll", "kl", "act"] | None``).
    """

    fn: Callable[..., torch.Tensor]
    needs_reference: bool = True
    summary: str = ""


@dataclass(frozen=True)
class LMObjective:
    """The language-model entry point stored in ``MethodSpec.fn``."""

    forget: ForgetTerm
    default_retain: str = "none"  # one of RetainKind or a key of extra_retain
    # method-specific retain terms, selectable by name like the shared ones (``rmu+act``)
    extra_retain: dict[str, RetainTerm] = field(default_factory=dict)
    needs_reference: bool = False  # a frozen copy of θ_o for the forget term (NPO, TNPO …)
    # optional hooks for methods that need more than (question, answer) forget batches
    forget_data: Callable[..., Any] | None = None  # (records, tokenizer, refusals, params) -> list of items
    forget_collate: Callable[..., Any] | None = None  # (items, pad_id) -> batch dict
    trainable: Callable[[torch.nn.Module, Any], list[torch.nn.Parameter]] | None = None
    setup: Callable[..., None] | None = None  # (model, tokenizer, params, state, forget_records) -> None
    on_epoch_end: Callable[..., None] | None = None  # (model, tokenizer, epoch, params, state, data) -> None


# ---------------------------------------------------------------------------------------------
# Shared tensor helpers


def shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Align predictions with targets: logits (B,T−1,V), targets (B,T−1), mask (B,T−1)."""
    logits = logits[:, :-1]
    targets = labels[:, 1:]
    mask = targets != IGNORE
    return logits, targets.clamp_min(0), mask


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0):
    """log π(y_i | x, y_<i) at answer positions: (B,T−1) values and the answer mask (B,T−1)."""
    lg, tgt, mask = shift(logits, labels)
    logp = torch.log_softmax(upcast(lg) / temperature, dim=-1)
    return logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1), mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the True entries of ``mask`` (token-level mean across the batch)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def select_lowest_loss(token_lp: torch.Tensor, mask: torch.Tensor, q: float) -> torch.Tensor:
    """Loss selection: keep the ceil(q·N) answer tokens with the smallest cross-entropy (highest
    log-prob) among the N answer tokens of the batch; returns the reduced mask."""
    if q >= 1.0:
        return mask
    n = int(mask.sum())
    keep = max(1, int(torch.ceil(torch.tensor(q * n)).item()))
    ce = torch.where(mask, -token_lp.detach(), torch.full_like(token_lp, float("inf")))
    idx = torch.topk(ce.flatten(), keep, largest=False).indices
    out = torch.zeros_like(mask).flatten()
    out[idx] = True
    return out.view_as(mask) & mask


def forward_logits(model, batch) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def forget_token_logprobs(inp: ForgetInputs):
    """Forget-batch token log-probs with temperature scaling and loss selection applied."""
    lp, mask = token_logprobs(forward_logits(inp.model, inp.batch), inp.batch["labels"], inp.params.temperature)
    return lp, select_lowest_loss(lp, mask, inp.params.loss_selection)


def weighted_token_mean(token_lp: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean_i sg(w_i)·log p_i over the answer tokens in ``mask`` — the common form of the
    reweighted GA objectives (WGA, TNPO, WTNPO, SatImp). The weights never carry gradient."""
    return masked_mean(weight.detach() * token_lp, mask)


def weighted_forget_term(token_lp: torch.Tensor, weight: torch.Tensor,
                         mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The reweighted-GA forget term and its logged values: (mean_i sg(w_i)·log p_i,
    {forget_nll: mean −log p_i, weight: mean w_i}) over the answer tokens in ``mask``."""
    return weighted_token_mean(token_lp, weight, mask), {
        "forget_nll": float(-masked_mean(token_lp, mask).detach()),
        "weight": float(masked_mean(weight, mask))}


def sequence_logprob(token_lp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_i log p_i per sequence  # (B,)."""
    return (token_lp * mask.to(token_lp.dtype)).sum(-1)


@torch.no_grad()
def reference_token_logprobs(reference, batch, temperature: float = 1.0):
    return token_logprobs(forward_logits(reference, batch), batch["labels"], temperature)


# ---------------------------------------------------------------------------------------------
# Retain terms


def retain_nll(model, batch) -> torch.Tensor:
    """Mean answer-token NLL on D_r (GD's retain term)."""
    lp, mask = token_logprobs(forward_logits(model, batch), batch["labels"])
    return -masked_mean(lp, mask)


def kl_per_token(ref_logits: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over answer tokens of KL(π_ref ‖ π_θ) = Σ_v π_ref(v)(log π_ref(v) − log π_θ(v))."""
    ref_logp = torch.log_softmax(upcast(ref_logits), -1)
    logp = torch.log_softmax(upcast(logits), -1)
    kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)  # (B, T−1)
    return masked_mean(kl, mask)


def retain_kl(model, reference, batch) -> torch.Tensor:
    """KL(π_θo ‖ π_θ) per answer token on D_r (KL's retain term)."""
    logits, _, mask = shift(forward_logits(model, batch), batch["labels"])
    with torch.no_grad():
        ref_logits = shift(forward_logits(reference, batch), batch["labels"])[0]
    return kl_per_token(ref_logits, logits, mask)
