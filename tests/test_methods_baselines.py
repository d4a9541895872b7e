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
from unlearnkit.methods.llm.base import ForgetInputs
from unlearnkit.methods.llm.ceu import CEUParams, ceu_forget, skip_first_answer_tokens

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
