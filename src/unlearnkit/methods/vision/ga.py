"""GA (gradient ascent): maximise the cross-entropy on the forgetting data D_f (minimise −CE).

Thudi et al., "Unrolling SGD", EuroS&P 2022 / Graves et al. 2021 (the GA baseline of Jia et
al. 2023 and SalUn): a few epochs at a small learning rate; no retain term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.engine.train import train_loop
from unlearnkit.engine.vision import sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone


class GAParams(SGDParams):
    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-4, gt=0)
    max_grad_norm: float | None = Field(None, gt=0, description="clip the ascent gradient (None = no clipping)")


def ga_loss(model, batch):
    x, y = batch
    ce = F.cross_entropy(model(x), y)
    return -ce, {"forget_ce": float(ce.detach())}


def ga(ctx: VisionContext, p: GAParams) -> torch.nn.Module:
    model = clone(ctx.original).to(ctx.device)
    train_loop(model, ctx.forget, ga_loss, lr=p.lr, epochs=p.epochs, max_grad_norm=p.max_grad_norm, desc="ga",
               optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    return model


SPEC = register(MethodSpec(
    name="ga", domain="vision", summary="gradient ascent on D_f", params=GAParams, fn=ga,
    paper="Thudi et al., Unrolling SGD, EuroS&P 2022; Graves et al., Amnesiac ML, AAAI 2021",
))
