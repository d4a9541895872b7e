"""FT (fine-tuning): continue training θ_o on the remaining data D_un with cross-entropy;
forgetting comes from catastrophic forgetting of the classes that no longer appear.

Warnecke et al., "Machine Unlearning of Features and Labels", NDSS 2023 (the FT baseline as
used by Jia et al. 2023 and SalUn): ≈10 epochs, lr 0.01, SGD with momentum.
"""

from __future__ import annotations

import torch

from unlearnkit.engine.train import train_loop
from unlearnkit.engine.vision import ce_loss, sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone


class FTParams(SGDParams):
    """SGD fine-tuning on D_un (defaults: 10 epochs, lr 0.01)."""


def ft(ctx: VisionContext, p: FTParams) -> torch.nn.Module:
    model = clone(ctx.original).to(ctx.device)
    train_loop(model, ctx.unlearn, ce_loss, lr=p.lr, epochs=p.epochs, max_grad_norm=None, desc="ft",
               optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    return model


SPEC = register(MethodSpec(
    name="ft", domain="vision", summary="fine-tune on D_un (catastrophic forgetting)", params=FTParams, fn=ft,
    paper="Warnecke et al., Machine Unlearning of Features and Labels, NDSS 2023",
))
