"""Golden values of the recovery under attack (metrics/robustness.py); arithmetic in each docstring."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.metrics.robustness import recovery, worst_recovery


def test_recovery_is_the_share_of_the_gap_the_attack_closes():
    """ES: θ_o 0.9, θ_u 0.1, attacked 0.5 → (0.5 − 0.1) / (0.9 − 0.1) = 0.4 / 0.8 = 0.5.
    Attacked 0.1 → 0; 0.9 → 1; 0.05 → −0.05 / 0.8 = −0.0625; 1.0 → 0.9 / 0.8 = 1.125."""
    assert recovery(0.5, 0.1, 0.9) == pytest.approx(0.5)
    assert recovery(0.1, 0.1, 0.9) == 0.0
    assert recovery(0.9, 0.1, 0.9) == pytest.approx(1.0)
    assert recovery(0.05, 0.1, 0.9) == pytest.approx(-0.0625)
    assert recovery(1.0, 0.1, 0.9) == pytest.approx(1.125)


def test_recovery_reads_the_same_for_a_metric_that_forgetting_raises():
    """A loss: θ_o 1.0, θ_u 4.0 (forgetting raised it), attacked 2.5 → (2.5 − 4) / (1 − 4) = −1.5 / −3 = 0.5."""
    assert recovery(2.5, 4.0, 1.0) == pytest.approx(0.5)


def test_recovery_is_undefined_without_forgetting_and_broadcasts():
    """θ_u = θ_o (gap 0) → None; arrays, per resample: θ_o [0.6, 0.3], θ_u [0.2, 0.3], attacked [0.3, 0.3] →
    [(0.3 − 0.2) / (0.6 − 0.2), (0.3 − 0.3) / (0.3 − 0.3)] = [0.25, undefined (NaN)]."""
    assert recovery(0.7, 0.6, 0.6) is None
    r = recovery([0.3, 0.3], [0.2, 0.3], [0.6, 0.3])
    assert r[0] == pytest.approx(0.25) and np.isnan(r[1])


def test_worst_recovery_is_the_highest_defined_one():
    """max(0.1, 0.7, −0.2) over the defined ones = 0.7; nothing defined → None."""
    assert worst_recovery([0.1, None, 0.7, float("nan"), -0.2]) == 0.7
    assert worst_recovery([None, float("nan")]) is None
