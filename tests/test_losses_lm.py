"""Golden values for the language-model loss terms on hand-built logits."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnkit.data.prompts import IGNORE
from unlearnkit.methods.llm.base import (
    ForgetInputs,
    LMParams,
    kl_per_token,
    masked_mean,
    retain_nll,
    select_lowest_loss,
    token_logprobs,
)
from unlearnkit.methods.llm.ga import ga_forget
from unlearnkit.methods.llm.npo import NPOParams, npo_forget, npo_loss

LN2, LN3 = math.log(2), math.log(3)


class FixedLogits(torch.nn.Module):
    """A 'model' that returns the given logits (batch, seq, vocab) plus a trainable offset."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def forward(self, input_ids=None, attention_mask=None, **_):
        return type("Out", (), {"logits": self.logits + self.offset})()


def _batch():
    """One sequence of 3 tokens; the prompt token is masked, so 2 answer tokens are scored.

    position 0 logits [0, 0, 0]   predicts label 1 → p = 1/3
    position 1 logits [0, 0, ln2] predicts label 2 → p = 2/4 = 1/2
    position 2 is never scored (nothing follows it).
    """
    logits = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, LN2], [5.0, 0.0, 0.0]]])
    labels = torch.tensor([[IGNORE, 1, 2]])
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.ones(1, 3, dtype=torch.long),
             "labels": labels}
    return logits, batch


def test_token_logprobs_align_predictions_with_targets():
    """log p = [−ln 3, −ln 2] and the answer mask covers exactly these two positions."""
    logits, batch = _batch()
    lp, mask = token_logprobs(logits, batch["labels"])
    assert mask.tolist() == [[True, True]]
    assert lp[0].tolist() == pytest.approx([-LN3, -LN2], abs=1e-6)


def test_ga_forget_is_mean_token_logprob():
    """GA = mean_i log p_i = (−ln 3 − ln 2)/2 = −ln 6 / 2 ≈ −0.895880."""
    logits, batch = _batch()
    loss, terms = ga_forget(ForgetInputs(FixedLogits(logits), batch, LMParams()))
    assert loss.item() == pytest.approx(-math.log(6) / 2, abs=1e-6)
    assert terms["forget_nll"] == pytest.approx(math.log(6) / 2, abs=1e-6)


def test_temperature_scaling_divides_logits_inside_the_forget_term():
    """T = 2: position 0 stays uniform (−ln 3); position 1 logits [0, 0, ln2/2] → p = √2/(2+√2).
    GA = (−ln 3 + ln √2 − ln(2+√2)) / 2 ≈ −0.9474."""
    logits, batch = _batch()
    loss, _ = ga_forget(ForgetInputs(FixedLogits(logits), batch, LMParams(temperature=2.0)))
    expected = (-LN3 + math.log(math.sqrt(2)) - math.log(2 + math.sqrt(2))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_loss_selection_keeps_the_lowest_cross_entropy_tokens():
    """q = 0.5 of 2 tokens → ceil(1) = 1 token: CE = [ln 3, ln 2] → keep the second; GA = −ln 2."""
    logits, batch = _batch()
    loss, _ = ga_forget(ForgetInputs(FixedLogits(logits), batch, LMParams(loss_selection=0.5)))
    assert loss.item() == pytest.approx(-LN2, abs=1e-6)


def test_select_lowest_loss_counts_ceil_q_n():
    """5 tokens with log-probs [−5, −1, −3, −2, −4], q = 0.5 → ceil(2.5) = 3 kept: −1, −2, −3;
    with only the first 3 tokens in the mask and q = 0.4 → ceil(1.2) = 2 kept: −1, −3."""
    lp = torch.tensor([[-5.0, -1.0, -3.0, -2.0, -4.0]])
    mask = torch.ones_like(lp, dtype=torch.bool)
    assert select_lowest_loss(lp, mask, 0.5).tolist() == [[False, True, True, True, False]]
    assert select_lowest_loss(lp, mask, 1.0).tolist() == mask.tolist()
    pad = torch.tensor([[True, True, True, False, False]])
    # only 3 answer tokens (−5, −1, −3): q = 0.4 → ceil(1.2) = 2 kept: −1 and −3
    assert select_lowest_loss(lp, pad, 0.4).tolist() == [[False, True, True, False, False]]


def test_npo_loss_golden_values():
    """β = 0.1: Δ = log π_θ − log π_ref.
    Δ = 0   → −(2/β) log σ(0) = 20 ln 2 ≈ 13.862944;
    Δ = −1  → −20 log σ(0.1) = 20 ln(1 + e^−0.1) ≈ 12.887931;
    mean over the two sequences ≈ 13.375437."""
    seq = torch.tensor([-2.0, -3.0])
    ref = torch.tensor([-2.0, -2.0])
    expected = (20 * LN2 + 20 * math.log(1 + math.exp(-0.1))) / 2
    assert npo_loss(seq, ref, 0.1).item() == pytest.approx(expected, abs=1e-5)


def test_npo_forget_against_the_reference_model():
    """θ = the hand logits (Σ log p = −ln 6); θ_ref uniform at both positions (Σ = −2 ln 3).
    Δ = −ln 6 + 2 ln 3 = ln 1.5; NPO = −20 log σ(−0.1 ln 1.5) = 20 ln(1 + 1.5^0.1) ≈ 14.27..."""
    logits, batch = _batch()
    ref = FixedLogits(torch.zeros_like(logits))
    loss, terms = npo_forget(ForgetInputs(FixedLogits(logits), batch, NPOParams(beta=0.1), reference=ref))
    delta = -math.log(6) + 2 * LN3
    assert terms["log_ratio"] == pytest.approx(delta, abs=1e-6)
    assert loss.item() == pytest.approx(20 * math.log(1 + math.exp(0.1 * delta)), abs=1e-5)


def test_kl_retain_term_golden_value():
    """π_ref uniform over 3 tokens, π_θ = [1/4, 1/4, 1/2]:
    KL(π_ref ‖ π_θ) = (1/3)[2 ln(4/3) + ln(2/3)] ≈ 0.056633; a masked position does not count."""
    ref = torch.zeros(1, 2, 3)
    cur = torch.tensor([[[0.0, 0.0, LN2], [9.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, False]])
    expected = (2 * math.log(4 / 3) + math.log(2 / 3)) / 3
    assert kl_per_token(ref, cur, mask).item() == pytest.approx(expected, abs=1e-6)
    assert kl_per_token(cur, cur, torch.ones(1, 2, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-7)


def test_nll_retain_term_is_mean_answer_nll():
    """NLL = (ln 3 + ln 2)/2 = ln 6 / 2."""
    logits, batch = _batch()
    assert retain_nll(FixedLogits(logits), batch).item() == pytest.approx(math.log(6) / 2, abs=1e-6)


def test_masked_mean_ignores_masked_entries():
    """mean of [1, 3] (the 5 is masked) = 2."""
    assert masked_mean(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([True, True, False])).item() == 2.0
