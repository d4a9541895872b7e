"""G-effect: streamed per-group inner products equal a brute-force flattened dot product."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearnkit.analysis import g_effect as G
from unlearnkit.data.prompts import collate
from unlearnkit.data.tofu import QASource
from unlearnkit.engine.data import encode_records
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods.llm.base import ForgetInputs, retain_nll
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.layers import locate_layers, param_groups
from unlearnkit.models.lm import load_model


@pytest.fixture(scope="module")
def data(tiny_models):
    src = QASource(tiny_models.data_dir)
    return src.split("forget10")[:6], src.split("retain90")[:40]


def _flat_grad(params, batches) -> torch.Tensor:
    loss = sum(w * f() for w, f in batches)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double() for g, p in zip(grads, params, strict=True)])


def _brute_force(model, objectives, risks) -> dict:
    """Full flattened gradients, dot products over index masks of each group."""
    lm = locate_layers(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    group_of = [lm.group_of(n) for n, _ in named]
    sizes = [p.numel() for p in params]
    masks = {}
    start = 0
    for g, s in zip(group_of, sizes, strict=True):
        masks.setdefault(g, torch.zeros(sum(sizes), dtype=torch.bool))[start : start + s] = True
        start += s
    out = {}
    grs = {risk: _flat_grad(params, rb) for risk, rb in risks.items()}
    for term, ob in objectives.items():
        gl = _flat_grad(params, ob)
        out[term] = {}
        for risk, gr in grs.items():
            d = {g: float(gl[m] @ gr[m]) for g, m in masks.items()}
            d["total"] = float(gl @ gr)
            out[term][risk] = d
    return out


@pytest.mark.parametrize("method", ["ga", "npo+kl"])
def test_streamed_g_effect_equals_brute_force(tiny_models, data, method):
    """Every group and the total, at step 0 and after an update, to ≤ 1e-5 relative."""
    forget, retain = data
    model, tok = load_model(tiny_models.original)
    spec, rk = resolve(method)
    params = make_params(spec, {"lr": 2e-3, "batch_size": 4, "max_steps": 1}, rk)
    checked = []

    def probe(step, ctx, final):
        if final:
            return
        dev = torch.device("cpu")
        f_items = ctx.forget_items
        r_items = encode_records(tok, retain[:5])
        risks = {"e_u": G.risk_batches(ctx.model, encode_records(tok, forget), tok.pad_token_id, 4, dev),
                 "e_r": G.risk_batches(ctx.model, r_items, tok.pad_token_id, 4, dev)}
        objectives = {"forget": G.objective_batches(ctx.forget_term, f_items, ctx.collate_forget, 4, dev)}
        if ctx.retain_term is not None:
            objectives["retain"] = G.objective_batches(ctx.retain_term, r_items, ctx.collate_retain, 4, dev)
        groups = G.grouped_params(ctx.model)
        fast = G.g_effects(groups, objectives, risks)
        slow = _brute_force(ctx.model, objectives, risks)
        assert set(slow["forget"]["e_u"]) == {"embedding", "layer.0", "layer.1", "head", "total"}
        for term in objectives:
            for risk in risks:
                for g, v in slow[term][risk].items():
                    assert fast[term][risk][g] == pytest.approx(v, rel=1e-5, abs=1e-12), (step, term, risk, g)
        if "retain" in objectives:
            for risk in risks:
                assert fast["total"][risk]["total"] == pytest.approx(
                    fast["forget"][risk]["total"] + fast["retain"][risk]["total"], rel=1e-12)
        assert all(p.grad is None for p in ctx.model.parameters())
        checked.append(step)

    unlearn(model, tok, spec, params, forget, retain, on_step=probe)
    assert checked == [0, 1]


def test_ga_unlearn_g_effect_is_minus_the_squared_gradient_norm(tiny_models, data):
    """With the whole forget set in one batch, GA's forget term is −R(D_f): e_u = −‖∇R(D_f)‖² < 0."""
    forget, _ = data
    model, tok = load_model(tiny_models.original)
    items = encode_records(tok, forget)
    dev = torch.device("cpu")
    risk = G.risk_batches(model, items, tok.pad_token_id, 2, dev)
    params = [p for p in model.parameters()]
    g = _flat_grad(params, risk)
    spec, _ = resolve("ga")
    p = make_params(spec, {})
    term = lambda b: spec.fn.forget(ForgetInputs(model, b, p))[0]  # noqa: E731
    obj = G.objective_batches(term, items, lambda xs: collate(xs, tok.pad_token_id), 6, dev)
    eff = G.g_effects(G.grouped_params(model), {"forget": obj}, {"e_u": risk})
    assert eff["forget"]["e_u"]["total"] == pytest.approx(-float(g @ g), rel=1e-5)
    assert eff["forget"]["e_u"]["total"] < 0


