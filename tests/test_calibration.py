"""Model mixing, the α search, metric reliability pieces and the hyperparameter sweep."""

from __future__ import annotations

import warnings

import pytest
import scipy.stats
import torch

from unlearnkit.analysis import reliability as R
from unlearnkit.analysis.calibration import CalibrationConfig, search_alpha
from unlearnkit.config import validate
from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.lm import load_model
from unlearnkit.models.mixing import Mixer

from .conftest import tiny_build_config


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def pair(tiny_models):
    """θ_o and a perturbed copy standing for θ_u (as state dicts) and a working model."""
    model, tok = load_model(tiny_models.original)
    o = _state(model)
    other, _ = load_model(tiny_models.original)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in other.parameters():  # tied embeddings stay tied
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return model, o, _state(other)


def test_alpha_zero_is_theta_o_and_one_is_theta_u_bit_for_bit(pair):
    model, o, u = pair
    mixer = Mixer(model, o, u)
    mixer.set(1.0)
    assert all(torch.equal(model.state_dict()[k], u[k]) for k in u)
    mixer.set(0.0)
    assert all(torch.equal(model.state_dict()[k], o[k]) for k in o)


def test_intermediate_alpha_is_the_convex_combination(pair):
    """θ(0.3) = 0.7·θ_o + 0.3·θ_u on every floating tensor (≤ 1e-6)."""
    model, o, u = pair
    mixer = Mixer(model, o, u)
    mixer.set(0.3)
    for k in o:
        if o[k].is_floating_point():
            torch.testing.assert_close(model.state_dict()[k], 0.7 * o[k] + 0.3 * u[k], atol=1e-6, rtol=0)
    mixer.set(0.0)


def test_mixing_from_saved_directories_matches_state_dicts(tiny_models, pair):
    model, o, _ = pair
    ref, _ = load_model(tiny_models.reference_for("forget10"))
    Mixer(model, tiny_models.original, tiny_models.reference_for("forget10")).set(1.0)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.state_dict().items())
    Mixer(model, o, o).set(0.0)


def test_mixing_different_architectures_is_a_clear_error(pair):
    model, o, _ = pair
    other = {k: v for k, v in o.items() if "layers.1." not in k}
    with pytest.raises(UnlearnkitError, match="cannot mix models of different architecture"):
        Mixer(model, o, other)
    wrong = dict(o)
    key = next(k for k in o if k.endswith("q_proj.weight"))
    wrong[key] = torch.zeros(3, 3)
    with pytest.raises(UnlearnkitError, match="different architecture"):
        Mixer(model, o, wrong)
    with pytest.raises(UnlearnkitError, match="α must be in"):
        Mixer(model, o, o).set(1.5)


def test_search_finds_the_exact_alpha_on_a_monotone_curve():
    """f(α) = 1 − α, target 0.63 → α* = 0.37 (bisection to tol = 1e-4)."""
    found = search_alpha(lambda a: 1 - a, 0.63, tol=1e-4)
    assert found.alpha == pytest.approx(0.37, abs=1e-4) and found.alpha <= 0.37 + 1e-12
    assert found.value >= 0.63 and found.monotone
    step = search_alpha(lambda a: 1.0 if a <= 0.5 else 0.0, 0.9, tol=1e-6)  # a step exactly at a grid point
    assert step.alpha == 0.5


def test_search_returns_one_when_no_calibration_is_needed_and_warns_when_not_monotone():
    assert search_alpha(lambda a: 1.0, 0.9).alpha == 1.0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        found = search_alpha(lambda a: [1.0, 0.5, 0.95, 0.2, 0.1][int(round(a * 4))] if a in (0, .25, .5, .75, 1) else 1 - a, 0.9)
    assert not found.monotone and any("not monotone" in str(x.message) for x in w)


def test_calibration_config_errors():
    with pytest.raises(UnlearnkitError, match="'tau': Input should be less than or equal to 1"):
        validate(CalibrationConfig, {"tau": 1.5})
    with pytest.raises(UnlearnkitError, match="'tau': Input should be greater than 0"):
        validate(CalibrationConfig, {"tau": 0})
    with pytest.raises(UnlearnkitError, match="calibration metric 'forget.es_exact' is not supported"):
        validate(CalibrationConfig, {"metric": "forget.es_exact"})


