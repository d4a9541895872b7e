"""Golden values for the method zoo's forget terms (issue #5) on hand-built logits, and its errors.

The hand-built batch (see ``test_losses_lm._batch``): one sequence, two scored answer tokens,
p = [1/3, 1/2] (log p = [−ln 3, −ln 2]); position 1's distribution is [1/4, 1/4, 1/2].
"""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.data.prompts import IGNORE
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import methods_for
from unlearnkit.methods.llm.base import ForgetInputs, LMParams
from unlearnkit.methods.llm.bs_s import BSSParams, bss_on_epoch_end, bss_setup, sampled_batch
from unlearnkit.methods.llm.bs_t import BSTParams, bst_forget
from unlearnkit.methods.llm.dpo import DPOParams, dpo_forget, dpo_loss
from unlearnkit.methods.llm.ga import ga_forget
from unlearnkit.methods.llm.npo import NPOParams, npo_forget
from unlearnkit.methods.llm.po import POParams, RefusalItem, po_forget, refusal_collate, refusal_items
from unlearnkit.methods.llm.rmu import (
    RMUParams,
    activation_mse,
    decoder_layers,
    hidden_at,
    layer_index,
    rmu_direction,
    rmu_forget,
    rmu_retain,
    rmu_trainable,
)
from unlearnkit.methods.llm.satimp import SatImpParams, satimp_forget
from unlearnkit.methods.llm.simnpo import SimNPOParams, simnpo_forget
from unlearnkit.methods.llm.tnpo import TNPOParams, tnpo_forget
from unlearnkit.methods.llm.undial import UNDIALParams, undial_forget, undial_target
from unlearnkit.methods.llm.wga import WGAParams, wga_forget
from unlearnkit.methods.llm.wtnpo import WTNPOParams, wtnpo_forget
from unlearnkit.methods.unlearn import make_params, needs_reference, resolve, unlearn

from .test_losses_lm import FixedLogits, _batch

LN2, LN3 = math.log(2), math.log(3)
GA = -math.log(6) / 2  # GA on the hand batch: (−ln 3 − ln 2)/2


def _run(term, params, logits=None, reference=None, batch=None):
    lg, b = _batch()
    logits = lg if logits is None else logits
    ref = None if reference is None else FixedLogits(reference)
    return term(ForgetInputs(FixedLogits(logits), batch or b, params, reference=ref))


# ---------------------------------------------------------------------------------------------
# reweighted GA: WGA, TNPO, WTNPO, SatImp


def test_wga_weights_are_p_to_the_alpha():
    """α = 1: w = p = [1/3, 1/2]; WGA = (−(1/3)·ln 3 − (1/2)·ln 2)/2 ≈ −0.356409; α = 0 is GA."""
    loss, terms = _run(wga_forget, WGAParams(weight_alpha=1.0))
    assert loss.item() == pytest.approx((-LN3 / 3 - LN2 / 2) / 2, abs=1e-6)
    assert terms["weight"] == pytest.approx((1 / 3 + 1 / 2) / 2, abs=1e-6)
    assert _run(wga_forget, WGAParams(weight_alpha=0.0))[0].item() == pytest.approx(GA, abs=1e-6)


def test_wga_weight_carries_no_gradient():
    """∂/∂z of mean_i sg(w_i)·log p_i = (1/2)·w_i·(onehot(y_i) − π_i). Position 0: w = 1/3,
    π = 1/3 each, y = 1 → (1/6)·[−1/3, 2/3, −1/3] = [−1/18, 1/9, −1/18]. (Without the stop-gradient
    the weight's own derivative would add (1/2)·log p·∂p/∂z ≠ 0.)"""
    logits, batch = _batch()
    logits = logits.clone().requires_grad_(True)
    loss, _ = wga_forget(ForgetInputs(FixedLogits(logits), batch, WGAParams(weight_alpha=1.0)))
    loss.backward()
    assert logits.grad[0, 0].tolist() == pytest.approx([-1 / 18, 1 / 9, -1 / 18], abs=1e-6)


