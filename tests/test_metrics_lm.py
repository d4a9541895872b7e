"""Golden-value tests for the language-model metrics (docs/metrics.md); hand arithmetic in each docstring."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics import (
    HIGHER_IS_BETTER,
    MIA_ORIENTATION,
    MU_COMPONENTS,
    UNDIRECTED,
    Aggregate,
    aggregate,
    exact_memorization,
    extraction_strength,
    forget_quality,
    harmonic_mean,
    higher_is_better,
    mem_util_agg,
    mia_auc,
    mia_gradnorm_score,
    mia_loss_score,
    mia_min_k_plus_plus_score,
    mia_min_k_score,
    mia_reference_score,
    mia_zlib_score,
    min_k_plus_plus_moments,
    min_k_plus_plus_token_scores,
    model_utility,
    normalized_probability,
    privleak,
    probability,
    rouge_l_recall,
    rouge_l_recall_batch,
    truth_ratio,
    truth_ratio_forget,
    truth_ratio_retain,
)

TOL = 1e-9
LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------
# Extraction strength and exact memorisation


def test_es_all_correct_is_one() -> None:
    """c = [1,1,1,1]: every token reproduced from the question alone ⇒ k = 0, ES = 1 − 0/4 = 1."""
    assert extraction_strength([1, 1, 1, 1]) == pytest.approx(1.0, abs=TOL)


def test_es_last_token_wrong_is_zero() -> None:
    """c = [1,1,1,0]: the last token is wrong ⇒ k = n = 4, ES = 1 − 4/4 = 0."""
    assert extraction_strength([True, True, True, False]) == pytest.approx(0.0, abs=TOL)


def test_es_all_wrong_is_zero_not_one_over_n() -> None:
    """c = [0,0,0]: k = 3, ES = 1 − 3/3 = 0 (the 1/n convention would give 1/3)."""
    assert extraction_strength([0, 0, 0]) == pytest.approx(0.0, abs=TOL)


def test_es_middle_wrong() -> None:
    """c = [1,0,1,1]: last wrong token at i = 2 (1-based) ⇒ c_i = 1 for i ≥ 3, k = 2, ES = 1 − 2/4 = 0.5."""
    assert extraction_strength([1, 0, 1, 1]) == pytest.approx(0.5, abs=TOL)


def test_es_first_wrong() -> None:
    """c = [0,1,1,1,1]: k = 1, ES = 1 − 1/5 = 0.8 (the prefix y_1 suffices to reproduce the rest)."""
    assert extraction_strength(np.array([0, 1, 1, 1, 1])) == pytest.approx(0.8, abs=TOL)


def test_es_rejects_empty_and_non_flags() -> None:
    """An empty answer has no n to divide by; 2 is not a flag; 2-D input is not one answer."""
    with pytest.raises(UnlearnkitError, match="empty"):
        extraction_strength([])
    with pytest.raises(UnlearnkitError, match="0/1"):
        extraction_strength([1, 2])
    with pytest.raises(UnlearnkitError, match="1-D"):
        extraction_strength([[1, 1]])


def test_exact_memorization() -> None:
    """c = [1,0,1,1]: EM = (1+0+1+1)/4 = 0.75."""
    assert exact_memorization([1, 0, 1, 1]) == pytest.approx(0.75, abs=TOL)


# ---------------------------------------------------------------------------------------------
# Probabilities and truth ratio


def test_probability_is_geometric_mean() -> None:
    """log p = [ln 0.5, ln 0.125]: mean = ln √(0.5·0.125) = ln 0.25 ⇒ probability 0.25."""
    assert probability([math.log(0.5), math.log(0.125)]) == pytest.approx(0.25, abs=TOL)


def test_normalized_probability() -> None:
    """p_c = 0.6, p_w = [0.2]: 0.6 / (0.6 + 0.2) = 0.75; p_c = 0.5, p_w = [0.25, 0.25]: 0.5 / 1.0 = 0.5."""
    assert normalized_probability(math.log(0.6), [math.log(0.2)]) == pytest.approx(0.75, abs=TOL)
    assert normalized_probability(math.log(0.5), [math.log(0.25)] * 2) == pytest.approx(0.5, abs=TOL)


def test_normalized_probability_is_stable_in_log_space() -> None:
    """All means −1000: exp(−1000) underflows to 0 (naive 0/0), but in log space p_c/(3 p_c) = 1/3."""
    assert normalized_probability(-1000.0, [-1000.0, -1000.0]) == pytest.approx(1 / 3, abs=TOL)
    assert normalized_probability(-math.inf, [-1.0]) == 0.0


def test_normalized_probability_needs_alternatives() -> None:
    """No perturbed answers: the ratio would be 1 by construction, so it is an error."""
    with pytest.raises(UnlearnkitError, match="wrong_logprob_means is empty"):
        normalized_probability(-1.0, [])


def test_truth_ratio() -> None:
    """a = ln 0.5; b = (ln 0.25 + ln 0.0625)/2 = ln 0.125; tr = exp(b − a) = 0.125/0.5 = 0.25."""
    tr = truth_ratio(math.log(0.5), [math.log(0.25), math.log(0.0625)])
    assert tr == pytest.approx(0.25, abs=TOL)


def test_truth_ratio_aggregates() -> None:
    """tr = [0.5, 2, 1, 0.25].

    forget: min(tr, 1/tr) = [0.5, 0.5, 1, 0.25], mean = 2.25/4 = 0.5625.
    retain: max(0, 1 − tr) = [0.5, 0, 0, 0.75], mean = 1.25/4 = 0.3125.
    """
    trs = [0.5, 2.0, 1.0, 0.25]
    assert truth_ratio_forget(trs) == pytest.approx(0.5625, abs=TOL)
    assert truth_ratio_retain(trs) == pytest.approx(0.3125, abs=TOL)


def test_truth_ratio_aggregates_edge_values() -> None:
    """tr = 0: min(0, 1/0 = inf) = 0 and max(0, 1 − 0) = 1; a negative ratio is an error (it is not a log)."""
    assert truth_ratio_forget([0.0]) == pytest.approx(0.0, abs=TOL)
    assert truth_ratio_retain([0.0]) == pytest.approx(1.0, abs=TOL)
    with pytest.raises(UnlearnkitError, match="≥ 0"):
        truth_ratio_forget([-0.5])


# ---------------------------------------------------------------------------------------------
# Forget quality


def test_forget_quality_matches_scipy() -> None:
    """The p-value is exactly scipy.stats.ks_2samp(model, reference).pvalue; log is its natural log."""
    rng = np.random.default_rng(0)
    model, ref = rng.uniform(0, 1, 40), rng.uniform(0.2, 1.2, 35)
    expected = scipy.stats.ks_2samp(model, ref)
    fq = forget_quality(model, ref)
    assert fq.pvalue == pytest.approx(float(expected.pvalue), rel=1e-12, abs=0)
    assert fq.log_pvalue == pytest.approx(math.log(float(expected.pvalue)), abs=TOL)
    assert fq.statistic == pytest.approx(float(expected.statistic), abs=TOL)
    assert 0.0 < fq.pvalue < 1.0


def test_forget_quality_hand_value() -> None:
    """Model [1,2,3] vs reference [4,5,6]: D = 1; exact p = 2 / C(6,3) = 2/20 = 0.1, ln p = −2.302585…."""
    fq = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert fq.statistic == pytest.approx(1.0, abs=TOL)
    assert fq.pvalue == pytest.approx(0.1, abs=1e-12)
    assert fq.log_pvalue == pytest.approx(math.log(0.1), abs=1e-9)


def test_forget_quality_against_itself_is_one() -> None:
    """A set against itself: D = 0, p = 1, ln p = 0."""
    trs = [0.3, 0.7, 0.9, 1.0, 0.2]
    fq = forget_quality(trs, trs)
    assert fq.pvalue == pytest.approx(1.0, abs=TOL)
    assert fq.log_pvalue == pytest.approx(0.0, abs=TOL)
    assert not fq.underflow


def test_forget_quality_underflow_is_clamped_and_flagged() -> None:
    """1000 vs 1000 fully separated values: p = 2/C(2000,1000) ≈ 1e-600 underflows to 0 in float64;
    log_pvalue = ln(5e-324) = −744.44… (an upper bound) and underflow is True."""
    a = np.arange(1000, dtype=float)
    fq = forget_quality(a, a + 1000.0)
    assert fq.pvalue == 0.0
    assert fq.underflow
    assert fq.log_pvalue == pytest.approx(math.log(math.ulp(0.0)), abs=TOL)
    assert fq.log_pvalue == pytest.approx(-744.4400719213812, abs=1e-9)


def test_forget_quality_without_reference_is_an_error() -> None:
    """No reference ⇒ a clear error naming --reference, never a silent None."""
    with pytest.raises(UnlearnkitError, match="--reference PATH"):
        forget_quality([0.5, 0.6], None)
    with pytest.raises(UnlearnkitError, match="--reference PATH"):
        forget_quality([0.5, 0.6], [])


# ---------------------------------------------------------------------------------------------
# ROUGE-L recall


def test_rouge_l_recall() -> None:
    """target "the cat sat on the mat" (6 tokens); prediction "the cats sat on a mat" stems "cats"→"cat";
    LCS = the cat sat on mat = 5 tokens ⇒ recall 5/6. An exact copy has recall 1; nothing in common, 0."""
    assert rouge_l_recall("the cats sat on a mat", "the cat sat on the mat") == pytest.approx(5 / 6, abs=TOL)
    assert rouge_l_recall("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0, abs=TOL)
    assert rouge_l_recall("dogs bark", "the cat sat") == pytest.approx(0.0, abs=TOL)


def test_rouge_l_recall_batch() -> None:
    """Per sample: [5/6, 1/2]; target "red green blue white" (4 tokens), prediction "red blue": LCS 2 ⇒ 2/4."""
    out = rouge_l_recall_batch(
        ["the cats sat on a mat", "red blue"], ["the cat sat on the mat", "red green blue white"]
    )
    assert out == pytest.approx([5 / 6, 0.5], abs=TOL)
    with pytest.raises(UnlearnkitError, match="1 targets"):
        rouge_l_recall_batch(["a", "b"], ["a"])


# ---------------------------------------------------------------------------------------------
# Harmonic means: model utility and Mem / Util / Agg


def test_harmonic_mean() -> None:
    """HM(1, 0.5, 0.25) = 3 / (1 + 2 + 4) = 3/7; any zero ⇒ 0; empty is an error."""
    assert harmonic_mean([1.0, 0.5, 0.25]) == pytest.approx(3 / 7, abs=TOL)
    assert harmonic_mean([1.0, 0.0, 0.5]) == 0.0
    with pytest.raises(UnlearnkitError, match="empty"):
        harmonic_mean([])


def test_model_utility_from_dict() -> None:
    """Eight components 1.0 and wf_truth_ratio 0.5: MU = 9 / (8·1 + 1/0.5) = 9/10 = 0.9."""
    values = dict.fromkeys(MU_COMPONENTS, 1.0)
    values["wf_truth_ratio"] = 0.5
    assert len(MU_COMPONENTS) == 9
    assert model_utility(values) == pytest.approx(0.9, abs=TOL)
    assert model_utility(list(values.values())) == pytest.approx(0.9, abs=TOL)


def test_model_utility_zero_component_gives_zero() -> None:
    """ra_rouge = 0 ⇒ 1/0 dominates the sum ⇒ MU = 0."""
    values = dict.fromkeys(MU_COMPONENTS, 0.8)
    values["ra_rouge"] = 0.0
    assert model_utility(values) == 0.0


def test_model_utility_missing_and_unknown_keys() -> None:
    """Missing components are named; unknown ones too."""
    values = dict.fromkeys(MU_COMPONENTS, 0.5)
    del values["wf_prob"], values["ra_rouge"]
    with pytest.raises(UnlearnkitError, match=r"missing components \['ra_rouge', 'wf_prob'\]"):
        model_utility(values)
    with pytest.raises(UnlearnkitError, match="unknown components"):
        model_utility({**dict.fromkeys(MU_COMPONENTS, 0.5), "retian_prob": 0.5})


def test_mem_util_agg() -> None:
    """ES 0.5, EM 0.75, ParaProb 0.8, TR 0 ⇒ parts 0.5, 0.25, 0.2, 1.0;
    Mem = 4 / (2 + 4 + 5 + 1) = 1/3; Util = MU = 0.6; Agg = 2 / (3 + 1/0.6) = 2 / (14/3) = 3/7."""
    r = mem_util_agg(es=0.5, em=0.75, para_prob=0.8, forget_tr_true_better=0.0, util=0.6)
    assert r.mem == pytest.approx(1 / 3, abs=TOL)
    assert r.util == pytest.approx(0.6, abs=TOL)
    assert r.agg == pytest.approx(3 / 7, abs=TOL)
    assert "1−ES=0.5000" in r.composition and "1−TR=1.0000" in r.composition
    assert "Util = MU=0.6000" in r.composition and "Agg = HM(Mem, Util) = 0.4286" in r.composition


def test_mem_util_agg_with_fluency_and_zero() -> None:
    """Same, fluency 0.5 ⇒ Util = 0.3, Agg = 2 / (3 + 1/0.3) = 2 / (19/3) = 6/19.
    ES = 1 (fully extractable) ⇒ 1 − ES = 0 ⇒ Mem = 0 ⇒ Agg = 0."""
    r = mem_util_agg(0.5, 0.75, 0.8, 0.0, 0.6, fluency=0.5)
    assert r.util == pytest.approx(0.3, abs=TOL)
    assert r.agg == pytest.approx(6 / 19, abs=TOL)
    assert "fluency=0.5000" in r.composition
    z = mem_util_agg(1.0, 0.2, 0.2, 0.2, 0.9)
    assert z.mem == 0.0 and z.agg == 0.0
    with pytest.raises(UnlearnkitError, match=r"\[0, 1\]"):
        mem_util_agg(0.5, 0.5, 0.5, 0.5, 0.5, fluency=4.0)


# ---------------------------------------------------------------------------------------------
# Membership inference


def test_mia_loss_score() -> None:
    """log p = [ln 0.5, ln 0.25]: −mean NLL = (−0.693147 − 1.386294)/2 = −1.5 ln 2 = −1.039721."""
    assert mia_loss_score([math.log(0.5), math.log(0.25)]) == pytest.approx(-1.5 * LN2, abs=TOL)


def test_mia_zlib_score() -> None:
    """len(zlib.compress(b"hello world")) = 19 bytes; mean NLL = (1 + 2 + 3)/3 = 2 ⇒ score = −2/19 = −0.105263.
    (The mean, as the published attack, MUSE and OpenUnlearning; unlearnkit ≤ 0.1 used the sum, −6/19.)"""
    assert len(zlib.compress(b"hello world")) == 19
    assert mia_zlib_score([-1.0, -2.0, -3.0], "hello world") == pytest.approx(-2 / 19, abs=TOL)
    assert mia_zlib_score([-1.0, -2.0, -3.0], "hello world") != pytest.approx(-6 / 19, abs=1e-3)


def test_mia_reference_score() -> None:
    """Mean log-probs −0.5 (model) and −2.0 (reference): score = −0.5 − (−2.0) = 1.5 = NLL_ref − NLL_θ
    = ln(ppl_ref/ppl_θ) = ln(e^2/e^0.5). A sample the reference finds as easy scores 0."""
    assert mia_reference_score(-0.5, -2.0) == pytest.approx(1.5, abs=TOL)
    assert mia_reference_score(-2.0, -2.0) == pytest.approx(0.0, abs=TOL)
    assert mia_reference_score(mia_loss_score([math.log(0.5), math.log(0.25)]),
                               mia_loss_score([math.log(0.25), math.log(0.25)])) == pytest.approx(0.5 * LN2, abs=TOL)
    # members easier for θ than for θ_r ⇒ AUC 1: members [1.5, 1.0], non-members [0.1, −0.2]
    assert mia_auc([mia_reference_score(-0.5, -2.0), mia_reference_score(-1.0, -2.0)],
                   [mia_reference_score(-1.9, -2.0), mia_reference_score(-2.2, -2.0)]) == pytest.approx(1.0, abs=TOL)


def test_mia_gradnorm_score() -> None:
    """‖g‖ = 0.3 ⇒ score −0.3; members have flatter loss (smaller norms): [0.1, 0.2] vs [0.5, 0.9] ⇒ AUC 1."""
    assert mia_gradnorm_score(0.3) == pytest.approx(-0.3, abs=TOL)
    assert mia_auc([mia_gradnorm_score(0.1), mia_gradnorm_score(0.2)],
                   [mia_gradnorm_score(0.5), mia_gradnorm_score(0.9)]) == pytest.approx(1.0, abs=TOL)
    with pytest.raises(UnlearnkitError, match="norm"):
        mia_gradnorm_score(-1.0)


def test_mia_min_k_score() -> None:
    """log p = [−0.1, −5, −0.2, −3, −0.5], n = 5.
    k = 0.4: int(2.0) = 2 lowest = {−5, −3}, mean −4.  k = 0.1: int(0.5) = 0 → max(1, 0) = 1 ⇒ −5.
    k = 1: all, mean = −8.8/5 = −1.76."""
    lp = [-0.1, -5.0, -0.2, -3.0, -0.5]
    assert mia_min_k_score(lp) == pytest.approx(-4.0, abs=TOL)
    assert mia_min_k_score(lp, k=0.1) == pytest.approx(-5.0, abs=TOL)
    assert mia_min_k_score(lp, k=1.0) == pytest.approx(-1.76, abs=TOL)
    with pytest.raises(UnlearnkitError, match="fraction"):
        mia_min_k_score(lp, k=40)


def test_min_k_plus_plus_token_scores_and_score() -> None:
    """z = (log p − μ)/σ: [(−1 + 2)/0.5, (−2 + 2)/2] = [2, 0].
    Min-K++ of z = [2, 0, −1, 3, 1] with k = 0.4: 2 lowest = {−1, 0}, mean −0.5."""
    z = min_k_plus_plus_token_scores([-1.0, -2.0], [-2.0, -2.0], [0.5, 2.0])
    np.testing.assert_allclose(z, [2.0, 0.0], atol=TOL)
    assert mia_min_k_plus_plus_score([2.0, 0.0, -1.0, 3.0, 1.0]) == pytest.approx(-0.5, abs=TOL)


def test_min_k_plus_plus_moments() -> None:
    """π = [0.5, 0.25, 0.25, 0]: μ = 0.5·(−ln2) + 0.5·(−2 ln2) = −1.5 ln2;
    E[(log π)²] = 0.5·ln²2 + 0.5·4 ln²2 = 2.5 ln²2; σ² = 2.5 − 2.25 = 0.25 ln²2 ⇒ σ = 0.5 ln2.
    The zero-probability entry (log π = −inf) contributes 0. Uniform rows have σ = 0."""
    row = [math.log(0.5), math.log(0.25), math.log(0.25), -math.inf]
    uniform = [math.log(0.25)] * 4
    mu, sigma = min_k_plus_plus_moments(np.array([row, uniform]))
    np.testing.assert_allclose(mu, [-1.5 * LN2, -2 * LN2], atol=TOL)
    np.testing.assert_allclose(sigma, [0.5 * LN2, 0.0], atol=1e-7)


def test_mia_auc_orientation() -> None:
    """Members scored higher than every non-member ⇒ AUC 1.0; reversed ⇒ 0.0.
    Members [0.9, 0.3] vs non-members [0.5, 0.1]: pairs won 0.9>0.5, 0.9>0.1, 0.3>0.1 = 3 of 4 ⇒ 0.75."""
    assert mia_auc([0.9, 0.8], [0.1, 0.2]) == pytest.approx(1.0, abs=TOL)
    assert mia_auc([0.1, 0.2], [0.9, 0.8]) == pytest.approx(0.0, abs=TOL)
    assert mia_auc([0.9, 0.3], [0.5, 0.1]) == pytest.approx(0.75, abs=TOL)
    assert "higher = more member-like" in MIA_ORIENTATION


def test_mia_auc_with_loss_scores_orients_members_up() -> None:
    """Members have higher log-probs (−0.1 vs −2) ⇒ higher LOSS score (−mean NLL) ⇒ AUC 1.0."""
    members = [mia_loss_score([-0.1, -0.2]), mia_loss_score([-0.1, -0.1])]
    nonmembers = [mia_loss_score([-2.0, -3.0]), mia_loss_score([-2.5, -1.5])]
    assert mia_auc(members, nonmembers) == pytest.approx(1.0, abs=TOL)


def test_mia_auc_empty_side_is_an_error() -> None:
    """No non-members (e.g. no holdout split) ⇒ error naming the empty side."""
    with pytest.raises(UnlearnkitError, match="non-member"):
        mia_auc([0.5], [])


def test_privleak_sign() -> None:
    """MUSE's convention, A' = 1 − AUC, PrivLeak = (A'(θ_u) − A'(θ_r)) / A'(θ_r) × 100:
    AUC 0.6 vs 0.5: (0.4 − 0.5)/0.5·100 = −20 (under-unlearning); AUC 0.4 vs 0.5: (0.6 − 0.5)/0.5·100 = +20
    (over-unlearning); equal ⇒ 0. The original model on TOFU (AUC 1.0, θ_r 0.5): (0 − 0.5)/0.5·100 = −100;
    AUC 0.9 vs θ_r 0.6: (0.1 − 0.4)/0.4·100 = −75. A reference with AUC 1 (A' = 0) is an error."""
    assert privleak(0.6, 0.5) == pytest.approx(-20.0, abs=TOL)
    assert privleak(0.4, 0.5) == pytest.approx(20.0, abs=TOL)
    assert privleak(0.5, 0.5) == pytest.approx(0.0, abs=TOL)
    assert privleak(1.0, 0.5) == pytest.approx(-100.0, abs=TOL)
    assert privleak(0.9, 0.6) == pytest.approx(-75.0, abs=TOL)
    with pytest.raises(UnlearnkitError, match="reference AUC is 1"):
        privleak(0.5, 1.0)
    assert privleak(0.5, 0.0) == pytest.approx(-50.0, abs=TOL)  # (0.5 − 1)/1·100


# ---------------------------------------------------------------------------------------------
# Aggregation and orientation


def test_aggregate() -> None:
    """Per-sample ES [0.5, 1, 0]: mean = 1.5/3 = 0.5 over n = 3, lower is better on the forget set."""
    agg = aggregate("extraction_strength", [0.5, 1.0, 0.0], HIGHER_IS_BETTER["extraction_strength"])
    assert isinstance(agg, Aggregate)
    assert agg.value == pytest.approx(0.5, abs=TOL)
    assert (agg.n, agg.higher_is_better, agg.name) == (3, False, "extraction_strength")


def test_orientation_table() -> None:
    """Probability is ↑ on retain sets and ↓ on forget sets; FQ ↑; PrivLeak has no direction (≈ 0 ideal)."""
    assert higher_is_better("probability") is True
    assert higher_is_better("probability", on_forget=True) is False
    assert higher_is_better("forget_quality", on_forget=True) is True
    assert higher_is_better("privleak") is None and "privleak" in UNDIRECTED
    with pytest.raises(UnlearnkitError, match="unknown metric"):
        higher_is_better("extraction_strenght")


# ---------------------------------------------------------------------------------------------
# Inputs and imports


def test_torch_tensor_inputs() -> None:
    """Torch tensors (bool, float32 with grad, bfloat16, 0-d) give the same values as lists."""
    torch = pytest.importorskip("torch")
    assert extraction_strength(torch.tensor([True, False, True, True])) == pytest.approx(0.5, abs=TOL)
    assert exact_memorization(torch.tensor([1, 0, 1, 1])) == pytest.approx(0.75, abs=TOL)
    lp = torch.tensor([math.log(0.5), math.log(0.125)], requires_grad=True)
    assert probability(lp) == pytest.approx(0.25, abs=1e-6)  # float32 precision
    assert probability(lp.to(torch.bfloat16)) == pytest.approx(0.25, abs=1e-2)  # bfloat16 precision
    tr = truth_ratio(torch.tensor(math.log(0.5)), torch.tensor([math.log(0.25), math.log(0.0625)]))
    assert tr == pytest.approx(0.25, abs=1e-6)
    assert mia_auc(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2])) == pytest.approx(1.0, abs=TOL)


