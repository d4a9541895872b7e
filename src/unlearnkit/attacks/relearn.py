"""The relearning attack ``relearn``: a few fine-tuning steps on part of the forget set.

Protocol: a copy of θ_u (float32; float64 for a float64 model, so small steps are not lost to bf16 rounding) is
fine-tuned with the SFT loss on the first ``fraction`` of the forget records for ``steps`` optimiser steps at
learning rate ``lr`` and batch size ``batch_size``, at the run's training precision, and returned in θ_u's dtype.
Sources: Hu et al. 2024, "Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks"
(arXiv:2406.13356); Łucki et al. 2024, "An Adversarial Perspective on Machine Unlearning for AI Safety"
(arXiv:2409.18025). Knobs: :class:`RelearnConfig`.
"""

from __future__ import annotations

import copy
import math

from pydantic import Field

from unlearnkit.attacks import AttackSpec, AttackTarget, register
from unlearnkit.config import StrictModel
from unlearnkit.engine.precision import train_dtype


class RelearnConfig(StrictModel):
    steps: int = Field(10, ge=1)
    lr: float = Field(5e-4, gt=0)
    fraction: float = Field(0.5, gt=0, le=1, description="part of the forget set the attacker fine-tunes on")
    batch_size: int = Field(4, ge=1)


def relearned(model, tokenizer, forget_records: list[dict], cfg: RelearnConfig, seed: int, precision: str = "auto"):
    """A copy of ``model`` fine-tuned a few steps on part of the forget set (trained at ``precision`` in float32 —
    float64 for a float64 model — and returned in ``model``'s dtype)."""
    from unlearnkit.engine.data import encode_records, make_loader, sft_loss
    from unlearnkit.engine.train import train_loop

    dtype = next(model.parameters()).dtype
    attacked = copy.deepcopy(model).to(train_dtype(dtype))
    part = forget_records[: max(1, round(cfg.fraction * len(forget_records)))]
    loader = make_loader(encode_records(tokenizer, part), cfg.batch_size, tokenizer.pad_token_id, seed=seed)
    epochs = math.ceil(cfg.steps / max(1, len(loader)))
    train_loop(attacked, loader, sft_loss, lr=cfg.lr, epochs=epochs, max_steps=cfg.steps, desc="relearn",
               precision=precision)
    return attacked.to(dtype)


def _apply(target: AttackTarget, params: RelearnConfig) -> AttackTarget:
    return target.with_model(relearned(target.model, target.tokenizer, target.forget_train, params, target.seed,
                                       target.precision))


register(AttackSpec(
    name="relearn", kind="weights", apply=_apply, params=RelearnConfig,
    summary="a few fine-tuning steps on part of the forget set (targeted relearning)",
    source="Hu et al. 2024, targeted relearning attacks (arXiv:2406.13356); Łucki et al. 2024 (arXiv:2409.18025)",
))