def test_tnpo_weights_are_one_where_p_equals_p_ref():
    """θ_ref = θ: w_i = 2p^β/(p^β + p^β) = 1 for every token, so TNPO = GA = −ln 6 / 2."""
    logits, _ = _batch()
    loss, terms = _run(tnpo_forget, TNPOParams(beta=4.0), reference=logits.clone())
    assert loss.item() == pytest.approx(GA, abs=1e-6)
    assert terms["weight"] == pytest.approx(1.0, abs=1e-6)


def test_tnpo_weights_against_a_uniform_reference():
    """p_ref = 1/3 at both positions, β = 4. Position 0: p = p_ref → w = 1. Position 1: p = 1/2,
    w = 2·(1/2)⁴ / ((1/2)⁴ + (1/3)⁴) = 2·81/(81 + 16) = 162/97.
    TNPO = (−ln 3 − (162/97)·ln 2)/2 ≈ −1.128139."""
    logits, _ = _batch()
    loss, _ = _run(tnpo_forget, TNPOParams(beta=4.0), reference=torch.zeros_like(logits))
    assert loss.item() == pytest.approx((-LN3 - 162 / 97 * LN2) / 2, abs=1e-6)


def test_wtnpo_weights_are_p_alpha_times_tnpo_weights():
    """α = 1.5, β = 4, p_ref = 1/3: w = [(1/3)^1.5 · 1, (1/2)^1.5 · 162/97];
    WTNPO = (−(1/3)^1.5·ln 3 − (1/2)^1.5·(162/97)·ln 2)/2 ≈ −0.310356. α = 0 is TNPO."""
    logits, _ = _batch()
    ref = torch.zeros_like(logits)
    loss, _ = _run(wtnpo_forget, WTNPOParams(weight_alpha=1.5, beta=4.0), reference=ref)
    expected = (-(1 / 3) ** 1.5 * LN3 - 0.5 ** 1.5 * 162 / 97 * LN2) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert _run(wtnpo_forget, WTNPOParams(weight_alpha=0.0), reference=ref)[0].item() == pytest.approx(
        _run(tnpo_forget, TNPOParams(), reference=ref)[0].item(), abs=1e-7)


