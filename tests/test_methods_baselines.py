"""Golden values for the seed's and OpenUnlearning's baselines (issue #21): CE-U, PDU, FLAT, AltPO, RT.

The hand-built batch (see ``test_losses_lm._batch``): one sequence, two scored answer tokens.
Position 0: logits [0, 0, 0], label 1 → p = 1/3. Position 1: logits [0, 0, ln 2], label 2 → p = 1/2,
π = [1/4, 1/4, 1/2]. Position 2 (logits [5, 0, 0]) is never scored.
"""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.data.prompts import IGNORE
from unlearnkit.methods.llm.altpo import AltPOParams, altpo_forget, altpo_loss, altpo_setup, generation_prompts
from unlearnkit.methods.llm.base import ForgetInputs
from unlearnkit.methods.llm.ceu import CEUParams, ceu_forget, skip_first_answer_tokens
from unlearnkit.methods.llm.flat import DIVERGENCES, FLATParams, flat_forget
from unlearnkit.methods.llm.pdu import PDUParams, pdu_forget, pdu_on_epoch_end, pdu_retain

from .test_losses_lm import FixedLogits, _batch

LN2, LN3 = math.log(2), math.log(3)


def _run(term, params, logits=None, batch=None, reference=None, state=None):
    lg, b = _batch()
    ref = None if reference is None else FixedLogits(reference)
    return term(ForgetInputs(FixedLogits(lg if logits is None else logits), batch or b, params, reference=ref,
                             state={} if state is None else state))


# ---------------------------------------------------------------------------------------------
# CE-U


def test_ceu_skips_the_first_answer_token_by_default():
    """n = 1: only position 1 counts. Target q = softmax([0, 0, −∞]) = [1/2, 1/2, 0] (true token 2 removed),
    log π = [−ln 4, −ln 4, −ln 2] → CE = (1/2)·ln 4 + (1/2)·ln 4 = 2 ln 2 ≈ 1.386294."""
    loss, terms = _run(ceu_forget, CEUParams())
    assert loss.item() == pytest.approx(2 * LN2, abs=1e-6)
    assert terms["forget_nll"] == pytest.approx(LN2, abs=1e-6)  # −log p at position 1 only


def test_ceu_over_every_answer_token():
    """n = 0: position 0 adds q = [1/2, 0, 1/2] against log π = −ln 3 each → CE = ln 3;
    CE-U = (ln 3 + 2 ln 2)/2 = ln 12 / 2 ≈ 1.242453."""
    loss, _ = _run(ceu_forget, CEUParams(ignore_first_n_answer_tokens=0))
    assert loss.item() == pytest.approx(math.log(12) / 2, abs=1e-6)


def test_ceu_gradient_pushes_the_true_token_down():
    """∂CE/∂z = π − q with q fixed: position 1 → [1/4 − 1/2, 1/4 − 1/2, 1/2 − 0] = [−1/4, −1/4, 1/2]
    (one token in the mean); position 0 is skipped (n = 1) → gradient 0."""
    logits, batch = _batch()
    logits = logits.clone().requires_grad_(True)
    loss, _ = ceu_forget(ForgetInputs(FixedLogits(logits), batch, CEUParams()))
    loss.backward()
    assert logits.grad[0, 1].tolist() == pytest.approx([-0.25, -0.25, 0.5], abs=1e-6)
    assert logits.grad[0, 0].abs().max().item() == pytest.approx(0.0, abs=1e-9)
    assert logits.grad[0, 2].abs().max().item() == pytest.approx(0.0, abs=1e-9)


def test_ceu_temperature_divides_model_and_target_logits():
    """T = 2 at position 1: z/T = [0, 0, ln 2 / 2] → π = [1, 1, √2]/(2 + √2); q = [1/2, 1/2, 0];
    CE = log(2 + √2) ≈ 1.227947."""
    loss, _ = _run(ceu_forget, CEUParams(temperature=2.0))
    assert loss.item() == pytest.approx(math.log(2 + math.sqrt(2)), abs=1e-6)


def test_skip_first_answer_tokens_per_row():
    mask = torch.tensor([[False, True, True, True], [False, False, True, False]])
    assert skip_first_answer_tokens(mask, 1).tolist() == [[False, False, True, True], [False, False, False, False]]
    assert skip_first_answer_tokens(mask, 0).tolist() == mask.tolist()


# ---------------------------------------------------------------------------------------------
# PDU