def test_calibrated_run_holds_tau_of_the_original_retain_es(tiny_models, capsys):
    """GA at lr 2e-3 for 3 epochs wipes retain ES, so calibration is needed: α < 1 keeps ≥ τ·ES(θ_o), and the
    bisection's first failing α lies within the tolerance above it. The command resumes on a second call."""
    from unlearnkit.cli import main
    from unlearnkit.recipes.calibrate import calibrate_run
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    cfg = RunConfig.model_validate({"build": tiny_build_config().model_dump(), "methods": ["ga"], "name": "cal",
                                    "defaults": {"lr": 2e-3, "epochs": 3, "batch_size": 4}, "eval": {"max_new_tokens": 24}})
    out = run_benchmark(cfg, say=lambda s: None)
    cal = calibrate_run(out.run, CalibrationConfig(tau=0.9, tol=1e-3), say=lambda s: None)
    base = out.results["Original"][0].value("retain.es_exact")
    a = cal.alphas["ga__s0"]
    assert a["target"] == pytest.approx(0.9 * base)
    assert out.results["ga"][0].value("retain.es_exact") < a["target"]  # the precondition: calibration needed
    assert 0 < a["alpha"] < 1 and a["value"] >= a["target"]
    curve = cal.run.record("ga__s0").extra["calibration"]["curve"]
    first_fail = min(x for x, v in curve if v < a["target"])
    assert a["alpha"] < first_fail <= a["alpha"] + 1e-3 + 1e-12
    assert cal.run.record("ga__s0").value("retain.es_exact") == pytest.approx(a["value"])  # θ(α) fully evaluated
    assert cal.run.record("ga__s0").value("alpha") == a["alpha"]
    assert "α" in cal.table and cal.run.layout.file("curves.png").is_file()
    assert main(["calibrate", "--run", "cal", "tau=0.9"]) == 0
    said = capsys.readouterr().out
    assert f"ga__s0: calibrated earlier (α = {a['alpha']:.4f})" in said and "Calibrated (retain.es_exact ≥ 0.9" in said
    # the report of the calibrated run: raw and calibrated trade-off side by side (α of each method), α-curves
    from .test_report import Page

    assert main(["report", "cal"]) == 0
    page = Page(out.run.layout.report.read_text(encoding="utf-8"))
    svg = page.svg("Trade-off: forgetting vs utility")
    assert "calibrated (retain.es_exact ≥ 0.9 · θ_o)" in svg and f"ga (α={a['alpha']:.2f})" in svg
    assert "unlearning along the mix" in page.svg("α-curves of the calibration")


# --- reliability ------------------------------------------------------------------------------


def test_pearson_equals_scipy():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.7], [0.2, 0.5, 0.3, 0.9, 0.6]
    assert R.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-12)
    assert R.pearson([1, 1, 1], [0, 1, 2]) is None
    with pytest.raises(UnlearnkitError, match="at least 3 models"):
        R.pearson([0.1, 0.2], [0.3, 0.4])


