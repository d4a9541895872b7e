"""Retrain: train from scratch on the true retaining data D_r — the gold reference θ_r.

The only vision method that sees more than D_f / D_un: it declares ``needs=("oracle_retain",)``
and receives D_r (by definition of the reference). It uses the recipe θ_o was trained with.
"""

from __future__ import annotations

import torch

from unlearnkit.config import StrictModel
from unlearnkit.engine.vision import train_classifier
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import VisionContext


class RetrainParams(StrictModel):
    """No knobs: the reference uses θ_o's training recipe (``train`` in the run config)."""


def retrain(ctx: VisionContext, params: RetrainParams) -> torch.nn.Module:
    if ctx.oracle_retain is None:
        raise UnlearnkitError("retrain needs the true retaining data D_r (ctx.oracle_retain); the runner provides it")
    model = ctx.make_model().to(ctx.device)
    train_classifier(model, ctx.oracle_retain, ctx.train_recipe, desc="retrain")
    return model


SPEC = register(MethodSpec(
    name="retrain", domain="vision", summary="train from scratch on D_r (gold reference θ_r)",
    params=RetrainParams, fn=retrain, paper="exact unlearning baseline", needs=("oracle_retain",),
))
