"""Run one language-model unlearning method: θ_o, D_f, D_r → θ_u.

``resolve("npo+kl")`` applies the naming rule ``<forget term>+<retain term>`` (the retain term is
one of none | nll | kl, or one the method offers itself, e.g. ``rmu+act``); ``make_params``
validates hyperparameters with one-line errors; :func:`unlearn` builds the paired
forget/retain batches, keeps a frozen copy of θ_o only when the objective needs it (a
reference-based forget term or the KL retain term), and minimises γ·L_forget + α·L_retain
with the shared training loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from unlearnkit.config import format_validation_error
from unlearnkit.data.prompts import collate, fit_to_context
from unlearnkit.engine import distributed as dist
from unlearnkit.engine import sharding
from unlearnkit.engine.data import encode_records
from unlearnkit.engine.passes import model_context
from unlearnkit.engine.train import TrainLog, train_loop
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, get_method
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, retain_kl, retain_nll
from unlearnkit.models.adapters import Adapter, AdaptersOff, add_lora, peft_model_of

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
    """Each batch: a forget batch (shuffled, one epoch = one pass over D_f) + a random retain batch.

    With several processes accelerate shares the forget batches out; each process draws its own retain
    batches from a generator seeded by (seed, rank) — process 0 draws what one process would, the
    others differ from it and from each other, and every draw is fixed by the seed. The drawn indices
    are kept (``loader.retain_draws``) for the training log."""
    g = torch.Generator().manual_seed(params.seed)
    rank = dist.rank()
    rseed = params.seed + 1 if rank == 0 else int(np.random.SeedSequence([params.seed + 1, rank]).generate_state(1)[0])
    rg = torch.Generator().manual_seed(rseed)
    fcol = forget_collate or (lambda items, pad: collate(items, pad))
    draws: list[list[int]] = []

    def col(idx: list[int]) -> dict:
        out = {"forget": fcol([forget_items[i] for i in idx], pad_id)}
        if retain_items:
            r = torch.randint(len(retain_items), (params.batch_size,), generator=rg).tolist()
            draws.append(r)
            out["retain"] = collate([retain_items[i] for i in r], pad_id)
        return out

    loader = DataLoader(list(range(len(forget_items))), batch_size=params.batch_size, shuffle=True, generator=g,
                        collate_fn=col)
    loader.retain_draws = draws
    return loader


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

    With ``params.peft`` the method trains LoRA adapters on the frozen ``model`` (θ_o for the terms that
    need it is the same network with its adapters off); when this returns, ``model`` holds the merged
    θ_o + ΔW and ``log.adapter`` the adapter (:class:`unlearnkit.models.adapters.Adapter`) to save.
    """
    obj = _objective(spec)
    kind = retain_kind(spec, params)
    if not forget_records:
        raise UnlearnkitError("the forget set is empty: choose a forget split with records")
    if kind != "none" and not retain_records:
        raise UnlearnkitError(f"retain term {kind!r} needs retain data, but the retain set is empty")
    was_trainable = [(p, p.requires_grad) for p in model.parameters()]
    trained = add_lora(model, params.peft, params.seed) if params.peft is not None else model
    terms = _Terms(obj, params, kind, None, {})
    try:
        return _run(model, trained, terms, tokenizer, spec, params, forget_records, retain_records, refusals, desc,
                    on_epoch, on_step)
    finally:
        terms.reference = None  # drop the frozen copy
        if trained is not model:  # the adapters leave: model holds θ_o + ΔW
            terms.adapter = Adapter.of(trained)
            trained.unload()
            terms.adapter.merge_into(model)
            if terms.log is not None:
                terms.log.adapter = terms.adapter
        for p, flag in was_trainable:  # as it was (a frozen base stays frozen)
            p.requires_grad_(flag)


