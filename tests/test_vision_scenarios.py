"""The four label-domain scenarios (docs/vision.md, "Scenarios"): sets, label spaces, bad input, θ_r's UA."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data.images import SyntheticConfig, synthetic
from unlearnkit.data.scenarios import SCENARIOS, ScenarioConfig, build_scenario
from unlearnkit.engine.vision import ClassifierRecipe, TensorLoader, predict, train_classifier
from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.vision import accuracy
from unlearnkit.models.classifiers import ModelConfig, build_classifier

from .vision_helpers import single_thread, tiny_set  # noqa: F401 (single_thread: autouse fixture)


def _set(t: torch.Tensor) -> set[int]:
    return set(t.tolist())


@pytest.mark.parametrize("name", SCENARIOS)
def test_sets_are_disjoint_and_cover_D(name):
    ds = synthetic(SyntheticConfig(n_superclasses=3, classes_per_superclass=3, image_size=8, train_per_class=4,
                                   test_per_class=2))
    sc = build_scenario(ds, name)
    n, m = len(ds.train_x), len(ds.test_x)
    f, fr, r, un, t = map(_set, (sc.forget, sc.false_retain, sc.retain, sc.unlearn, sc.target))
    assert f and r
    assert not (f & fr) and not (f & r) and not (fr & r)
    assert f | fr | r == set(range(n))  # D_f, D_fr, D_r partition D
    assert un == fr | r and not (un & f)  # D_un = D \ D_f
    assert t == f | fr  # D_t = D_f ∪ D_fr
    tt, to = _set(sc.test_target), _set(sc.test_other)
    assert not (tt & to) and tt | to == set(range(m))
    # the target's images are exactly the target classes' images
    assert t == _set(torch.nonzero(torch.isin(ds.train_fine, torch.tensor(sc.target_classes))).squeeze(1))
    level = {"all_matched": "fine", "target_mismatch": "fine", "model_mismatch": "coarse", "data_mismatch": "coarse"}
    assert sc.label_level == level[name]
    assert sc.num_classes == (9 if level[name] == "fine" else 3)
    if name in ("all_matched", "model_mismatch"):
        assert not fr and sc.hidden_target_labels == [] and len(sc.forget_classes) == 1
    else:
        assert fr and sc.forget_classes == [0] and sc.target_classes == [0, 1, 2]
    if name == "target_mismatch":
        assert sc.hidden_target_labels == [1, 2]  # the unforgotten siblings (fine labels)
    if name == "data_mismatch":
        assert sc.hidden_target_labels == [0]  # the superclass label of D_fr
        assert set(sc.train_labels[sc.forget].tolist()) == {0}


def test_choice_by_name_and_defaults():
    ds = tiny_set()
    sc = build_scenario(ds, "target_mismatch", ScenarioConfig(superclass="beta"))
    assert sc.forget_classes == [2] and sc.target_classes == [2, 3]
    sc = build_scenario(ds, "model_mismatch", ScenarioConfig(forget_class="gamma-1"))
    assert sc.forget_classes == [5] and sc.target_classes == [5]
    sc = build_scenario(ds, "data_mismatch", ScenarioConfig(forget_classes=["beta-1"]))
    assert sc.forget_classes == [3] and sc.hidden_target_labels == [1]


@pytest.mark.parametrize("cfg,match", [
    (ScenarioConfig(superclass="omega"), "superclass 'omega' does not exist"),
    (ScenarioConfig(forget_class="alpha-7"), "class 'alpha-7' does not exist"),
    (ScenarioConfig(forget_class=99), "class index 99 does not exist"),
    (ScenarioConfig(superclass="alpha", forget_classes=["beta-0"]), "not in superclass"),
    (ScenarioConfig(forget_classes=["alpha-0", "alpha-1"]), "covers all of"),
    (ScenarioConfig(forget_classes=[]), "empty"),
])
def test_bad_choices_are_clear_errors(cfg, match):
    with pytest.raises(UnlearnkitError, match=match):
        build_scenario(tiny_set(), "target_mismatch", cfg)


def test_empty_forget_set_and_unknown_scenario_are_errors():
    ds = tiny_set()
    keep = ds.train_fine != 0  # no training image of class alpha-0 left
    ds.train_x, ds.train_fine = ds.train_x[keep], ds.train_fine[keep]
    with pytest.raises(UnlearnkitError, match="D_f is empty"):
        build_scenario(ds, "all_matched")
    with pytest.raises(UnlearnkitError, match="unknown scenario 'target_mismatc'.*target_mismatch"):
        build_scenario(ds, "target_mismatc")


def test_reference_ua_properties_on_a_small_trained_model():
    """θ_r trained from scratch on D_r: in model mismatch it still calls the forgotten class by its
    superclass (UA high); in target and data mismatch it never predicts the target (UA ≈ 0)."""
    ds = synthetic(SyntheticConfig(n_superclasses=3, classes_per_superclass=3, train_per_class=80, test_per_class=10))
    recipe = ClassifierRecipe(epochs=12, lr=0.1, batch_size=32)
    ua, ra = {}, {}
    for name in ("model_mismatch", "target_mismatch", "data_mismatch"):
        sc = build_scenario(ds, name)
        model = build_classifier(ModelConfig(width=8), sc.num_classes, ds.mean, ds.std, seed=0)
        torch.manual_seed(0)
        train_classifier(model, TensorLoader(ds.train_x[sc.retain], sc.train_labels[sc.retain], 32), recipe)
        pred = predict(model, ds.train_x).argmax(1)
        ua[name] = accuracy(pred[sc.target], sc.train_labels[sc.target])
        ra[name] = accuracy(pred[sc.retain], sc.train_labels[sc.retain])
    assert min(ra.values()) > 80, ra
    assert ua["model_mismatch"] > 70, ua
    assert ua["target_mismatch"] < 5 and ua["data_mismatch"] < 5, ua