def test_pdu_logit_margin_flattening_on_the_hand_batch():
    """Position 0: logits constant → (max − mean)² = 0. Position 1: max = ln 2, mean = ln 2 / 3 →
    (2 ln 2 / 3)² = 4 ln²2 / 9. Per-sequence mean over its 2 answer tokens: 2 ln²2 / 9 ≈ 0.106766.
    The dual variable λ_0 = 100 is logged."""
    loss, terms = _run(pdu_forget, PDUParams())
    assert loss.item() == pytest.approx(2 * LN2**2 / 9, abs=1e-7)
    assert terms["dual"] == 100.0


def test_pdu_averages_per_sequence_then_over_the_batch():
    """A scores both positions (mean 2 ln²2/9), B only position 1 (mean 4 ln²2/9): PDU = ln²2/3 ≈ 0.160149;
    a token mean over the three tokens would give 8 ln²2/27 ≈ 0.142355. T = 2 divides the logits: loss / 4."""
    logits, batch = _batch()
    logits = logits.expand(2, -1, -1)
    batch = {**{k: v.expand(2, -1) for k, v in batch.items()}, "labels": torch.tensor([[IGNORE, 1, 2], [IGNORE, IGNORE, 2]])}
    loss, _ = pdu_forget(ForgetInputs(FixedLogits(logits), batch, PDUParams()))
    assert loss.item() == pytest.approx(LN2**2 / 3, abs=1e-7)
    cold, _ = pdu_forget(ForgetInputs(FixedLogits(logits), batch, PDUParams(temperature=2.0)))
    assert cold.item() == pytest.approx(LN2**2 / 12, abs=1e-7)


def test_pdu_dual_term_and_dual_ascent():
    """Retain batch = the hand batch: NLL = (ln 3 + ln 2)/2 = ln 6 / 2 ≈ 0.895880. λ_0 = 100, ε = 0.3:
    term = 100·(0.895880 − 0.3) = 59.587973. Ascent (warm-up over): λ_1 = 100 + 5·0.595880 = 102.979399.
    During warm-up, or in eval mode (probes), λ stays at 100."""
    logits, batch = _batch()
    model = FixedLogits(logits)
    nll = math.log(6) / 2
    params = PDUParams(dual_warmup_epochs=0)
    state: dict = {}
    assert pdu_retain(model, None, batch, params, state).item() == pytest.approx(100 * (nll - 0.3), abs=1e-4)
    assert state["pdu_dual"] == pytest.approx(100 + 5 * (nll - 0.3), abs=1e-6)
    warm: dict = {}
    pdu_retain(model, None, batch, PDUParams(dual_warmup_epochs=1), warm)
    assert warm["pdu_dual"] == 100.0
    pdu_on_epoch_end(model, None, 0, params, warm, None)
    pdu_retain(model, None, batch, PDUParams(dual_warmup_epochs=1), warm)
    assert warm["pdu_dual"] == pytest.approx(100 + 5 * (nll - 0.3), abs=1e-6)
    probe: dict = {}
    pdu_retain(model.eval(), None, batch, params, probe)
    assert probe["pdu_dual"] == 100.0


def test_pdu_dual_variable_stays_non_negative():
    """λ = 1, ε = 3, η = 5: λ + 5·(0.895880 − 3) < 0 → λ = 0, and the dual term is then 0."""
    logits, batch = _batch()
    model = FixedLogits(logits)
    params = PDUParams(dual_init=1.0, retain_loss_eps=3.0, dual_warmup_epochs=0)
    state: dict = {}
    pdu_retain(model, None, batch, params, state)
    assert state["pdu_dual"] == 0.0
    assert pdu_retain(model, None, batch, params, state).item() == 0.0


