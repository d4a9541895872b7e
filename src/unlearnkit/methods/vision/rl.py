"""RL (random labelling): train on D_f with random labels ≠ the true label, jointly with
cross-entropy on D_un (one shuffled set D_f' ∪ D_un, as in the SalUn code base).

Golatkar et al., "Eternal Sunshine of the Spotless Net", CVPR 2020 (random labels baseline as
used by Jia et al. 2023 and SalUn). Each D_f sample gets one fixed random wrong label (seeded).
"""

from __future__ import annotations

import torch

from unlearnkit.engine.train import train_loop
from unlearnkit.engine.vision import ce_loss, sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, concat, random_other_labels


class RLParams(SGDParams):
    """SGD on D_f (random wrong labels) ∪ D_un (defaults: 10 epochs, lr 0.01)."""


def rl(ctx: VisionContext, p: RLParams) -> torch.nn.Module:
    model = clone(ctx.original).to(ctx.device)
    relabelled = ctx.forget.with_labels(random_other_labels(ctx.forget.labels, ctx.num_classes, ctx.seed))
    train_loop(model, concat(ctx.unlearn, relabelled), ce_loss, lr=p.lr, epochs=p.epochs, max_grad_norm=None,
               desc="rl", optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    return model


SPEC = register(MethodSpec(
    name="rl", domain="vision", summary="random wrong labels on D_f jointly with CE on D_un", params=RLParams, fn=rl,
    paper="Golatkar et al., Eternal Sunshine of the Spotless Net, CVPR 2020",
))