def test_import_does_not_load_torch_or_transformers() -> None:
    """`import unlearnkit.metrics` in a fresh interpreter leaves torch and transformers out of sys.modules."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys, unlearnkit.metrics; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# The OpenUnlearning convention (metrics.convention=openunlearning)


def test_openunlearning_convention_drops_eos_for_es_em_min_k() -> None:
    """Answer flags c = [1, 0, 1, 1] with the last position the EOS token.
    unlearnkit: ES = 1 − 2/4 = 0.5 (last wrong token at position 2), EM = 3/4.
    openunlearning: EOS dropped ⇒ c = [1, 0, 1]: ES = 1 − 2/3 = 1/3, EM = 2/3.
    Min-K% (k = 0.4) of log p = [−1, −3, −2, −0.1]: ours int(1.6) = 1 lowest = −3; OU without EOS
    [−1, −3, −2]: int(1.2) = 1 lowest = −3. Min-K% with k = 0.5: ours int(2) = 2 lowest mean (−3 − 2)/2 = −2.5;
    OU int(1.5) = 1 ⇒ −3. Min-K%++ reads z the same way."""
    from unlearnkit.metrics import convention

    ours, ou = convention("unlearnkit"), convention("openunlearning")
    c = [1, 0, 1, 1]
    assert ours.es(c) == pytest.approx(0.5, abs=TOL) and ou.es(c) == pytest.approx(1 / 3, abs=TOL)
    assert ours.em(c) == pytest.approx(0.75, abs=TOL) and ou.em(c) == pytest.approx(2 / 3, abs=TOL)
    lp = [-1.0, -3.0, -2.0, -0.1]
    assert ours.min_k(lp, 0.4) == pytest.approx(-3.0, abs=TOL) and ou.min_k(lp, 0.4) == pytest.approx(-3.0, abs=TOL)
    assert ours.min_k(lp, 0.5) == pytest.approx(-2.5, abs=TOL) and ou.min_k(lp, 0.5) == pytest.approx(-3.0, abs=TOL)
    assert ou.min_k_plus_plus(lp, 0.5) == pytest.approx(-3.0, abs=TOL)
    with pytest.raises(UnlearnkitError, match="convention"):
        convention("tofu-2024")


def test_openunlearning_es_counts_a_wrong_last_token_as_one_over_n() -> None:
    """Flags without EOS c = [1, 1, 0] (n = 3), the last token wrong: no prefix lets greedy decoding finish, so
    unlearnkit's ES = 0 (k = n); OpenUnlearning's search stops at k = n − 1 = 2 ⇒ ES = 1 − 2/3 = 1/3 = 1/n.
    All correct ⇒ 1 in both; c = [0, 1, 1] ⇒ k = 1, 1 − 1/3 = 2/3 in both."""
    from unlearnkit.metrics import extraction_strength_one_over_n

    assert extraction_strength([1, 1, 0]) == pytest.approx(0.0, abs=TOL)
    assert extraction_strength_one_over_n([1, 1, 0]) == pytest.approx(1 / 3, abs=TOL)
    assert extraction_strength_one_over_n([0, 0, 0, 0]) == pytest.approx(0.25, abs=TOL)
    for c, es in (([1, 1, 1], 1.0), ([0, 1, 1], 2 / 3)):
        assert extraction_strength_one_over_n(c) == pytest.approx(es, abs=TOL) == extraction_strength(c)
