"""Golden values for the image-classifier metrics (docs/vision.md, "Metrics"), arithmetic in the docstrings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.vision import (
    accuracy,
    balanced_sample,
    gap,
    mia_efficacies,
    mia_efficacy,
    precision_recall,
    true_label_confidence,
)

from .vision_helpers import single_thread  # noqa: F401 (autouse fixture)


def test_accuracy_golden():
    """preds [0,1,2,2], labels [0,1,1,2] → 3 of 4 right → 75.0 %. Tensors and arrays alike."""
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 75.0
    assert accuracy(torch.tensor([3, 3]), torch.tensor([1, 2])) == 0.0
    assert math.isnan(accuracy([], []))
    with pytest.raises(UnlearnkitError):
        accuracy([0, 1], [0])


def test_ua_ra_ta_are_accuracies_on_their_sets():
    """UA on D_t = {0,1} (preds 5,5 vs labels 5,4 → 50 %), RA on D_r = {2,3,4} (all right → 100 %),
    TA on test_other = {1} (pred 0 vs label 1 → 0 %)."""
    train_pred, train_y = np.array([5, 5, 1, 2, 3]), np.array([5, 4, 1, 2, 3])
    test_pred, test_y = np.array([5, 0]), np.array([5, 1])
    target, retain, test_other = [0, 1], [2, 3, 4], [1]
    assert accuracy(train_pred[target], train_y[target]) == 50.0
    assert accuracy(train_pred[retain], train_y[retain]) == 100.0
    assert accuracy(test_pred[test_other], test_y[test_other]) == 0.0


def test_true_label_confidence():
    """probs rows [.7,.2,.1] and [.1,.3,.6] with labels [0, 1] → [.7, .3]."""
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(true_label_confidence(p, [0, 1]), [0.7, 0.3])


def test_gap_golden():
    """|10−0| + |90−100| + |80−85| + |50−100| = 10 + 10 + 5 + 50 = 75; / 4 = 18.75."""
    u = {"UA": 10, "RA": 90, "TA": 80, "MIA": 50, "TIME": 3}
    r = {"UA": 0, "RA": 100, "TA": 85, "MIA": 100}
    assert gap(u, r) == pytest.approx(18.75)
    assert gap(r, r) == 0.0
    with pytest.raises(UnlearnkitError, match="MIA"):
        gap({"UA": 1, "RA": 1, "TA": 1}, r)


def test_mia_efficacy_on_hand_built_confidences():
    """Members sit at confidence ≈ 0.99, non-members at ≈ 0.30. The RBF SVC (C=3, gamma=auto=1
    for one feature) separates them near the midpoint, so:
    - an evaluated set at 0.99 (looks trained on) → 0 % predicted non-member → MIA 0;
    - an evaluated set at 0.25 (looks unseen) → 100 % → MIA 100;
    - 3 of 4 samples at 0.2 and 1 at 0.995 → 75 %."""
    rng = np.random.default_rng(0)
    members = 0.99 + 0.005 * rng.standard_normal(50)
    nonmembers = 0.30 + 0.05 * rng.standard_normal(50)
    assert mia_efficacy(members, nonmembers, np.full(10, 0.99)) == 0.0
    assert mia_efficacy(members, nonmembers, np.full(10, 0.25)) == 100.0
    assert mia_efficacy(members, nonmembers, [0.2, 0.2, 0.2, 0.995]) == 75.0
    both = mia_efficacies(members, nonmembers, {"a": [0.99], "b": [0.25], "empty": []})
    assert both["a"] == 0.0 and both["b"] == 100.0 and math.isnan(both["empty"])


def test_mia_requires_equal_nonempty_groups():
    with pytest.raises(UnlearnkitError, match="equal in size"):
        mia_efficacy([0.9, 0.9], [0.1], [0.5])
    with pytest.raises(UnlearnkitError, match="empty"):
        mia_efficacy([], [], [0.5])


def test_balanced_sample_sizes():
    """min(7, 4, cap 10) = 4 positions from each side, without repeats."""
    m, n = balanced_sample(7, 4, np.random.default_rng(0), 10)
    assert len(m) == len(n) == 4 and len(set(m)) == 4 and max(m) < 7
    m, n = balanced_sample(7, 40, np.random.default_rng(0), 3)
    assert len(m) == len(n) == 3


def test_precision_recall():
    """identified {1,2,5} vs truth {1,2,3,4}: tp 2 → precision 2/3, recall 2/4."""
    p, r = precision_recall([1, 2, 5], [1, 2, 3, 4])
    assert p == pytest.approx(200 / 3) and r == 50.0
    assert precision_recall([], []) == (100.0, 100.0)
    assert precision_recall([3], []) == (0.0, 100.0)
    assert precision_recall([], [1]) == (0.0, 0.0)


class _LookupModel(torch.nn.Module):
    """Answers a fixed class per image (looked up by its pixels): a stub whose accuracy on every set is known."""

    def __init__(self, images: torch.Tensor, preds: list[int], num_classes: int) -> None:
        super().__init__()
        self.table = {tuple(x.flatten().tolist()): p for x, p in zip(images, preds, strict=True)}
        self.num_classes = num_classes
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keys = [tuple((xi * 255).round().to(torch.uint8).flatten().tolist()) for xi in x]
        out = torch.full((len(x), self.num_classes), -10.0)
        out[torch.arange(len(x)), torch.tensor([self.table[k] for k in keys])] = 10.0
        return out + 0 * self.dummy


def test_scenario_metrics_computes_ua_ra_ta_on_the_scenario_sets():
    """The stub gets every 2nd image of D_t wrong, the first 3 of D_r and the first 5 test images outside the
    target; so UA = 100·(|D_t| − ⌈|D_t|/2⌉)/|D_t|, RA = 100·(|D_r| − 3)/|D_r|, TA = 100·(|T_o| − 5)/|T_o|, and
    UA_f / UA_fr split UA by D_f and D_fr (target mismatch: D_f ⊂ D_t)."""
    from unlearnkit.data.scenarios import ScenarioConfig, build_scenario
    from unlearnkit.engine.vision import scenario_metrics

    from .vision_helpers import tiny_set

    ds = tiny_set()
    sc = build_scenario(ds, "target_mismatch", ScenarioConfig())
    wrong = lambda y: (y + 1) % sc.num_classes  # noqa: E731
    train_y, test_y = sc.train_labels.tolist(), sc.test_labels.tolist()
    train_pred, test_pred = list(train_y), list(test_y)
    bad_target = set(sc.target.tolist()[::2])
    for i in bad_target | set(sc.retain.tolist()[:3]):
        train_pred[i] = wrong(train_y[i])
    for i in sc.test_other.tolist()[:5]:
        test_pred[i] = wrong(test_y[i])
    model = _LookupModel(torch.cat([ds.train_x, ds.test_x]), train_pred + test_pred, sc.num_classes)
    m, per = scenario_metrics(model, ds, sc, seed=0, mia_max=50, batch_size=7)
    nt, nr, no = len(sc.target), len(sc.retain), len(sc.test_other)
    assert m["UA"] == pytest.approx(100 * (nt - len(bad_target)) / nt)
    assert m["RA"] == pytest.approx(100 * (nr - 3) / nr)
    assert m["TA"] == pytest.approx(100 * (no - 5) / no)
    f_bad = len(bad_target & set(sc.forget.tolist()))
    assert m["UA_f"] == pytest.approx(100 * (len(sc.forget) - f_bad) / len(sc.forget))
    fr_bad = len(bad_target & set(sc.false_retain.tolist()))
    assert m["UA_fr"] == pytest.approx(100 * (len(sc.false_retain) - fr_bad) / len(sc.false_retain))
    assert m["TA_target"] == 100.0 and 0.0 <= m["MIA"] <= 100.0 and m["mia_pairs"] <= 50
    assert per["train_pred"].tolist() == train_pred and per["test_pred"].tolist() == test_pred
