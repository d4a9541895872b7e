"""TARF (TARget-aware Forgetting), the seed's method.

Zhu et al., "Decoupling the Class Label and the Target Concept in Machine Unlearning",
arXiv:2406.08288 (ICLR 2026). Objective at training time t (in epochs over D_un):

    L = k(t) · ( −mean_{D_f} CE ) + mean_{D_un} CE · τ(x, y, t)

- **Annealed forgetting**: k(t) = k₀ · (1 − t/t₀) for t < t₀, 0 afterwards (reaches 0 at t₀).
- **Phase I** (t < t₁): annealed gradient ascent on D_f only (τ = 0 everywhere).
- **Identification at t₁**: for each label-space class of D_un, the change of mean CE (or of
  accuracy) between θ_o (t = 0) and the model at t₁. Ascent on D_f drags along what shares its
  representation ("representational gravity"), so the most-affected classes are the potential
  forgetting data (the hidden D_fr). We flag the known number m of target classes
  (``identify="known"``, m from ``ctx.n_hidden_target_classes`` — a count, not the classes;
  m = 0 flags nothing), or, when m is unknown, the top ``top_fraction`` (10 %) of D_un's classes.
  τ = 0 for flagged classes, τ = 1 for the rest.
- **Phase II** (t₁ ≤ t < t₀): annealed ascent plus descent on τ = 1 data.
- **Phase III** (t ≥ t₀): descent on τ = 1 data only — retraining approximation.

Two variants of what the ascent covers after t₁: ``forget_only`` (D_f) or ``with_identified``
(D_f ∪ the identified D_un samples, as the seed's summary states). Each optimiser step takes
one D_un batch and one ascent batch (cycled); an epoch is one pass over D_un.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from unlearnkit.engine.train import LoopState, train_loop
from unlearnkit.engine.vision import TensorLoader, autocast, predict, process_rank_world, sgd_factory
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, cycle


class TARFParams(SGDParams):
    epochs: int = Field(10, ge=1, description="T: total epochs (passes over D_un)")
    t1: float = Field(2, ge=0, description="identification time t₁ (end of phase I), in epochs")
    t0: float = Field(5, gt=0, description="end of the annealed ascent t₀ (k(t₀) = 0), in epochs")
    k0: float = Field(1.0, ge=0, description="initial ascent weight k(0)")
    variant: Literal["forget_only", "with_identified"] = "forget_only"
    identify: Literal["known", "top_fraction"] = "known"
    top_fraction: float = Field(0.1, gt=0, le=1)
    criterion: Literal["loss", "accuracy"] = "loss"
    max_grad_norm: float | None = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _phases(self) -> TARFParams:
        check_phases(self.t1, self.t0, self.epochs)
        return self


def check_phases(t1: float, t0: float, T: float) -> None:
    if t1 >= t0:
        raise UnlearnkitError(f"tarf: t1 must be < t0 (got t1={t1}, t0={t0})")
    if t0 > T:
        raise UnlearnkitError(f"tarf: t0 must be ≤ epochs T (got t0={t0}, T={T})")


def k_schedule(t: float, t0: float, k0: float = 1.0) -> float:
    """k(t) = k₀·(1 − t/t₀) for t < t₀, else 0."""
    return k0 * (1.0 - t / t0) if t < t0 else 0.0


def phase(t: float, t1: float, t0: float) -> int:
    """1 for t < t₁, 2 for t₁ ≤ t < t₀, 3 for t ≥ t₀."""
    return 1 if t < t1 else (2 if t < t0 else 3)


def tau(t: float, t1: float, labels: torch.Tensor, identified: list[int]) -> torch.Tensor:
    """τ(x, y, t): 0 everywhere before t₁; afterwards 0 for identified classes, 1 for the rest."""
    if t < t1:
        return torch.zeros(len(labels), device=labels.device)
    flagged = torch.isin(labels, torch.as_tensor(identified, dtype=labels.dtype, device=labels.device))
    return (~flagged).float()


@torch.no_grad()
def per_class_stats(model: torch.nn.Module, loader: TensorLoader, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean CE and accuracy per label of ``loader`` (NaN for labels absent)."""
    logits = predict(model, loader.images)
    y = loader.labels.cpu()
    ce = F.cross_entropy(logits, y, reduction="none")
    correct = (logits.argmax(1) == y).float()
    count = torch.bincount(y, minlength=num_classes).float()
    mean = lambda v: torch.bincount(y, weights=v, minlength=num_classes) / count  # noqa: E731
    return mean(ce), mean(correct)


def identify(before: tuple[torch.Tensor, torch.Tensor], after: tuple[torch.Tensor, torch.Tensor], m: int,
             criterion: str = "loss") -> tuple[list[int], dict[int, float]]:
    """The m classes whose loss rose (or accuracy fell) most; scores per present class."""
    score = after[0] - before[0] if criterion == "loss" else before[1] - after[1]
    present = [c for c in range(len(score)) if not math.isnan(float(score[c]))]
    ranked = sorted(present, key=lambda c: -float(score[c]))
    return sorted(ranked[:m]), {c: float(score[c]) for c in present}


