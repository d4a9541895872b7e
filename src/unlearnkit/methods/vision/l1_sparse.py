"""ℓ1-sparse unlearning: fine-tune on D_un with CE + γ_t·‖θ‖₁, γ_t decaying linearly to 0.

Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023. The sparsity
penalty is strongest at the start and vanishes by the end: γ_t = γ·(1 − t/T) for optimiser step
t of T (γ_0 = γ, γ_T = 0); ‖θ‖₁ is over every trainable parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.engine.train import LoopState, train_loop
from unlearnkit.engine.vision import sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, trainable


class L1SparseParams(SGDParams):
    gamma: float = Field(1e-4, ge=0, description="initial ℓ1 weight γ (decays linearly to 0)")


def l1_schedule(step: int, total: int, gamma: float) -> float:
    """γ_t = γ·(1 − t/T), clipped at 0: linear from γ at t = 0 to 0 at t = T."""
    if total <= 0:
        return 0.0
    return gamma * max(0.0, 1.0 - step / total)


def l1_norm(params) -> torch.Tensor:
    return sum(p.abs().sum() for p in params)


def l1_sparse(ctx: VisionContext, p: L1SparseParams) -> torch.nn.Module:
    model = clone(ctx.original).to(ctx.device)
    params = trainable(model)
    total = p.epochs * len(ctx.unlearn)
    state = LoopState()  # train_loop keeps state.step = optimiser steps taken so far

    def loss_fn(m, batch):
        x, y = batch
        g = l1_schedule(state.step, total, p.gamma)
        ce = F.cross_entropy(m(x), y)
        reg = l1_norm(params)
        return ce + g * reg, {"ce": float(ce.detach()), "gamma": g, "l1": float(reg.detach())}

    train_loop(model, ctx.unlearn, loss_fn, lr=p.lr, epochs=p.epochs, max_grad_norm=None, desc="l1_sparse",
               params=params, optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay), state=state)
    return model


SPEC = register(MethodSpec(
    name="l1_sparse", domain="vision", summary="FT on D_un + linearly decaying ℓ1 penalty", params=L1SparseParams,
    fn=l1_sparse, paper="Jia et al., Model Sparsity Can Simplify Machine Unlearning, NeurIPS 2023",
))
