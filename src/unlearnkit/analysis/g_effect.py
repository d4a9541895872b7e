"""G-effect (docs/analysis.md; seed: "Rethinking LLM Unlearning Objectives: A Gradient Perspective").

For an objective term L (minimised) and a risk R (mean answer-token NLL),

    e = ⟨∇_θ L(D_f), ∇_θ R(D)⟩,    e_u: D = D_f (negative = unlearning works)
                                    e_r: D = D_r (negative = retention is damaged)

A gradient step θ ← θ − η∇L changes R by ≈ −η·e, so e < 0 means R (the NLL) rises. The inner
product splits over parameter groups (embedding, each transformer layer, head; see
:mod:`unlearnkit.models.layers`): e = Σ_g ⟨∇_g L, ∇_g R⟩, and every group's share is reported.

Streaming: ∇L is accumulated once (one gradient-sized copy, kept per parameter, never
flattened); each risk's gradient is then never stored — a post-accumulate-grad hook on every
parameter takes the inner product with the stored ∇L as soon as that parameter's gradient is
ready and frees it. Inner products are summed in float64 in chunks, so no float64 copy of a
whole tensor is made either. The **point-wise** G-effect of forget sample i is
⟨∇L({x_i}), ∇R(D)⟩: there the risk gradient is the stored one and each sample's objective
gradient is streamed.

Sets (fixed for the whole run, so a curve reflects the model's change, not batch noise):
- L(D_f): the method's forget term (γ·L_forget, with its temperature / loss selection / θ_o
  copy / state) over the whole forget set, in mini-batches b of the run's batch size,
  L = Σ_b (|b|/N)·L(b); the retain term (α·L_retain) likewise over the retain probe set;
- R(D): Σ over answer tokens of NLL / number of answer tokens of D (token-level mean);
- the retain probe set: ``n_retain`` records of D_r drawn once with a fixed seed (default:
  as many as the forget set has).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from unlearnkit.data.prompts import collate
from unlearnkit.engine.data import encode_records
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods.llm.base import forward_logits, token_logprobs
from unlearnkit.models.layers import LayerMap, locate_layers

Batches = Sequence[tuple[float, Callable[[], torch.Tensor]]]  # (weight, closure → scalar loss)
_CHUNK = 1 << 22


def chunked_dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """⟨a, b⟩ summed in float64, at most ``_CHUNK`` elements converted at a time."""
    a, b = a.reshape(-1), b.reshape(-1)
    total = 0.0
    for s in range(0, a.numel(), _CHUNK):
        total += float(torch.dot(a[s : s + _CHUNK].double(), b[s : s + _CHUNK].double()))
    return total


def grouped_params(model: torch.nn.Module, layer_map: LayerMap | None = None) -> dict[torch.nn.Parameter, str]:
    """Trainable parameters → group name (each tied tensor once)."""
    lm = layer_map or locate_layers(model)
    return {p: lm.group_of(n) for n, p in model.named_parameters() if p.requires_grad}


def accumulate_gradient(params: Iterable[torch.nn.Parameter], batches: Batches) -> dict[torch.nn.Parameter, torch.Tensor]:
    """∇ Σ_b w_b·loss_b, per parameter (moved out of ``.grad``, which is left empty)."""
    params = list(params)
    for p in params:
        p.grad = None
    for w, loss in batches:
        (w * loss()).backward()
    out = {}
    for p in params:
        if p.grad is not None:
            out[p] = p.grad
            p.grad = None
    return out


def streamed_dots(groups: dict[torch.nn.Parameter, str], stored: dict[torch.nn.Parameter, torch.Tensor],
                  batches: Batches) -> dict[str, float]:
    """Per group ⟨stored, ∇ Σ_b w_b·loss_b⟩, taking each parameter's gradient as it is produced."""
    acc = {g: 0.0 for g in dict.fromkeys(groups.values())}

    def hook(p: torch.nn.Parameter) -> None:
        s = stored.get(p)
        if s is not None and p.grad is not None:
            acc[groups[p]] += chunked_dot(p.grad, s)
        p.grad = None

    handles = [p.register_post_accumulate_grad_hook(hook) for p in groups]
    try:
        for p in groups:
            p.grad = None
        for w, loss in batches:
            (w * loss()).backward()
    finally:
        for h in handles:
            h.remove()
        for p in groups:
            p.grad = None
    return acc