def test_pdu_logs_its_dual_variable_at_every_step(tiny_models):
    """In a real run, λ_{t+1} = max(0, λ_t + η·(NLL_t − ε)) with NLL_t − ε = retain_t / λ_t from the step log."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model

    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)
    spec, retain = resolve("pdu")
    params = make_params(spec, {"lr": 1e-3, "batch_size": 4, "max_steps": 4, "dual_warmup_epochs": 0,
                                "dual_init": 2.0, "retain_loss_eps": 0.0, "dual_step_size": 0.5}, retain)
    log = unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"))
    duals = [s["dual"] for s in log.steps]
    assert len(duals) == 4 and duals[0] == 2.0
    for before, after, step in zip(duals, duals[1:], log.steps, strict=False):
        assert after == pytest.approx(max(0.0, before + 0.5 * step["retain"] / before), rel=1e-5)
    assert all("dual" not in s for s in unlearn(load_model(tiny_models.original)[0], tok, spec,
                                                make_params(spec, {"max_steps": 1}, "nll"), src.split("forget10"),
                                                src.split("retain90")).steps)


# ---------------------------------------------------------------------------------------------
# FLAT


def _flat_batch():
    """Forget answer [·, 1, 2]: p = [1/3, 1/2] → P_f = 5/12. Template (refusal) [·, 2, 1]: position 0
    predicts 2 (p = 1/3), position 1 predicts 1 (p = 1/4) → P_e = 7/24."""
    logits, batch = _batch()
    return logits, {**batch, "refusal": {**batch, "labels": torch.tensor([[IGNORE, 2, 1]])}}


@pytest.mark.parametrize("div,expected", [
    ("tv", -math.tanh(7 / 24) / 2 + math.tanh(5 / 12) / 2),   # ≈ 0.055225
    ("kl", -7 / 24 + math.exp(5 / 12 - 1)),                   # ≈ 0.266368
    ("reverse_kl", math.exp(-7 / 24) + 5 / 12 - 1),           # ≈ 0.163684
    ("pearson", -7 / 24 + 5 / 12 + (5 / 12) ** 2 / 4),        # ≈ 0.168403
    ("js", -(LN2 - math.log1p(math.exp(-7 / 24))) + 5 / 12 + math.log1p(math.exp(-5 / 12)) - LN2),
])
def test_flat_golden_values(div, expected):
    """L = −g*(P_e) + f*(g*(P_f)) with P_e = 7/24, P_f = 5/12 (see _flat_batch); the logged probabilities
    are P_f and P_e."""
    logits, batch = _flat_batch()
    loss, terms = flat_forget(ForgetInputs(FixedLogits(logits), batch, FLATParams(divergence=div)))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert terms["forget_prob"] == pytest.approx(5 / 12, abs=1e-6)
    assert terms["template_prob"] == pytest.approx(7 / 24, abs=1e-6)


@pytest.mark.parametrize("div", sorted(DIVERGENCES))
def test_every_flat_divergence_learns_the_template_and_unlearns_the_forget_answer(div):
    """∂L/∂P_e < 0 and ∂L/∂P_f > 0 on all of (0, 1]: descending L raises P_e and lowers P_f."""
    v = torch.linspace(0.01, 1.0, 50, requires_grad=True)
    w = torch.linspace(0.01, 1.0, 50, requires_grad=True)
    g, conj = DIVERGENCES[div]
    (-g(v) + conj(w)).sum().backward()
    assert (v.grad < 0).all() and (w.grad > 0).all()


def test_flat_is_the_default_tv_and_needs_no_reference_nor_retain_data():
    from unlearnkit.methods.unlearn import make_params, needs_reference, resolve

    spec, retain = resolve("flat")
    params = make_params(spec, {}, retain)
    assert params.divergence == "tv" and spec.fn.default_retain == "none" and not needs_reference(spec, params)


# ---------------------------------------------------------------------------------------------
# AltPO


def test_altpo_with_one_alternate_is_dpo_with_that_alternate_chosen():
    """One forget item, one alternate with labels [·, 2, 1] (log π = −ln 3 − ln 4 = −ln 12), true answer
    log π = −ln 6, θ_ref uniform (−2 ln 3 each): margin = (−ln 12 + 2 ln 3) − (−ln 6 + 2 ln 3) = −ln 2;
    AltPO = −(2/β)·log σ(−β ln 2) = 20·ln(1 + 2^0.1) ≈ 14.568100 (β = 0.1), the DPO golden value."""
    logits, batch = _batch()
    state = {"altpo_prompts": [[0]], "altpo_alternates": [[[2, 1]]], "altpo_pad_id": 0, "altpo_same": 0.0}
    loss, terms = _run(altpo_forget, AltPOParams(beta=0.1), batch={**batch, "index": torch.tensor([0])},
                       reference=torch.zeros_like(logits), state=state)
    assert loss.item() == pytest.approx(20 * math.log1p(2 ** 0.1), abs=1e-5)
    assert terms["chosen_log_ratio"] == pytest.approx(-math.log(12) + 2 * LN3, abs=1e-6)
    assert terms["rejected_log_ratio"] == pytest.approx(-math.log(6) + 2 * LN3, abs=1e-6)


def test_altpo_averages_over_each_items_alternates_then_over_items():
    """β = 1, references 0, rejected 0: margins = chosen = [0, 1] (item 0) and [2] (item 1).
    Item 0: (2 ln 2 + 2 ln(1 + e^−1))/2; item 1: 2 ln(1 + e^−2); AltPO = their mean ≈ 0.821685
    (a mean over the three pairs would weigh item 0 twice)."""
    chosen, zeros3, zeros2 = torch.tensor([0.0, 1.0, 2.0]), torch.zeros(3), torch.zeros(2)
    loss = altpo_loss(chosen, zeros3, zeros2, zeros2, torch.tensor([0, 0, 1]), beta=1.0)
    item0 = (2 * LN2 + 2 * math.log1p(math.exp(-1))) / 2
    item1 = 2 * math.log1p(math.exp(-2))
    assert loss.item() == pytest.approx((item0 + item1) / 2, abs=1e-6)


def test_altpo_alternates_from_the_data(tiny_models):
    from unlearnkit.data.prompts import encode_pair
    from unlearnkit.errors import UnlearnkitError
    from unlearnkit.models.lm import load_tokenizer

    tok = load_tokenizer(tiny_models.original)
    recs = [{"question": "Q1?", "answer": "A one.", "alternates": ["B one.", "C one."]},
            {"question": "Q2?", "answer": "A two.", "alternate": "A two."}]
    state: dict = {}
    altpo_setup(None, tok, AltPOParams(), state, recs)  # no model needed: nothing is generated
    assert state["altpo_alternates"] == [[encode_pair(tok, "Q1?", "B one.").answer_ids,
                                          encode_pair(tok, "Q1?", "C one.").answer_ids],
                                         [encode_pair(tok, "Q2?", "A two.").answer_ids]]
    assert state["altpo_same"] == pytest.approx(1 / 3)
    with pytest.raises(UnlearnkitError, match="some forget records carry 'alternates'"):
        altpo_setup(None, tok, AltPOParams(), {}, [recs[0], {"question": "Q3?", "answer": "x"}])


def test_altpo_generates_once_then_reads_the_cache(tiny_models, monkeypatch):
    """Alternates are sampled once from θ_o (N per question, own seeded RNG: the training RNG is untouched);
    a second setup reads them from $UNLEARNKIT_HOME/cache/altpo, a damaged cache file is regenerated."""
    import unlearnkit.methods.llm.altpo as A
    from unlearnkit.data.tofu import QASource
    from unlearnkit.io import home
    from unlearnkit.models.lm import load_model

    model, tok = load_model(tiny_models.original)
    records = QASource(tiny_models.data_dir).split("forget10")[:3]
    params = AltPOParams(n_alternates=2, alternate_max_new_tokens=6, seed=11)
    calls = []
    real = A.sample_alternates
    monkeypatch.setattr(A, "sample_alternates", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    rng = torch.get_rng_state()
    first: dict = {}
    altpo_setup(model, tok, params, first, records)
    assert torch.equal(torch.get_rng_state(), rng)
    assert len(calls) == 1 and [len(a) for a in first["altpo_alternates"]] == [2, 2, 2]
    assert all(1 <= len(a) <= 6 for per in first["altpo_alternates"] for a in per)
    second: dict = {}
    altpo_setup(model, tok, params, second, records)
    assert len(calls) == 1 and second["altpo_alternates"] == first["altpo_alternates"]
    for f in (home() / "cache" / "altpo").glob("*.json"):
        f.write_text("{not json")
    third: dict = {}
    altpo_setup(model, tok, params, third, records)
    assert len(calls) == 2 and third["altpo_alternates"] == first["altpo_alternates"]  # same seed, same samples


def test_altpo_prompt_template_errors_name_the_fields(tiny_models):
    from unlearnkit.errors import UnlearnkitError
    from unlearnkit.models.lm import load_tokenizer

    tok = load_tokenizer(tiny_models.original)
    with pytest.raises(UnlearnkitError, match=r"use only the fields \{question\} and \{answer\}"):
        generation_prompts(tok, [{"question": "q", "answer": "a"}], "Q: {question} {wrong}")
    assert len(generation_prompts(tok, [{"question": "q", "answer": "a"}], "Rewrite {answer} for {question}")) == 1


# ---------------------------------------------------------------------------------------------
# RT (post-hoc)


def test_rt_takes_exactly_k_steps_on_the_retain_split_and_leaves_theta_u_alone(tiny_models):
    """k = 3 steps of batch 64 over retain90 (90 records → 2 batches per pass): passes repeat until k."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.methods.llm.posthoc import PostHocContext
    from unlearnkit.methods.llm.rt import RTParams, rt_apply
    from unlearnkit.models.lm import load_model

    unlearned, tok = load_model(tiny_models.original)
    before = {n: t.clone() for n, t in unlearned.state_dict().items()}
    ctx = PostHocContext(original=None, unlearned=unlearned, tokenizer=tok, source=QASource(tiny_models.data_dir),
                         forget="forget10", reference=None, eval_config=None)
    model, report = rt_apply(ctx, RTParams(steps=3, batch_size=64, lr=1e-3))
    assert report["steps"] == 3 and report["retain_split"] == "retain90"
    assert all(torch.equal(t, before[n]) for n, t in unlearned.state_dict().items())
    assert any(not torch.equal(t, before[n]) for n, t in model.state_dict().items())