def _run(model, trained, terms: _Terms, tokenizer, spec: MethodSpec, params, forget_records, retain_records, refusals,
         desc, on_epoch, on_step) -> TrainLog:
    obj, kind, state = terms.obj, terms.kind, terms.state
    if needs_reference(spec, params):
        if trained is model:
            terms.reference = _frozen_copy(model, spec)
        else:  # adapters off: the network being trained (whatever wraps or shards it) is θ_o
            terms.reference_of = lambda m: AdaptersOff(peft_model_of(m))
    torch.manual_seed(params.seed)
    if obj.setup is not None:
        obj.setup(trained, tokenizer, params, state, forget_records)
    ctx_len = model_context(model)
    forget_items = (obj.forget_data(forget_records, tokenizer, refusals or [], params) if obj.forget_data
                    else fit_to_context(encode_records(tokenizer, forget_records), ctx_len, "forget examples"))
    retain_items = fit_to_context(encode_records(tokenizer, retain_records), ctx_len, "retain examples") \
        if kind != "none" else []
    _set_trainable(trained, obj, params)
    loader = _paired_loader(forget_items, retain_items, params, tokenizer.pad_token_id, obj.forget_collate)
    state["forget_items"] = forget_items
    ctx = None if on_step is None else StepContext(
        model=trained, tokenizer=tokenizer, spec=spec, params=params, retain_kind=kind,
        reference=terms.reference_for(trained), state=state, forget_items=forget_items, retain_items=retain_items,
        forget_records=forget_records, retain_records=retain_records, forget_term=lambda b: terms.forget(trained, b),
        retain_term=(lambda b: terms.retain(trained, b)) if kind != "none" else None)

    def epoch_end(epoch: int, log: TrainLog) -> bool:
        if obj.on_epoch_end is not None:
            obj.on_epoch_end(trained, tokenizer, epoch, params, state, loader)
        if on_epoch is not None:
            on_epoch(epoch, trained)
        return False

    if on_step is not None:
        on_step(0, ctx, False)
    with _checkpointing(trained, params.gradient_checkpointing):
        log = train_loop(trained, loader, terms.loss, lr=params.lr, epochs=params.epochs, grad_accum=params.grad_accum,
                         weight_decay=params.weight_decay, warmup_ratio=params.warmup_ratio,
                         max_grad_norm=params.max_grad_norm, schedule=params.schedule, desc=desc or spec.name,
                         params=[p for p in trained.parameters() if p.requires_grad], on_epoch_end=epoch_end,
                         max_steps=params.max_steps, after_step=_counter(on_step, ctx), precision=params.precision)
    if on_step is not None:
        on_step(len(log.steps), ctx, True)
    _log_data(log, loader)
    terms.log = log
    return log


@contextlib.contextmanager
def _checkpointing(model, on: bool):
    """Gradient checkpointing for the block (transformers' non-reentrant checkpointing of every layer)."""
    if not on:
        yield
        return
    if not hasattr(model, "gradient_checkpointing_enable"):
        raise UnlearnkitError(f"gradient_checkpointing=true needs a transformers model; {type(model).__name__} has "
                              "no gradient_checkpointing_enable: drop the option")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield
    finally:
        model.gradient_checkpointing_disable()


def _log_data(log: TrainLog, loader) -> None:
    """Several processes: each one's retain draws (a digest — they differ between processes and are fixed by
    the seed) in the training log."""
    if dist.world_size() > 1:
        digest = hashlib.sha256(json.dumps(loader.retain_draws).encode()).hexdigest()[:16]
        log.distributed["retain_draw_digests"] = dist.gather(digest)


def _objective(spec: MethodSpec) -> LMObjective:
    if not isinstance(spec.fn, LMObjective):
        raise UnlearnkitError(_post_hoc_message(spec))
    return spec.fn


def _frozen_copy(model, spec: MethodSpec):
    """θ_o frozen beside the trained model: a copy (one process, DDP) or a sharded shadow (FSDP2, ZeRO-3)."""
    try:
        return sharding.frozen_reference(model)
    except UnlearnkitError:
        raise
    except Exception as e:  # e.g. a model that cannot be copied (meta tensors, hooks)
        raise UnlearnkitError(
            f"method {spec.name!r} needs a frozen copy of the original model, but the model cannot be copied "
            f"({type(e).__name__}: {e}); load it as a regular (non-quantised, non-offloaded) model"
        ) from None


def _set_trainable(model, obj: LMObjective, params) -> None:
    """A method that trains only some weights (RMU) says which; otherwise what is trainable stays so
    (every weight of a loaded model; only the adapters of a model whose base is frozen)."""
    if obj.trainable is not None:
        keep = {id(p) for p in obj.trainable(model, params) if p.requires_grad}  # never unfreeze a frozen weight
        if not keep:
            raise UnlearnkitError("the method trains only some weights, and all of them are frozen in this model "
                                  "(e.g. LoRA adapters on other modules): add those modules to peft.target_modules")
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)


@dataclass
class _Terms:
    """γ·L_forget + α·L_retain of one method: the loss the optimiser minimises, and each term alone.

    θ_o is ``reference`` (a frozen copy), or — under LoRA — ``reference_of(m)``: the model being trained
    with its adapters off."""

    obj: LMObjective
    params: Any
    kind: str
    reference: torch.nn.Module | None
    state: dict[str, Any]
    reference_of: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    adapter: Any = None  # the trained LoRA adapter, once the adapters are merged
    log: TrainLog | None = None

    def reference_for(self, m):
        return self.reference_of(m) if self.reference_of is not None else self.reference

    def retain_raw(self, m, batch) -> torch.Tensor:
        if self.kind == "nll":
            return retain_nll(m, batch)
        if self.kind == "kl":
            return retain_kl(m, self.reference_for(m), batch)
        return self.obj.extra_retain[self.kind].fn(m, self.reference_for(m), batch, self.params, self.state)  # RMU's act

    def forget(self, m, batch) -> torch.Tensor:
        return self.params.gamma * self.obj.forget(
            ForgetInputs(m, batch, self.params, self.reference_for(m), self.state))[0]

    def retain(self, m, batch) -> torch.Tensor:
        return self.params.alpha * self.retain_raw(m, batch)

    def loss(self, m, batch):
        f_loss, terms = self.obj.forget(ForgetInputs(m, batch["forget"], self.params, self.reference_for(m),
                                                     self.state))
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