def test_risk_is_the_token_level_mean_nll(tiny_models, data):
    forget, _ = data
    model, tok = load_model(tiny_models.original)
    items = encode_records(tok, forget)
    with torch.no_grad():
        streamed = sum(w * f() for w, f in G.risk_batches(model, items, tok.pad_token_id, 4, torch.device("cpu")))
        whole = retain_nll(model, collate(items, tok.pad_token_id))
    assert float(streamed) == pytest.approx(float(whole), rel=1e-6)


def test_probe_along_a_run_leaves_training_unchanged(tiny_models, data):
    """θ_u with the G-effect probe (every step, point-wise on) = θ_u without it, bit for bit."""
    forget, retain = data
    spec, rk = resolve("npo")
    params = make_params(spec, {"lr": 2e-3, "batch_size": 4, "max_steps": 3}, rk)
    m1, tok = load_model(tiny_models.original)
    m2 = copy.deepcopy(m1)
    unlearn(m1, tok, spec, params, forget, retain)
    probe = G.GEffectProbe(every=2, pointwise=True)
    unlearn(m2, tok, spec, params, forget, retain, on_step=probe)
    for (n, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    assert [r["step"] for r in probe.records] == [0, 2, 3]
    rec = probe.records[0]
    assert set(rec["effects"]) == {"forget"} and set(rec["effects"]["forget"]) == {"e_u", "e_r"}
    assert len(rec["pointwise"]["e_u"]) == len(forget)
    # NPO's forget term is a mean over the sequences of a batch, so L(D_f) = Σ_b (|b|/N)·L(b) = mean_i L({x_i})
    # and, the inner product being linear, the set effect is the mean of the point-wise effects.
    for risk in ("e_u", "e_r"):
        for r in probe.records:
            mean_point = sum(r["pointwise"][risk]) / len(forget)
            assert r["effects"]["forget"][risk]["total"] == pytest.approx(mean_point, rel=1e-4, abs=1e-9), (risk, r["step"])
    assert rec["effects"]["forget"]["e_u"]["total"] < 0
    rows = G.as_rows("npo", probe.records)
    assert {r["group"] for r in rows} == {"embedding", "layer.0", "layer.1", "head", "total"}


@pytest.mark.parametrize("every", [0, -3])
def test_non_positive_interval_is_a_clear_error(every):
    with pytest.raises(UnlearnkitError, match="must be a positive number of steps"):
        G.GEffectProbe(every=every)


def test_groups_of_the_tiny_llama(tiny_models):
    model, _ = load_model(tiny_models.original)
    lm = locate_layers(model)
    assert lm.path == "model.layers" and lm.n_layers == 2 and lm.tied_embeddings
    groups = param_groups(model, lm)
    assert [n for n, _ in groups["embedding"]] == ["model.embed_tokens.weight"]
    assert [n for n, _ in groups["head"]] == ["model.norm.weight"]
    assert all(n.startswith("model.layers.1.") for n, _ in groups["layer.1"])
    assert sum(len(v) for v in groups.values()) == len(list(model.parameters()))
