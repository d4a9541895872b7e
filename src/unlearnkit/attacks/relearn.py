"""The relearning attacks ``relearn`` (a few fine-tuning steps on part of the forget set) and ``relearn_benign``
(the same on retain data that never contains a forget answer).

Protocol of ``relearn``: a copy of θ_u (float32; float64 for a float64 model, so small steps are not lost to bf16
rounding) is fine-tuned with the SFT loss on the first ``fraction`` of the forget records for ``steps`` optimiser
steps at learning rate ``lr`` and batch size ``batch_size``, at the run's training precision, and returned in θ_u's
dtype. Sources: Hu et al. 2024, "Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks"
(arXiv:2406.13356); Łucki et al. 2024, "An Adversarial Perspective on Machine Unlearning for AI Safety"
(arXiv:2409.18025). Knobs: :class:`RelearnConfig`.

Protocol of ``relearn_benign``: the same knobs, budget and training, on the first ``fraction`` of
``target.retain_train`` after dropping every retain record whose question or answer contains an answer of
``target.forget_train`` or of the ``forget`` evaluation set (:func:`benign_records`): the model never sees a forget
answer, so whatever comes back was not taught. Sources: Łucki et al. 2024 (fine-tuning on 10 unrelated samples
recovers most of what RMU removed); Hu et al. 2024 (benign relearning on public, related data).
"""

from __future__ import annotations

import copy
import math

from pydantic import Field

from unlearnkit.attacks import AttackSpec, AttackTarget, register
from unlearnkit.config import StrictModel
from unlearnkit.engine.precision import train_dtype
from unlearnkit.errors import UnlearnkitError


class RelearnConfig(StrictModel):
    steps: int = Field(10, ge=1)
    lr: float = Field(5e-4, gt=0)
    fraction: float = Field(0.5, gt=0, le=1, description="part of the forget set the attacker fine-tunes on")
    batch_size: int = Field(4, ge=1)


def relearned(model, tokenizer, forget_records: list[dict], cfg: RelearnConfig, seed: int, precision: str = "auto"):
    """A copy of ``model`` fine-tuned a few steps on part of the forget set (trained at ``precision`` in float32 —
    float64 for a float64 model — and returned in ``model``'s dtype)."""
    return finetuned(model, tokenizer, forget_records, cfg, seed, precision, desc="relearn")


def finetuned(model, tokenizer, records: list[dict], cfg: RelearnConfig, seed: int, precision: str = "auto", *,
              desc: str = "relearn"):
    """A copy of ``model`` fine-tuned ``cfg.steps`` steps with the SFT loss on the first ``cfg.fraction`` of
    ``records`` (float32 — float64 for a float64 model — returned in ``model``'s dtype)."""
    from unlearnkit.engine.data import encode_records, make_loader, sft_loss
    from unlearnkit.engine.train import train_loop

    dtype = next(model.parameters()).dtype
    attacked = copy.deepcopy(model).to(train_dtype(dtype))
    part = records[: max(1, round(cfg.fraction * len(records)))]
    loader = make_loader(encode_records(tokenizer, part), cfg.batch_size, tokenizer.pad_token_id, seed=seed)
    epochs = math.ceil(cfg.steps / max(1, len(loader)))
    train_loop(attacked, loader, sft_loss, lr=cfg.lr, epochs=epochs, max_steps=cfg.steps, desc=desc,
               precision=precision)
    return attacked.to(dtype)


def benign_records(retain: list[dict], forget: list[dict]) -> list[dict]:
    """The records of ``retain`` whose question and answer contain none of the (non-empty) answers of ``forget``."""
    answers = {str(r.get("answer", "")).strip() for r in forget} - {""}

    def clean(r: dict) -> bool:
        text = f"{r.get('question', '')}\n{r.get('answer', '')}\n{r.get('text', '')}"
        return not any(a in text for a in answers)

    return [r for r in retain if clean(r)]


def _apply(target: AttackTarget, params: RelearnConfig) -> AttackTarget:
    return target.with_model(relearned(target.model, target.tokenizer, target.forget_train, params, target.seed,
                                       target.precision))


def _apply_benign(target: AttackTarget, params: RelearnConfig) -> AttackTarget:
    if not target.retain_train:
        raise UnlearnkitError("the relearn_benign attack needs retain records to fine-tune on: pass "
                              "AttackTarget(retain_train=[...])")
    records = benign_records(target.retain_train, [*target.forget_train, *target.sets.get("forget", [])])
    if not records:
        raise UnlearnkitError("every retain_train record contains a forget answer: the relearn_benign attack needs "
                              "retain records without one")
    return target.with_model(finetuned(target.model, target.tokenizer, records, params, target.seed,
                                       target.precision, desc="relearn_benign"))


register(AttackSpec(
    name="relearn", kind="weights", apply=_apply, params=RelearnConfig,
    summary="a few fine-tuning steps on part of the forget set (targeted relearning)",
    source="Hu et al. 2024, targeted relearning attacks (arXiv:2406.13356); Łucki et al. 2024 (arXiv:2409.18025)",
))
register(AttackSpec(
    name="relearn_benign", kind="weights", apply=_apply_benign, params=RelearnConfig,
    summary="the relearn budget on retain data that contains no forget answer (benign relearning)",
    source="Łucki et al. 2024 (arXiv:2409.18025); Hu et al. 2024 (arXiv:2406.13356)",
))
