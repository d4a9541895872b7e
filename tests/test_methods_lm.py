"""A smoke test generated from the registry for every language-model method, and method errors."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from unlearnkit.data.tofu import QASource
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import get_method, methods_for
from unlearnkit.methods.llm.posthoc import PostHocContext, is_post_hoc
from unlearnkit.methods.unlearn import make_params, needs_reference, resolve, unlearn
from unlearnkit.models.lm import load_model

# Training methods go through unlearn(); post-hoc methods (e.g. CRU) edit a θ_u through their own
# apply(). Every registered method is in exactly one list, so none can skip its smoke test.
LLM_METHODS = [s.name for s in methods_for("llm") if not is_post_hoc(s)]
POST_HOC_METHODS = [s.name for s in methods_for("llm") if is_post_hoc(s)]


def test_registry_has_the_language_model_methods():
    assert {"ga", "gd", "kl", "npo"} <= set(LLM_METHODS)


@pytest.mark.parametrize("name", LLM_METHODS)
def test_every_method_unlearns_a_tiny_model(name, tiny_models):
    """Loss finite at every step, trainable parameters moved, frozen parameters did not."""
    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)
    spec, retain = resolve(name)
    params = make_params(spec, {"lr": 1e-3, "epochs": 2, "batch_size": 4, "max_steps": 3}, retain)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters()
                 if spec.fn.trainable is None or any(p is q for q in spec.fn.trainable(model, params))}
    log = unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"), src.refusals)
    assert len(log.steps) == 3
    assert all(math.isfinite(s["loss"]) for s in log.steps)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved == trainable, (sorted(trainable - moved)[:5], sorted(moved - trainable)[:5])


@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="LoRA needs peft (pip install peft)")
@pytest.mark.parametrize("name", LLM_METHODS)
def test_every_method_trains_lora_adapters_on_a_frozen_base(name, tiny_models):
    """With a ``peft`` section: loss finite; the base stayed frozen bit for bit (after the run the model holds
    exactly base + ΔW of the adapter on adapted weights, and the base itself elsewhere); every adapter factor the
    method trains moved from its initial value, the others did not (RMU: only its layers' MLP adapters)."""
    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)
    spec, retain = resolve(name)
    params = make_params(spec, {"lr": 1e-3, "epochs": 2, "batch_size": 4, "max_steps": 3, "peft": {"r": 4}}, retain)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen: dict = {}

    def at_start(step, ctx, final):
        if step == 0:
            seen["init"] = {n.replace(".default", ""): p.detach().clone() for n, p in ctx.model.named_parameters()
                            if "lora_" in n}
            seen["trainable"] = {n.replace(".default", "") for n, p in ctx.model.named_parameters() if p.requires_grad}

    log = unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"), src.refusals,
                  on_step=at_start)
    assert len(log.steps) == 3 and all(math.isfinite(s["loss"]) for s in log.steps)
    ad, after = log.adapter, dict(model.named_parameters())
    assert set(after) == set(before) and all(p.requires_grad for p in model.parameters())  # plain again, flags kept
    for n, w in before.items():
        expected = w + ad.delta(n, w) if n in ad.targets() else w
        assert torch.equal(after[n], expected), n
    moved = {k for k, v in seen["init"].items() if not torch.equal(v, ad.state[k])}
    assert moved == seen["trainable"] and moved, (sorted(seen["trainable"] - moved)[:3], sorted(moved - seen["trainable"])[:3])


@pytest.mark.parametrize("name", POST_HOC_METHODS)
def test_every_post_hoc_method_edits_a_tiny_unlearned_model(name, tiny_models):
    """Same architecture out, every tensor finite, a JSON report, θ_o and θ_u left untouched."""
    import json

    from unlearnkit.engine.evaluate import EvalConfig

    src = QASource(tiny_models.data_dir)
    original, tok = load_model(tiny_models.original)
    unlearned, _ = load_model(tiny_models.original)
    ga, _ = resolve("ga")
    unlearn(unlearned, tok, ga, make_params(ga, {"lr": 1e-3, "batch_size": 4, "max_steps": 3}),
            src.split("forget10"), src.split("retain90"))
    reference, _ = load_model(tiny_models.reference_for("forget10"))
    snap = {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in (("o", original), ("u", unlearned))}
    spec = get_method(name, "llm")
    ctx = PostHocContext(original=original, unlearned=unlearned, tokenizer=tok, source=src, forget="forget10",
                         reference=reference, eval_config=EvalConfig(max_new_tokens=8))
    model, report = spec.fn.apply(ctx, spec.params.model_validate(spec.fn.smoke))
    out = model.state_dict()
    assert model is not original and model is not unlearned
    assert {n: t.shape for n, t in out.items()} == {n: t.shape for n, t in snap["o"].items()}
    assert all(torch.isfinite(t).all() for t in out.values() if t.is_floating_point())
    json.dumps(report)
    for k, m in (("o", original), ("u", unlearned)):
        assert all(torch.equal(t, snap[k][n]) for n, t in m.state_dict().items()), k
    with pytest.raises(UnlearnkitError, match="is post-hoc"):
        unlearn(original, tok, spec, spec.params(), src.split("forget10"), src.split("retain90"))


def test_reference_copy_exists_only_when_needed():
    for name, expected in (("ga", False), ("gd", False), ("kl", True), ("npo", True), ("ga+kl", True), ("npo+nll", True)):
        spec, retain = resolve(name)
        assert needs_reference(spec, make_params(spec, {}, retain)) is expected, name


def test_naming_rule_combines_forget_and_retain_terms():
    spec, retain = resolve("npo+kl")
    assert spec.name == "npo" and make_params(spec, {}, retain).retain == "kl"
    with pytest.raises(UnlearnkitError, match="unknown retain term 'l2'"):
        resolve("npo+l2")


def test_unknown_method_suggests_close_names():
    with pytest.raises(UnlearnkitError, match=r"unknown llm method 'npp'\. Did you mean npo"):
        resolve("npp")


@pytest.mark.parametrize("over,fragment", [
    ({"lr": -1}, "'lr': Input should be greater than 0"),
    ({"loss_selection": 1.5}, "'loss_selection': Input should be less than or equal to 1"),
    ({"loss_selection": 0}, "'loss_selection': Input should be greater than 0"),
    ({"epochs": 0}, "'epochs'"),
    ({"betta": 0.1}, "'betta': unknown key"),
])
def test_invalid_hyperparameters_are_clear_errors(over, fragment):
    spec, _ = resolve("npo")
    with pytest.raises(UnlearnkitError) as e:
        make_params(spec, over)
    assert str(e.value).startswith("method 'npo': config key") and fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_reference_method_on_an_uncopyable_model_is_a_clear_error(tiny_models):
    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)

    class NoCopy(type(model)):
        def __deepcopy__(self, memo):
            raise TypeError("cannot copy an offloaded model")

    model.__class__ = NoCopy
    spec, _ = resolve("npo")
    with pytest.raises(UnlearnkitError, match="needs a frozen copy of the original model"):
        unlearn(model, tok, spec, make_params(spec, {"max_steps": 1}), src.split("forget10"), src.split("retain90"))
