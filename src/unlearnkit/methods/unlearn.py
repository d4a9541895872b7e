"""Run one language-model unlearning method: θ_o, D_f, D_r → θ_u.

``resolve("npo+kl")`` applies the naming rule ``<forget term>+<retain term>`` (the retain term is
one of none | nll | kl, or one the method offers itself, e.g. ``rmu+act``); ``make_params``
validates hyperparameters with one-line errors; :func:`unlearn` builds the paired
forget/retain batches, keeps a frozen copy of θ_o only when the objective needs it (a
reference-based forget term or the KL retain term), and minimises γ·L_forget + α·L_retain
with the shared training loop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from unlearnkit.config import format_validation_error
from unlearnkit.data.prompts import collate, fit_to_context
from unlearnkit.engine.data import encode_records
from unlearnkit.engine.passes import model_context
from unlearnkit.engine.train import TrainLog, train_loop
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, get_method
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, retain_kl, retain_nll

RETAIN_KINDS = ("none", "nll", "kl")


def retain_kinds(spec: MethodSpec) -> tuple[str, ...]:
    """The retain terms ``spec`` accepts: the shared ones plus the method's own (RMU's ``act``)."""
    return RETAIN_KINDS + tuple(spec.fn.extra_retain)


def resolve(name: str) -> tuple[MethodSpec, str | None]:
    """``"npo"`` → (npo, None); ``"npo+kl"`` → (npo, "kl"): forget term + explicit retain term.

    A suffix after ``@`` is a free label for a variant of the same method (``kl@TS=2``), used by
    sweeps to list one method several times with different hyperparameters.
    """
    name = name.split("@", 1)[0]
    base, _, retain = name.partition("+")
    if retain and retain not in RETAIN_KINDS:
        spec = get_method(base, "llm")
        if retain not in spec.fn.extra_retain:
            raise UnlearnkitError(f"unknown retain term {retain!r} in {name!r}: use one of "
                                  f"{', '.join(retain_kinds(spec))} (e.g. {base}+kl)")
        return spec, retain
    return get_method(base, "llm"), (retain or None)


def make_params(spec: MethodSpec, overrides: dict[str, Any] | None = None, retain: str | None = None):
    if retain is not None and not isinstance(spec.fn, LMObjective):
        raise UnlearnkitError(_post_hoc_message(spec))
    data = dict(overrides or {})
    if retain is not None:
        data["retain"] = retain
    try:
        return spec.params.model_validate(data)
    except Exception as e:  # pydantic ValidationError
        from pydantic import ValidationError

        if isinstance(e, ValidationError):
            raise UnlearnkitError(f"method {spec.name!r}: " + format_validation_error(e)) from None
        raise


def _post_hoc_message(spec: MethodSpec) -> str:
    return (f"method {spec.name!r} is post-hoc (it edits a model unlearned by another method, it does not train one): "
            f"list it in `unlearnkit run` methods (e.g. methods=[ga,{spec.name}]) or use `unlearnkit layers --cru`")


def _paired_loader(forget_items: list, retain_items: list, params, pad_id: int,
                   forget_collate: Callable | None) -> DataLoader:
    """Each batch: a forget batch (shuffled, one epoch = one pass over D_f) + a random retain batch."""
    g = torch.Generator().manual_seed(params.seed)
    rg = torch.Generator().manual_seed(params.seed + 1)
    fcol = forget_collate or (lambda items, pad: collate(items, pad))

    def col(idx: list[int]) -> dict:
        out = {"forget": fcol([forget_items[i] for i in idx], pad_id)}
        if retain_items:
            r = torch.randint(len(retain_items), (params.batch_size,), generator=rg).tolist()
            out["retain"] = collate([retain_items[i] for i in r], pad_id)
        return out

    return DataLoader(list(range(len(forget_items))), batch_size=params.batch_size, shuffle=True, generator=g,
                      collate_fn=col)


def retain_kind(spec: MethodSpec, params) -> str:
    return params.retain or spec.fn.default_retain


def needs_reference(spec: MethodSpec, params) -> bool:
    if not isinstance(spec.fn, LMObjective):
        return False  # post-hoc: it never trains, so unlearn() makes no frozen copy for it
    kind = retain_kind(spec, params)
    extra = spec.fn.extra_retain.get(kind)
    return spec.fn.needs_reference or kind == "kl" or (extra is not None and extra.needs_reference)


@dataclass
class StepContext:
    """What an ``on_step`` probe of :func:`unlearn` sees: the model being unlearned and the objective.

    ``forget_term(batch)`` is γ·L_forget on a forget batch and ``retain_term(batch)`` is
    α·L_retain on a retain batch (None without a retain term) — exactly the terms the optimiser
    minimises, with the same frozen θ_o copy and method state.
    """

    model: torch.nn.Module
    tokenizer: Any
    spec: MethodSpec
    params: Any
    retain_kind: str
    reference: torch.nn.Module | None
    state: dict[str, Any]
    forget_items: list
    retain_items: list
    forget_records: list[dict]
    retain_records: list[dict]
    forget_term: Callable[[dict], torch.Tensor]
    retain_term: Callable[[dict], torch.Tensor] | None

    def collate_forget(self, items: list) -> dict:
        col = self.spec.fn.forget_collate or (lambda xs, pad: collate(xs, pad))
        return col(items, self.tokenizer.pad_token_id)

    def collate_retain(self, items: list) -> dict:
        return collate(items, self.tokenizer.pad_token_id)


# on_step(step, ctx, final): called with step 0 before the first update, after every optimiser step,
# and once more with final=True when training ends (the step of the last update).
OnStep = Callable[[int, StepContext, bool], None]


def unlearn(model, tokenizer, spec: MethodSpec, params, forget_records: list[dict], retain_records: list[dict],
            refusals: list[str] | None = None, desc: str | None = None,
            on_epoch: Callable[[int, torch.nn.Module], None] | None = None,
            on_step: OnStep | None = None) -> TrainLog:
    """Unlearn ``forget_records`` from ``model`` in place; returns the step log (loss terms, wall time).

    ``on_epoch(epoch, model)`` runs after every epoch (e.g. to keep checkpoints along the run).
    ``on_step`` (optional) observes the run — G-effect and squeezing probes in
    ``unlearnkit.analysis`` use it; a probe must leave gradients, RNG state and the model's mode
    as it found them.
    """
    obj = _objective(spec)
    kind = retain_kind(spec, params)
    if not forget_records:
        raise UnlearnkitError("the forget set is empty: choose a forget split with records")
    if kind != "none" and not retain_records:
        raise UnlearnkitError(f"retain term {kind!r} needs retain data, but the retain set is empty")
    reference = _frozen_copy(model, spec) if needs_reference(spec, params) else None
    torch.manual_seed(params.seed)
    state: dict[str, Any] = {}
    if obj.setup is not None:
        obj.setup(model, tokenizer, params, state, forget_records)
    ctx_len = model_context(model)
    forget_items = (obj.forget_data(forget_records, tokenizer, refusals or [], params) if obj.forget_data
                    else fit_to_context(encode_records(tokenizer, forget_records), ctx_len, "forget examples"))
    retain_items = fit_to_context(encode_records(tokenizer, retain_records), ctx_len, "retain examples") \
        if kind != "none" else []
    was_trainable = [(p, p.requires_grad) for p in model.parameters()]
    _set_trainable(model, obj, params)
    loader = _paired_loader(forget_items, retain_items, params, tokenizer.pad_token_id, obj.forget_collate)
    state["forget_items"] = forget_items
    terms = _Terms(obj, params, kind, reference, state)
    ctx = None if on_step is None else StepContext(
        model=model, tokenizer=tokenizer, spec=spec, params=params, retain_kind=kind, reference=reference,
        state=state, forget_items=forget_items, retain_items=retain_items, forget_records=forget_records,
        retain_records=retain_records, forget_term=lambda b: terms.forget(model, b),
        retain_term=(lambda b: terms.retain(model, b)) if kind != "none" else None)

    def epoch_end(epoch: int, log: TrainLog) -> bool:
        if obj.on_epoch_end is not None:
            obj.on_epoch_end(model, tokenizer, epoch, params, state, loader)
        if on_epoch is not None:
            on_epoch(epoch, model)
        return False

    try:
        if on_step is not None:
            on_step(0, ctx, False)
        log = train_loop(model, loader, terms.loss, lr=params.lr, epochs=params.epochs, grad_accum=params.grad_accum,
                         weight_decay=params.weight_decay, warmup_ratio=params.warmup_ratio,
                         max_grad_norm=params.max_grad_norm, schedule=params.schedule, desc=desc or spec.name,
                         params=[p for p in model.parameters() if p.requires_grad], on_epoch_end=epoch_end,
                         max_steps=params.max_steps, after_step=_counter(on_step, ctx))
        if on_step is not None:
            on_step(len(log.steps), ctx, True)
        return log
    finally:
        for p, flag in was_trainable:  # as it was (a frozen base, e.g. under LoRA, stays frozen)
            p.requires_grad_(flag)
        terms.reference = None  # drop the frozen copy


def _objective(spec: MethodSpec) -> LMObjective:
    if not isinstance(spec.fn, LMObjective):
        raise UnlearnkitError(_post_hoc_message(spec))
    return spec.fn


def _frozen_copy(model, spec: MethodSpec):
    try:
        return copy.deepcopy(model).eval().requires_grad_(False)
    except Exception as e:  # e.g. a model that cannot be copied (meta tensors, hooks)
        raise UnlearnkitError(
            f"method {spec.name!r} needs a frozen copy of the original model, but the model cannot be copied "
            f"({type(e).__name__}: {e}); load it as a regular (non-quantised, non-offloaded) model"
        ) from None


def _set_trainable(model, obj: LMObjective, params) -> None:
    """A method that trains only some weights (RMU) says which; otherwise what is trainable stays so
    (every weight of a loaded model; only the adapters of a model whose base is frozen)."""
    if obj.trainable is not None:
        keep = {id(p) for p in obj.trainable(model, params)}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)


@dataclass
class _Terms:
    """γ·L_forget + α·L_retain of one method: the loss the optimiser minimises, and each term alone."""

    obj: LMObjective
    params: Any
    kind: str
    reference: torch.nn.Module | None
    state: dict[str, Any]

    def retain_raw(self, m, batch) -> torch.Tensor:
        if self.kind == "nll":
            return retain_nll(m, batch)
        if self.kind == "kl":
            return retain_kl(m, self.reference, batch)
        return self.obj.extra_retain[self.kind].fn(m, self.reference, batch, self.params, self.state)  # e.g. RMU's act

    def forget(self, m, batch) -> torch.Tensor:
        return self.params.gamma * self.obj.forget(ForgetInputs(m, batch, self.params, self.reference, self.state))[0]

    def retain(self, m, batch) -> torch.Tensor:
        return self.params.alpha * self.retain_raw(m, batch)

    def loss(self, m, batch):
        f_loss, terms = self.obj.forget(ForgetInputs(m, batch["forget"], self.params, self.reference, self.state))
        loss = self.params.gamma * f_loss
        out = {"forget": float(f_loss.detach()), **terms}
        if self.kind != "none":
            r = self.retain_raw(m, batch["retain"])
            loss = loss + self.params.alpha * r
            out["retain"] = float(r.detach())
        return loss, out


def _counter(on_step: OnStep | None, ctx) -> Callable[[], None] | None:
    if on_step is None:
        return None
    counter = [0]

    def after_step() -> None:
        counter[0] += 1
        on_step(counter[0], ctx, False)

    return after_step