def tarf(ctx: VisionContext, p: TARFParams) -> torch.nn.Module:
    check_phases(p.t1, p.t0, p.epochs)
    model = clone(ctx.original).to(ctx.device)
    run = _TARFRun(ctx, p, model)
    train_loop(model, ctx.unlearn, run.loss, lr=p.lr, epochs=p.epochs, max_grad_norm=p.max_grad_norm, desc="tarf",
               optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay), state=run.state,
               on_epoch_end=run.epoch_end)
    if run.identified is None:  # t1 at or beyond the last step
        run.identified = _identify(ctx, model, run.before, p)
    ctx.log["history"] = run.history
    return model.eval()


class _TARFRun:
    """TARF's per-batch objective for :func:`train_loop`: t = epoch + batch / len(D_un) from the
    loop's state; identification happens (once) at the first batch with t ≥ t₁."""

    def __init__(self, ctx: VisionContext, p: TARFParams, model: torch.nn.Module) -> None:
        self.ctx, self.p, self.model = ctx, p, model  # model: the plain module (identification needs no DDP)
        self.before = per_class_stats(ctx.original, ctx.unlearn, ctx.num_classes)
        self.identified: list[int] | None = None
        self.ascent_iter = cycle(ctx.forget)
        self.state = LoopState()
        self.history: list[dict] = []
        self.terms: dict[str, float] = {}
        # Several processes must run the same forward passes on every rank (DDP syncs BatchNorm
        # buffers in each forward), so after t₁ the D_un forward runs even on a batch whose τ is all 0.
        self.same_forwards = process_rank_world()[1] > 1

    def loss(self, model, batch):
        ctx, p = self.ctx, self.p
        x_un, y_un = batch
        t = self.state.progress
        if self.identified is None and t >= p.t1:
            self.identified = _identify(ctx, self.model, self.before, p)
            if p.variant == "with_identified" and self.identified:
                self.ascent_iter = cycle(_ascent_loader(ctx, self.identified))
        k = k_schedule(t, p.t0, p.k0)
        w = tau(t, p.t1, y_un, self.identified or [])
        with autocast():
            loss = torch.zeros((), device=ctx.device)
            self.terms = {}
            if k > 0:
                x_f, y_f = next(self.ascent_iter)
                ce_f = F.cross_entropy(model(x_f), y_f)
                loss = loss - k * ce_f
                self.terms["forget_ce"] = float(ce_f.detach())
            if bool(w.any()) or (self.same_forwards and t >= p.t1):
                ce_un = (F.cross_entropy(model(x_un), y_un, reduction="none") * w).mean()
                loss = loss + ce_un
                self.terms["retain_ce"] = float(ce_un.detach())
        return (loss if loss.requires_grad else None), self.terms

    def epoch_end(self, epoch: int, log) -> bool:
        p = self.p
        self.history.append({"epoch": epoch, "phase": phase(epoch, p.t1, p.t0),
                             "k_start": k_schedule(epoch, p.t0, p.k0), **self.terms})
        return False


def _identify(ctx: VisionContext, model: torch.nn.Module, before, p: TARFParams) -> list[int]:
    after = per_class_stats(model, ctx.unlearn, ctx.num_classes)
    n_present = int((torch.bincount(ctx.unlearn.labels.cpu(), minlength=ctx.num_classes) > 0).sum())
    if p.identify == "known" and ctx.n_hidden_target_classes is not None:
        m, rule = ctx.n_hidden_target_classes, "known number of target classes"
    else:
        m, rule = max(1, math.ceil(p.top_fraction * n_present)), f"top {p.top_fraction:.0%} of classes"
    identified, scores = identify(before, after, m, p.criterion)
    ctx.log.update({"identified_labels": identified, "identification_rule": rule, "m": m,
                    "criterion": p.criterion, "class_scores": scores, "variant": p.variant})
    model.train()
    return identified


def _ascent_loader(ctx: VisionContext, identified: list[int]) -> TensorLoader:
    lab = ctx.unlearn.labels
    sel = torch.isin(lab, torch.as_tensor(identified, dtype=lab.dtype, device=lab.device))
    return ctx.forget.like(torch.cat([ctx.forget.images, ctx.unlearn.images[sel]]),
                           torch.cat([ctx.forget.labels, lab[sel]]), seed=ctx.seed + 7, shuffle=True,
                           drop_last=False)


SPEC = register(MethodSpec(
    name="tarf", domain="vision",
    summary="annealed ascent on D_f + descent on D_un minus the identified target classes (3 phases)",
    params=TARFParams, fn=tarf,
    paper="Zhu et al., Decoupling the Class Label and the Target Concept in Machine Unlearning, arXiv:2406.08288",
))