def test_quantisation_round_trips_within_half_a_step():
    """Per-row scale s = max|w|/(2^(b−1)−1); |w − q(w)| ≤ s/2 (+ float rounding)."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 33, generator=g)
    for bits in (8, 4):
        q = R.quantize_rtn(w, bits)
        s = w.abs().amax(1, keepdim=True) / (2 ** (bits - 1) - 1)
        assert ((w - q).abs() <= s / 2 + 1e-6).all()
        assert len(torch.unique(q[0])) <= 2 ** bits - 1
    assert torch.equal(R.quantize_rtn(torch.tensor([[1.0, -1.0, 0.5]]), 8), torch.tensor([[1.0, -1.0, 64 / 127]]))


def test_relearning_a_bf16_model_trains_a_float32_copy(tiny_models):
    """The relearning attack on a model measured in bfloat16: the copy is trained in float32 (at lr 1e-4 a bf16 weight
    of size ~0.05 has a rounding step of ~2e-4, so most updates would vanish) and handed back in bfloat16; the
    measured model itself is untouched. Its dumps name ``precision``/``dtype`` only when set."""
    from unlearnkit.data.tofu import QASource

    model, tok = load_model(tiny_models.original, dtype=torch.bfloat16)
    before = {n: p.clone() for n, p in model.named_parameters()}
    forget = QASource(tiny_models.data_dir).split("forget10")
    attacked = R.relearned(model, tok, forget, R.RelearnConfig(steps=2, lr=1e-4, batch_size=4), seed=0)
    assert next(attacked.parameters()).dtype == torch.bfloat16
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert any(not torch.equal(p, before[n]) for n, p in attacked.named_parameters())
    assert "dtype" not in R.ReliabilityConfig().model_dump()
    assert R.ReliabilityConfig(dtype="bfloat16", precision="bf16").model_dump()["dtype"] == "bfloat16"


def test_reliability_config_errors():
    from unlearnkit.recipes.reliability import run_reliability

    with pytest.raises(UnlearnkitError, match="unknown intervention 'telepathy'"):
        validate(R.ReliabilityConfig, {"interventions": ["telepathy"]})
    with pytest.raises(UnlearnkitError, match="at least 3"):
        run_reliability(R.ReliabilityConfig(methods=["ga"], epochs=1, include_original=True), say=lambda s: None)


def test_reliability_study_on_a_tiny_pool(tiny_models):
    """The PCC of (ES, quant4) is recomputed independently: every pool model measured again by hand."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.recipes.reliability import run_reliability

    cfg = R.ReliabilityConfig(build=tiny_build_config(), methods=["ga", "gd"], epochs=2, batch_size=4,
                              strengths=[2e-3], interventions=["paraphrase", "quant4", "relearn", "noise"],
                              metrics=["es", "prob", "truth_ratio"], max_new_tokens=16, name="rel")
    run, pcc, table, names = run_reliability(cfg, say=lambda s: None)
    assert names == ["original", "ga-lr0.002-ep1", "ga-lr0.002-ep2", "gd-lr0.002-ep1", "gd-lr0.002-ep2"]
    assert set(pcc) == {"forget", "retain"} and set(pcc["forget"]) == {"es", "prob", "truth_ratio"}
    assert run.layout.file("scatter_forget.png").is_file() and "paraphrase" in table
    forget = QASource(tiny_models.data_dir).split("forget10_perturbed")
    before, after = [], []
    for n in names:
        model, tok = load_model(tiny_models.original if n == "original" else run.layout.model(n))
        q = lambda i, r: r["question"]  # noqa: E731
        before.append(R.measure(model, tok, forget, "forget", q, ["es"], 16)["es"])
        after.append(R.measure(R.quantize_model(model, 4), tok, forget, "forget", q, ["es"], 16)["es"])
    assert before[0] > 0.9 and len(set(before)) > 2
    assert pcc["forget"]["es"]["quant4"] == pytest.approx(scipy.stats.pearsonr(before, after).statistic, abs=1e-9)
    assert run.record("pcc").value("forget.es@quant4") == pcc["forget"]["es"]["quant4"]
    from unlearnkit.recipes.report import report

    from .test_report import Page

    page = Page(report(["rel"]).path.read_text(encoding="utf-8"))
    assert "forget data (5 models)" in page.svg("Metric reliability under red-team interventions")
    es = next(r for r in page.tables[0][1:] if r[0][0] == "es")
    assert es[[t for t, _ in page.tables[0][0]].index("quant4 ↑")][0] == f"{pcc['forget']['es']['quant4']:.3f}"
    assert page.figure("Before vs after, forget data")["src"].startswith("data:image/png;base64,")


def test_sweep_on_a_tiny_benchmark(tiny_models):
    from unlearnkit.recipes.sweep import SweepConfig, run_sweep, variants

    cfg = SweepConfig.model_validate({"build": tiny_build_config().model_dump(), "method": "ga", "name": "sweep",
                                      "base": {"lr": 2e-3, "epochs": 2, "batch_size": 4},
                                      "grids": {"temperature": [2.0], "max_steps": [2]}, "eval": {"max_new_tokens": 16}})
    assert list(variants(cfg)) == ["ga", "ga@TS=2", "ga@ES=2"]
    sw = run_sweep(cfg, say=lambda s: None)
    assert "origin" in sw.best and "TS" in sw.best and "ES" in sw.best and "ga@TS=2" in sw.every
    assert sw.run.layout.file("sweep_table.md").is_file()
    from unlearnkit.recipes.report import report

    from .test_report import Page

    svg = Page(report([sw.run.name]).path.read_text(encoding="utf-8")).svg("Hyperparameter sweep after calibration")
    assert "TS=2" in svg and "ES=2" in svg and "origin (α=" in svg
    with pytest.raises(UnlearnkitError, match="unknown knob 'momentum'"):
        validate(SweepConfig, {"grids": {"momentum": [0.9]}})