def g_effects(groups: dict[torch.nn.Parameter, str], objectives: dict[str, Batches],
              risks: dict[str, Batches]) -> dict[str, dict[str, dict[str, float]]]:
    """``out[term][risk][group]`` = ⟨∇ objective term, ∇ risk⟩ restricted to the group; plus
    ``[...]["total"]`` (sum over groups) and the term ``"total"`` (sum over terms, by linearity)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for term, obj in objectives.items():
        stored = accumulate_gradient(groups, obj)
        out[term] = {}
        for risk, rb in risks.items():
            d = streamed_dots(groups, stored, rb)
            d["total"] = sum(d.values())
            out[term][risk] = d
        del stored
    if len(objectives) > 1:
        out["total"] = {risk: {g: sum(out[t][risk][g] for t in objectives) for g in next(iter(out.values()))[risk]}
                        for risk in risks}
    return out


def pointwise_g_effects(groups: dict[torch.nn.Parameter, str], sample_objectives: Sequence[Callable[[], torch.Tensor]],
                        risks: dict[str, Batches]) -> dict[str, list[float]]:
    """``out[risk][i]`` = ⟨∇ objective on sample i alone, ∇ risk⟩ (one stored risk gradient at a time)."""
    out: dict[str, list[float]] = {}
    for risk, rb in risks.items():
        stored = accumulate_gradient(groups, rb)
        out[risk] = [sum(streamed_dots(groups, stored, [(1.0, f)]).values()) for f in sample_objectives]
        del stored
    return out


# ---------------------------------------------------------------------------------------------
# The risk and the objective over fixed probe sets


def nll_sum(model, batch) -> torch.Tensor:
    """Σ over answer tokens of −log p  (divide by the token count for the mean)."""
    lp, mask = token_logprobs(forward_logits(model, batch), batch["labels"])
    return -(lp * mask.to(lp.dtype)).sum()


def risk_batches(model, items: list, pad_id: int, batch_size: int, device) -> Batches:
    """R(D) = Σ NLL / #answer tokens, as weighted mini-batches."""
    batches = [collate(items[s : s + batch_size], pad_id) for s in range(0, len(items), batch_size)]
    n_tok = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    return [(1.0 / n_tok, (lambda b=b: nll_sum(model, _to(b, device)))) for b in batches]


def objective_batches(term: Callable[[dict], torch.Tensor], items: list, collate_fn: Callable[[list], dict],
                      batch_size: int, device) -> Batches:
    """L(D) = Σ_b (|b|/N)·L(b) for an objective term defined on a batch."""
    n = len(items)
    return [(len(items[s : s + batch_size]) / n, (lambda b=collate_fn(items[s : s + batch_size]): term(_to(b, device))))
            for s in range(0, n, batch_size)]


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def retain_probe_records(records: list[dict], n: int, seed: int = 0) -> list[dict]:
    if n >= len(records):
        return list(records)
    g = torch.Generator().manual_seed(seed)
    idx = sorted(torch.randperm(len(records), generator=g)[:n].tolist())
    return [records[i] for i in idx]


# ---------------------------------------------------------------------------------------------
# The probe that runs along an unlearning run


@dataclass
class GEffectProbe:
    """``unlearn(..., on_step=probe)``: G-effects every ``every`` optimiser steps (and at 0 and the end)."""

    every: int = 1
    n_retain: int | None = None  # retain probe records; None = as many as forget records
    batch_size: int | None = None  # None = the method's batch size
    pointwise: bool = False
    records: list[dict] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    _sets: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every <= 0:
            raise UnlearnkitError(f"the G-effect interval s must be a positive number of steps (every=1, 2, …), got {self.every!r}")
        if self.n_retain is not None and self.n_retain <= 0:
            raise UnlearnkitError(f"n_retain must be ≥ 1, got {self.n_retain}")

    def __call__(self, step: int, ctx, final: bool) -> None:
        if self.records and self.records[-1]["step"] == step:
            return
        if not (final or step % self.every == 0):
            return
        self.records.append(self.measure(step, ctx))

    def _probe_sets(self, ctx) -> dict:
        if self._sets is None:
            n_r = self.n_retain or len(ctx.forget_records)
            retain = retain_probe_records(ctx.retain_records, n_r)
            if not retain:
                raise UnlearnkitError("the G-effect needs retain data for e_r, but the retain set is empty")
            self._sets = {
                "forget_true": encode_records(ctx.tokenizer, ctx.forget_records),  # R(D_f): the true answers
                "retain": encode_records(ctx.tokenizer, retain),
            }
        return self._sets

    def measure(self, step: int, ctx) -> dict:
        t0 = time.perf_counter()
        model = ctx.model
        lm = locate_layers(model)
        groups = grouped_params(model, lm)
        if not self.groups:
            self.groups = [g for g in lm.groups() if g in set(groups.values())]
        device = next(model.parameters()).device
        bs = self.batch_size or ctx.params.batch_size
        sets = self._probe_sets(ctx)
        pad = ctx.tokenizer.pad_token_id
        was_training = model.training
        model.eval()
        try:
            risks = {"e_u": risk_batches(model, sets["forget_true"], pad, bs, device),
                     "e_r": risk_batches(model, sets["retain"], pad, bs, device)}
            objectives = {"forget": objective_batches(ctx.forget_term, ctx.forget_items, ctx.collate_forget, bs, device)}
            if ctx.retain_term is not None:
                objectives["retain"] = objective_batches(ctx.retain_term, sets["retain"], ctx.collate_retain, bs, device)
            eff = g_effects(groups, objectives, risks)
            rec = {"step": step, "effects": eff}
            if self.pointwise:
                per = [(lambda it=it: ctx.forget_term(_to(ctx.collate_forget([it]), device))) for it in ctx.forget_items]
                rec["pointwise"] = pointwise_g_effects(groups, per, risks)
        finally:
            model.train(was_training)
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        return rec


def as_rows(method: str, records: list[dict]) -> list[dict]:
    """Long format: one row per (step, term, e_u/e_r, group)."""
    rows = []
    for rec in records:
        for term, risks in rec["effects"].items():
            for risk, groups in risks.items():
                for g, v in groups.items():
                    rows.append({"method": method, "step": rec["step"], "term": term, "effect": risk, "group": g,
                                 "value": v})
    return rows