def test_satimp_weights():
    """β1 = 5, β2 = 1: w = p⁵(1 − p) = [(1/3)⁵·(2/3), (1/2)⁵·(1/2)] = [2/729, 1/64];
    SatImp = (−(2/729)·ln 3 − (1/64)·ln 2)/2 ≈ −0.006923. β1 = β2 = 0 is GA."""
    loss, terms = _run(satimp_forget, SatImpParams(beta1=5, beta2=1))
    assert loss.item() == pytest.approx((-2 / 729 * LN3 - LN2 / 64) / 2, abs=1e-7)
    assert terms["weight"] == pytest.approx((2 / 729 + 1 / 64) / 2, abs=1e-7)
    assert _run(satimp_forget, SatImpParams(beta1=0, beta2=0))[0].item() == pytest.approx(GA, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# preference losses: NPO, SimNPO, DPO; refusal data (PO)


def test_simnpo_and_npo_on_the_two_token_example():
    """NLL_mean = (ln 3 + ln 2)/2 = ln 6 / 2 ≈ 0.895880.
    SimNPO (β = 4.5, δ = 0) = −(2/4.5)·log σ(4.5·ln 6/2) = (2/4.5)·ln(1 + 6^(−2.25)) ≈ 0.007819;
    δ = 1: (2/4.5)·ln(1 + e^(−4.5·(ln 6/2 − 1))) ≈ 0.424272.
    NPO (β = 0.1) against the uniform θ_ref: Δ = −ln 6 + 2 ln 3 = ln 1.5,
    NPO = 20·ln(1 + 1.5^0.1) ≈ 14.272518. SimNPO needs no reference, NPO does."""
    loss, terms = _run(simnpo_forget, SimNPOParams(beta=4.5, delta=0.0))
    assert terms["forget_nll"] == pytest.approx(math.log(6) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(2 / 4.5 * math.log1p(6 ** -2.25), abs=1e-6)
    loss_d, _ = _run(simnpo_forget, SimNPOParams(beta=4.5, delta=1.0))
    assert loss_d.item() == pytest.approx(2 / 4.5 * math.log1p(math.exp(-4.5 * (math.log(6) / 2 - 1))), abs=1e-6)
    logits, _ = _batch()
    npo, _ = _run(npo_forget, NPOParams(beta=0.1), reference=torch.zeros_like(logits))
    assert npo.item() == pytest.approx(20 * math.log1p(1.5 ** 0.1), abs=1e-5)
    assert not needs_reference(*_spec("simnpo")) and needs_reference(*_spec("npo"))


def test_simnpo_normalises_per_sequence_not_per_token():
    """Two sequences: A scores p = [1/3, 1/2] (NLL_mean ln 6/2), B scores only position 1 (p = 1/2,
    NLL_mean ln 2). SimNPO = mean over sequences of (2/β)·ln(1 + e^(−β·NLL_mean)) — a token mean
    over all three tokens would give a different NLL."""
    logits, batch = _batch()
    logits = logits.expand(2, -1, -1)
    labels = torch.tensor([[IGNORE, 1, 2], [IGNORE, IGNORE, 2]])
    batch = {**{k: v.expand(2, -1) for k, v in batch.items()}, "labels": labels}
    loss, _ = simnpo_forget(ForgetInputs(FixedLogits(logits), batch, SimNPOParams(beta=4.5)))
    f = lambda nll: 2 / 4.5 * math.log1p(math.exp(-4.5 * nll))  # noqa: E731
    assert loss.item() == pytest.approx((f(math.log(6) / 2) + f(LN2)) / 2, abs=1e-6)


def _dpo_batch():
    """True answer labels [·, 1, 2]: log π = −ln 3 − ln 2 = −ln 6. Refusal labels [·, 2, 1]:
    position 0 predicts 2 (p = 1/3), position 1 predicts 1 (p = 1/4): log π = −ln 12."""
    logits, batch = _batch()
    refusal = {**batch, "labels": torch.tensor([[IGNORE, 2, 1]])}
    return logits, {**batch, "refusal": refusal}


def test_dpo_loss_golden_values():
    """β = 0.1, θ_ref uniform (log π_ref = −2 ln 3 for both answers):
    margin = (−ln 12 + 2 ln 3) − (−ln 6 + 2 ln 3) = −ln 2;
    DPO = −(2/β)·log σ(−β ln 2) = 20·ln(1 + 2^0.1) ≈ 14.568100; at θ = θ_ref the margin is 0 and
    DPO = 20 ln 2 ≈ 13.863."""
    logits, batch = _dpo_batch()
    loss, terms = dpo_forget(ForgetInputs(FixedLogits(logits), batch, DPOParams(beta=0.1),
                                          reference=FixedLogits(torch.zeros_like(logits))))
    assert loss.item() == pytest.approx(20 * math.log1p(2 ** 0.1), abs=1e-5)
    assert terms["chosen_log_ratio"] == pytest.approx(-math.log(12) + 2 * LN3, abs=1e-6)
    assert terms["rejected_log_ratio"] == pytest.approx(-math.log(6) + 2 * LN3, abs=1e-6)
    same, _ = dpo_forget(ForgetInputs(FixedLogits(logits), batch, DPOParams(beta=0.1), reference=FixedLogits(logits)))
    assert same.item() == pytest.approx(20 * LN2, abs=1e-5)
    z = torch.zeros(1)
    assert dpo_loss(z, z, z - 1.0, z, 1.0).item() == pytest.approx(2 * math.log1p(math.exp(-1.0)), abs=1e-6)


def test_po_is_the_nll_of_the_refusal():
    """PO = mean NLL of the refusal tokens = (ln 3 + ln 4)/2 = ln 12 / 2 ≈ 1.242453."""
    logits, batch = _dpo_batch()
    loss, _ = po_forget(ForgetInputs(FixedLogits(logits), batch, POParams()))
    assert loss.item() == pytest.approx(math.log(12) / 2, abs=1e-6)


def test_refusal_collate_draws_a_refusal_per_item_with_the_true_pair_kept():
    from unlearnkit.data.prompts import Encoded

    items = [RefusalItem(Encoded([1, 2], [7, 9]), [[30, 9], [31, 32, 9]]) for _ in range(64)]
    torch.manual_seed(0)
    b = refusal_collate(items, pad_id=0)
    assert b["labels"].shape == (64, 4) and (b["labels"][:, 2:] == torch.tensor([7, 9])).all()
    firsts = set(b["refusal"]["input_ids"][:, 2].tolist())
    assert firsts == {30, 31}  # both refusals drawn among 64 items
    assert (b["refusal"]["labels"][:, :2] == IGNORE).all()


def test_refusal_methods_without_refusals_are_a_clear_error():
    with pytest.raises(UnlearnkitError, match="needs refusal answers"):
        refusal_items([{"question": "q", "answer": "a"}], None, [], POParams())


# ---------------------------------------------------------------------------------------------
# UNDIAL, BS-T


def test_undial_target_lowers_the_true_logit_by_beta():
    """z_o = [0, 0, 0], y = 1, β = 10: target = [1, e^−10, 1]/(2 + e^−10); β = 0 is softmax(z_o)."""
    t = undial_target(torch.zeros(1, 1, 3), torch.tensor([[1]]), beta=10.0)
    e = math.exp(-10)
    assert t[0, 0].tolist() == pytest.approx([1 / (2 + e), e / (2 + e), 1 / (2 + e)], abs=1e-7)
    assert undial_target(torch.tensor([[[0.0, LN2, 0.0]]]), torch.tensor([[1]]), 0.0)[0, 0].tolist() == pytest.approx(
        [0.25, 0.5, 0.25], abs=1e-7)


def test_undial_loss_is_cross_entropy_to_the_adjusted_target():
    """θ_o uniform, β = 10. Position 0: π_θ uniform → CE = ln 3 whatever the target. Position 1
    (y = 2): target = [1, 1, e^−10]/(2 + e^−10), log π_θ = [−ln 4, −ln 4, −ln 2] →
    CE = (2·ln 4 + e^−10·ln 2)/(2 + e^−10). UNDIAL = (ln 3 + CE_1)/2 ≈ 1.242453."""
    logits, _ = _batch()
    loss, _ = _run(undial_forget, UNDIALParams(beta=10.0), reference=torch.zeros_like(logits))
    e = math.exp(-10)
    assert loss.item() == pytest.approx((LN3 + (2 * math.log(4) + e * LN2) / (2 + e)) / 2, abs=1e-6)


def test_bst_with_lambda_zero_is_ga():
    assert _run(bst_forget, BSTParams(lam=0.0, top_k=20))[0].item() == pytest.approx(GA, abs=1e-6)
    assert _run(bst_forget, BSTParams(lam=0.0, top_k=20))[0].item() == _run(ga_forget, LMParams())[0].item()


def test_bst_soft_target_with_top_k_beliefs():
    """λ = 0.2, k = 2. Position 0: π uniform, top-2 renormalised q = [1/2, 1/2] → belief = −ln 3,
    term = 0.8·(−ln 3) + 0.2·(−ln 3) = −ln 3. Position 1: π = [1/4, 1/4, 1/2], top-2 = {1/2, 1/4}
    → q = [2/3, 1/3], belief = (2/3)·ln(1/2) + (1/3)·ln(1/4) = −(4/3)·ln 2; term =
    0.8·(−ln 2) + 0.2·(−(4/3) ln 2) = −(16/15)·ln 2. BS-T = (−ln 3 − (16/15)·ln 2)/2 ≈ −0.918985.
    With k ≥ V the belief is q = π, i.e. −H(π): position 1 → −(1/2·ln 4 + 1/2·ln 2) = −(3/2)·ln 2."""
    loss, _ = _run(bst_forget, BSTParams(lam=0.2, top_k=2))
    assert loss.item() == pytest.approx((-LN3 - 16 / 15 * LN2) / 2, abs=1e-6)
    full, _ = _run(bst_forget, BSTParams(lam=1.0, top_k=50))
    assert full.item() == pytest.approx((-LN3 - 1.5 * LN2) / 2, abs=1e-6)


def test_bst_belief_gradient_pushes_down_the_top_k_tokens():
    """∂⟨sg(q), log π⟩/∂z = q − π (q fixed). Position 1 (π = [1/4, 1/4, 1/2]), λ = 1, k = 2 with the
    tie broken to token 0 or 1: q − π has +1/6 on the top-1 token (2/3 − 1/2) and +1/12 on the
    second (1/3 − 1/4), −1/4 on the excluded one; times 1/2 for the token mean. Descending this
    lowers the logits of the model's own top-k beliefs. With k = V the gradient is 0."""
    logits, batch = _batch()
    logits = logits.clone().requires_grad_(True)
    loss, _ = bst_forget(ForgetInputs(FixedLogits(logits), batch, BSTParams(lam=1.0, top_k=2)))
    loss.backward()
    g = logits.grad[0, 1].tolist()
    assert g[2] == pytest.approx(1 / 12, abs=1e-6)
    assert sorted(g[:2]) == pytest.approx([-1 / 8, 1 / 24], abs=1e-6)
    logits.grad = None
    loss, _ = bst_forget(ForgetInputs(FixedLogits(logits), batch, BSTParams(lam=1.0, top_k=3)))
    loss.backward()
    assert logits.grad.abs().max().item() == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------------------------
# RMU


def test_rmu_activation_mse_on_hand_made_hidden_states():
    """h = [[1, 0], [0, 1], [3, 4]] with the first position a prompt token (label −100);
    target c·u = 5·[0.6, 0.8] = [3, 4]. Token 1: ((0−3)² + (1−4)²)/2 = 9; token 2: 0.
    MSE = (9 + 0)/2 = 4.5 (the prompt token's error does not count)."""
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]]])
    labels = torch.tensor([[IGNORE, 5, 6]])
    assert activation_mse(h, 5.0 * torch.tensor([0.6, 0.8]), labels).item() == pytest.approx(4.5, abs=1e-6)


def test_rmu_direction_is_a_fixed_seeded_unit_vector():
    u = rmu_direction(64, seed=3)
    assert u.norm().item() == pytest.approx(1.0, abs=1e-6) and (u >= 0).all()
    assert torch.equal(u, rmu_direction(64, seed=3)) and not torch.equal(u, rmu_direction(64, seed=4))


def _tiny_llama(layers: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def _ids_batch():
    ids = torch.tensor([[1, 5, 6, 7, 8], [1, 9, 10, 11, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    labels = torch.tensor([[IGNORE, IGNORE, 6, 7, 8], [IGNORE, IGNORE, 10, 11, IGNORE]])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_rmu_hook_captures_the_layer_output():
    """The hook's capture equals HF's hidden_states[ℓ + 1] (the output of decoder layer ℓ)."""
    model, batch = _tiny_llama(), _ids_batch()
    with torch.no_grad():
        hs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states
        for layer in (0, 2):
            assert torch.allclose(hidden_at(model, batch, layer), hs[layer + 1], atol=1e-6)


def test_rmu_forget_and_retain_terms_on_a_tiny_model():
    """Forget = MSE(h^ℓ, c·u) on answer tokens; retain (act) = MSE(h^ℓ, θ_o's h^ℓ) = 0 when θ = θ_o."""
    model, batch = _tiny_llama(), _ids_batch()
    params = RMUParams(layer=1, steering_coeff=3.0, seed=7)
    loss, _ = rmu_forget(ForgetInputs(model, batch, params, state={}))
    with torch.no_grad():
        h = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[2]
    m = batch["labels"] != IGNORE
    expected = ((h - 3.0 * rmu_direction(16, 7)) ** 2)[m].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert rmu_retain(model, model, batch, params, {}).item() == pytest.approx(0.0, abs=1e-10)


def test_rmu_trains_only_the_mlps_of_layers_l_minus_2_to_l():
    model = _tiny_llama(5)
    layers = decoder_layers(model)
    got = {id(p) for p in rmu_trainable(model, RMUParams(layer=3))}
    want = {id(p) for i in (1, 2, 3) for p in layers[i].mlp.parameters()}
    assert got == want
    assert {id(p) for p in rmu_trainable(model, RMUParams(layer=0))} == {id(p) for p in layers[0].mlp.parameters()}
    down = rmu_trainable(model, RMUParams(layer=3, mlp_params="down_proj"))
    assert {id(p) for p in down} == {id(layers[i].mlp.down_proj.weight) for i in (1, 2, 3)}
    assert layer_index(model, RMUParams()) == 2  # default: the middle layer, n // 2


def test_rmu_layer_out_of_range_is_a_one_line_error():
    model = _tiny_llama(4)
    with pytest.raises(UnlearnkitError) as e:
        rmu_trainable(model, RMUParams(layer=4))
    assert str(e.value) == "RMU layer 4 is out of range: the model has 4 transformer layers, use layer=0..3"
    spec, _ = resolve("rmu")
    with pytest.raises(UnlearnkitError, match="'layer': Input should be greater than or equal to 0"):
        make_params(spec, {"layer": -1})


def test_rmu_retain_term_combines_by_name():
    spec, retain = resolve("rmu")
    assert retain is None and make_params(spec, {}).retain is None and spec.fn.default_retain == "act"
    assert needs_reference(*_spec("rmu")) and needs_reference(*_spec("rmu+kl"))
    assert not needs_reference(*_spec("rmu+none")) and not needs_reference(*_spec("rmu+nll"))
    with pytest.raises(UnlearnkitError, match=r"unknown retain term 'act' in 'ga\+act': use one of none, nll, kl"):
        resolve("ga+act")


# ---------------------------------------------------------------------------------------------
# BS-S


def test_bss_needs_at_least_one_sample():
    spec, _ = resolve("bs-s")
    with pytest.raises(UnlearnkitError) as e:
        make_params(spec, {"n_samples": 0})
    assert "n_samples" in str(e.value) and "at least one sampled response" in str(e.value) and "\n" not in str(e.value)


def test_bss_samples_from_the_current_model_and_regenerates_every_e_epochs(tiny_models, monkeypatch):
    """N responses per prompt before the first epoch, then after epochs E, 2E, … (not after the last)."""
    import unlearnkit.engine.generate as G
    from unlearnkit.data.tofu import QASource
    from unlearnkit.models.lm import load_model

    model, tok = load_model(tiny_models.original)
    records = QASource(tiny_models.data_dir).split("forget10")[:3]
    params = BSSParams(n_samples=2, regenerate_every=2, epochs=5, sample_max_new_tokens=6)
    calls = []
    real = G.sample_ids

    def spy(m, *a, **k):
        calls.append(m)
        return real(m, *a, **k)

    monkeypatch.setattr(G, "sample_ids", spy)
    state: dict = {}
    torch.manual_seed(0)
    bss_setup(model, tok, params, state, records)
    assert len(state["bss_samples"]) == 3 and all(len(s) == 2 for s in state["bss_samples"])
    assert all(1 <= len(r) <= 6 for s in state["bss_samples"] for r in s)
    for epoch in range(5):
        bss_on_epoch_end(model, tok, epoch, params, state, None)
    assert state["bss_generations"] == 3 and all(m is model for m in calls)  # before epoch 0, after epochs 2 and 4
    b = sampled_batch(state, torch.tensor([2, 0]), torch.device("cpu"))
    assert b["input_ids"].shape[0] == 4  # B·N rows
    assert b["input_ids"][0, : len(state["bss_prompts"][2])].tolist() == state["bss_prompts"][2]


# ---------------------------------------------------------------------------------------------
# bad input shared by every reference-based method


def _spec(name):
    spec, retain = resolve(name)
    return spec, make_params(spec, {}, retain)


REFERENCE_METHODS = [s.name for s in methods_for("llm") if needs_reference(s, make_params(s, {}))]


def test_reference_methods_are_the_expected_ones():
    assert set(REFERENCE_METHODS) == {"kl", "npo", "dpo", "tnpo", "wtnpo", "undial", "rmu", "altpo"}


@pytest.mark.parametrize("name", REFERENCE_METHODS)
def test_every_reference_method_on_an_uncopyable_model_is_a_clear_error(name, tiny_models):
    from unlearnkit.data.tofu import QASource
    from unlearnkit.models.lm import load_model

    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)

    class NoCopy(type(model)):
        def __deepcopy__(self, memo):
            raise TypeError("cannot copy an offloaded model")

    model.__class__ = NoCopy
    spec, params = _spec(name)
    with pytest.raises(UnlearnkitError, match=f"method '{name}' needs a frozen copy of the original model"):
        unlearn(model, tok, spec, params.model_copy(update={"max_steps": 1}), src.split("forget10"),
                src.split("retain90"), src.refusals)
