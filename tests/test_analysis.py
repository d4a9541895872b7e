"""Layer patching, CRU, squeezing, continual unlearning and the analysis commands on the tiny benchmark."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from unlearnkit.analysis.continual import continual_unlearn, forget_requests
from unlearnkit.analysis.squeezing import SqueezeProbe, likelihood_bands
from unlearnkit.data import halves as H
from unlearnkit.data.tofu import QASource
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods.llm import cru as C
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models import patching as P
from unlearnkit.models.layers import locate_layers, supported_families
from unlearnkit.models.lm import load_model


@pytest.fixture(scope="module")
def src(tiny_models):
    return QASource(tiny_models.data_dir)


@pytest.fixture(scope="module")
def pair(tiny_models, src):
    """(θ_o, θ_u, tokenizer): θ_u = GA for 3 steps, so every tensor of θ_u differs from θ_o."""
    original, tok = load_model(tiny_models.original)
    unlearned = copy.deepcopy(original)
    spec, _ = resolve("ga")
    unlearn(unlearned, tok, spec, make_params(spec, {"lr": 1e-3, "batch_size": 4, "max_steps": 3}),
            src.split("forget10"), src.split("retain90"))
    return original, unlearned, tok


def _state(m):
    return {n: t.detach().clone() for n, t in m.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# patching


@pytest.mark.parametrize("layer", [0, 1])
def test_patching_layer_l_changes_exactly_the_tensors_of_layer_l(pair, layer):
    original, unlearned, _ = pair
    so, su = _state(original), _state(unlearned)
    prefix = f"model.layers.{layer}."
    assert all(not torch.equal(so[n], su[n]) for n in so if n.startswith(prefix))
    patched = P.patched_copy(original, unlearned, [f"layer.{layer}"])
    sp = patched.state_dict()
    changed = {n for n in sp if not torch.equal(sp[n], so[n])}
    assert changed == {n for n in so if n.startswith(prefix)}
    assert all(torch.equal(sp[n], su[n]) for n in changed)
    assert all(torch.equal(t, so[n]) for n, t in original.state_dict().items())  # θ_o untouched
    with P.patched(original, unlearned, [f"layer.{layer}"]) as m:  # in place, then restored
        assert torch.equal(m.state_dict()[prefix + "mlp.up_proj.weight"], su[prefix + "mlp.up_proj.weight"])
    assert all(torch.equal(t, so[n]) for n, t in original.state_dict().items())


def test_patching_every_group_gives_theta_u_including_tied_head(pair):
    original, unlearned, _ = pair
    lm = locate_layers(original)
    full = P.patched_copy(original, unlearned, lm.groups())
    su = unlearned.state_dict()
    assert "lm_head.weight" in su  # tied: the same tensor as the embedding
    assert all(torch.equal(t, su[n]) for n, t in full.state_dict().items())


def test_a_layer_index_that_does_not_exist_is_a_clear_error(pair):
    lm = locate_layers(pair[0])
    with pytest.raises(UnlearnkitError, match=r"layer 7 does not exist: the model has 2 transformer layers \(indices 0\.\.1\)"):
        P.transformer_layers(lm, [0, 7])
    with pytest.raises(UnlearnkitError, match="unknown parameter group"):
        P.patched_copy(pair[0], pair[1], ["layer.9"])


def test_an_unknown_family_s_layer_stack_is_discovered():
    class Novel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"model_type": "novel", "num_hidden_layers": 2})()
            self.heads = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.ReLU()])  # mixed types: not a stack
            self.core = torch.nn.Module()
            self.core.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])

    lm = locate_layers(Novel())
    assert lm.path == "core.blocks" and lm.n_layers == 2 and lm.families == "discovered"
    assert lm.group_of("core.blocks.1.weight") == "layer.1"


def test_a_family_whose_layers_cannot_be_located_names_the_supported_families():
    class Mystery(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"model_type": "mystery", "num_hidden_layers": 2})()
            self.stack = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])  # 3 ≠ num_hidden_layers

    with pytest.raises(UnlearnkitError) as e:
        locate_layers(Mystery())
    msg = str(e.value)
    assert "cannot locate the transformer layers of a 'mystery' model" in msg and "Llama" in msg and "GPT-2" in msg
    assert supported_families() in msg and "\n" not in msg


def test_different_architectures_cannot_be_patched(pair, tiny_models):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4))
    with pytest.raises(UnlearnkitError, match="different architectures"):
        P.patched_copy(pair[0], other, ["layer.0"])


# ---------------------------------------------------------------------------------------------
# CRU


def _fake_scores(monkeypatch, table: dict[str, tuple[float, float]], pair):
    """Replace evaluation by a lookup: which groups of the model come from θ_u → (FQ ln p, MU)."""
    original, unlearned, _ = pair
    lm = locate_layers(original)
    su = dict(unlearned.named_parameters())

    def fake(model, tok, source, cfg, ref):
        from_u = [g for g in lm.groups()
                  if all(torch.equal(p, su[n]) for n, p in model.named_parameters() if lm.group_of(n) == g)]
        fq = sum(table[g][0] for g in from_u) - 10.0
        mu = 0.9 - sum(table[g][1] for g in from_u)
        return {"fq_log_p": fq, "mu": mu, "forget_es_exact": 1.0 - 0.1 * len(from_u)}

    monkeypatch.setattr(C, "evaluate_in_memory", fake)
    monkeypatch.setattr(C, "summarise", lambda r: r)


def test_cru_with_k_all_is_theta_u_and_with_k_zero_is_theta_o(pair, src, monkeypatch):
    original, unlearned, tok = pair
    table = {"embedding": (1.0, 0.05), "layer.0": (6.0, 0.5), "layer.1": (3.0, 0.02), "head": (0.5, 0.0)}
    _fake_scores(monkeypatch, table, pair)
    val = H.HalfSource(src, 0)
    so, su = _state(original), _state(unlearned)
    for k, expect in ((4, su), (0, so)):
        groups, report = C.cru(original, unlearned, tok, val, None, None, k=k)
        model = P.patched_copy(original, unlearned, groups)
        assert all(torch.equal(t, expect[n]) for n, t in model.state_dict().items()), k
        assert report["k"] == k and report["k_chosen_on"] == "given"
    # chosen on validation: rank FQ (layer.0 1, layer.1 2, embedding 3, head 4) + rank MU (head 1, layer.1 2,
    # embedding 3, layer.0 4) = layer.1 4, layer.0 5, head 5, embedding 6; ties go to the higher FQ
    groups, report = C.cru(original, unlearned, tok, val, None, None)
    assert [r["unit"] for r in report["ranking"]] == ["layer.1", "layer.0", "head", "embedding"]
    assert report["k_chosen_on"] == "validation" and groups == report["groups_from_unlearned"]
    assert [c["k"] for c in report["candidates_validation"]] == [0, 1, 2, 3, 4]
    with pytest.raises(UnlearnkitError, match="CRU k=9 is out of range: choose 0..4"):
        C.cru(original, unlearned, tok, val, None, None, k=9)


def test_sweep_evaluations_skip_the_gradnorm_mia_and_report_the_same_summary(pair, src, tiny_models, monkeypatch):
    """A patching sweep's summary (FQ, MU, ES, PrivLeak via Min-K%) never reads the GradNorm MIA, so sweeps skip
    its per-sample backward passes: the summary equals that of a full evaluation, and no gradient is taken."""
    import unlearnkit.engine.gradnorm as G
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.tasks.tofu_eval import compare_to_reference, evaluate

    _, unlearned, tok = pair
    reference, _ = load_model(tiny_models.reference_for("forget10"))
    cfg = EvalConfig(max_new_tokens=8, cache=False)
    ref_full = evaluate(reference, tok, src, cfg)
    compare_to_reference(ref_full, ref_full)
    full = C.summarise(compare_to_reference(evaluate(unlearned, tok, src, cfg), ref_full))
    assert ref_full.get("mia.auc_gradnorm") is not None

    def no_backward(*a, **k):
        raise AssertionError("a sweep evaluation ran the GradNorm MIA")

    monkeypatch.setattr(G, "gradient_norms", no_backward)
    ref = C.reference_in_memory(reference, tok, src, cfg)
    swept = C.summarise(C.evaluate_in_memory(unlearned, tok, src, cfg, ref))
    assert swept == pytest.approx(full) and swept["mu"] < 1.0
    assert C.sweep_config(cfg).mia_gradnorm is False and cfg.mia_gradnorm is True


def test_a_cru_report_becomes_layer_curves_with_theta_o_and_theta_u_from_k_0_and_k_all(tmp_path):
    """benchmarks/cru_layers.py: the validation sweep of a run's CRU entry as `layers` output; θ_o is the k = 0
    candidate and θ_u the k = K one (K = 2 units here); a report with a given k has neither and says so."""
    from unlearnkit.analysis.layers import cru_sweep_doc, write_layer_outputs
    from unlearnkit.results.store import Run

    def row(mu, fq, es):
        return {"mu": mu, "fq_log_p": fq, "forget_es_exact": es, "retain_es_exact": 1.0}

    sweep = {"layer.0": row(0.5, -3.0, 0.4), "layer.1": row(0.9, -9.0, 0.9)}
    cands = [{"k": k, "groups": [], **r} for k, r in enumerate([row(0.93, -12.0, 1.0), row(0.9, -9.0, 0.9),
                                                                   row(0.4, -1.0, 0.2)])]
    rep = {"units": ["layer.0", "layer.1"], "sweep_validation": sweep, "candidates_validation": cands, "k": 1}
    doc = cru_sweep_doc(rep)
    assert doc["baselines"]["original"]["mu"] == 0.93 and doc["baselines"]["unlearned"]["fq_log_p"] == -1.0
    assert doc["sweep"] == sweep and doc["half"] == "validation"
    files = write_layer_outputs(doc, Run.open_at(tmp_path / "out", "layers"))
    assert {f.name for f in files} == {"layers.json", "layers.csv", "layers.png"}
    with pytest.raises(UnlearnkitError, match=r"candidates k = \[1\] only.*leave k unset"):
        cru_sweep_doc({**rep, "candidates_validation": cands[1:2]})


def test_choose_k_is_the_best_rank_sum():
    tie = [{"fq_log_p": -9.0, "mu": 0.9}, {"fq_log_p": -3.0, "mu": 0.8}, {"fq_log_p": -1.0, "mu": 0.1}]
    assert C.choose_k(tie) == 2  # rank sums 3+1, 2+2, 1+3 all tie at 4: the higher FQ wins
    c = [{"fq_log_p": -9.0, "mu": 0.9}, {"fq_log_p": -1.0, "mu": 0.8}, {"fq_log_p": -3.0, "mu": 0.1}]
    assert C.choose_k(c) == 1  # rank sums 3+1, 1+2, 2+3


def test_validation_and_test_halves_split_subjects(src):
    val, test = H.HalfSource(src, 0), H.HalfSource(src, 1)
    f, v, t = src.split("forget10"), val.split("forget10"), test.split("forget10")
    assert sorted(r["question"] for r in v + t) == sorted(r["question"] for r in f)
    names = H.subject_names(src)
    who = lambda recs: {next(n for n in names if n in r["question"]) for r in recs}  # noqa: E731
    assert who(v) and who(t) and not who(v) & who(t)


# ---------------------------------------------------------------------------------------------
# squeezing


def test_likelihood_bands_are_terciles():
    import numpy as np

    assert likelihood_bands(np.array([-1.0, -5.0, -0.1, -3.0, -2.0, -9.0])) == ["high", "low", "high", "mid", "mid", "low"]


def test_squeeze_probe_tracks_groups_and_leaves_training_unchanged(tiny_models, src):
    spec, _ = resolve("npo")
    params = make_params(spec, {"lr": 2e-3, "batch_size": 4, "max_steps": 2})
    forget, retain = src.split("forget10"), src.split("retain90")
    m1, tok = load_model(tiny_models.original)
    m2 = copy.deepcopy(m1)
    unlearn(m1, tok, spec, params, forget, retain)
    probe = SqueezeProbe(every=1, n_samples=3, max_new_tokens=16)
    unlearn(m2, tok, spec, params, forget, retain, on_step=probe)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    assert [r["step"] for r in probe.records] == [0, 1, 2]
    s = probe.sampling
    assert s["drawn"] == 3 * len(forget) == s["kept"] + s["equal_to_target_or_paraphrase"] + s["duplicates"] + s["empty"]
    rec = probe.records[-1]
    assert rec["target"]["n"] == len(forget) and rec["target"]["tok"] < probe.records[0]["target"]["tok"]
    assert sum(rec[b]["n"] for b in ("high", "mid", "low")) == s["kept"]
    with pytest.raises(UnlearnkitError, match="positive number of steps"):
        SqueezeProbe(every=0)


# ---------------------------------------------------------------------------------------------
# continual


def test_forget_requests_are_whole_subjects(src):
    recs = src.split("forget10")
    names = H.subject_names(src)
    reqs = forget_requests(recs, 3, names)
    assert sorted(i for r in reqs for i in r) == list(range(len(recs)))
    subj = [{next(n for n in names if n in recs[i]["question"]) for i in r} for r in reqs]
    assert all(not (a & b) for j, a in enumerate(subj) for b in subj[j + 1 :])
    with pytest.raises(UnlearnkitError, match="continual=11 needs at least 11 subjects"):
        forget_requests(recs, 11, names)


def test_continual_with_one_stage_equals_a_normal_run(tiny_models, src):
    spec, _ = resolve("gd")
    params = make_params(spec, {"lr": 1e-3, "batch_size": 4, "max_steps": 3})
    forget, retain = src.split("forget10"), src.split("retain90")
    m1, tok = load_model(tiny_models.original)
    m2 = copy.deepcopy(m1)
    unlearn(m1, tok, spec, params, forget, retain)
    logs = continual_unlearn(m2, tok, spec, params, [forget], retain, None)
    assert len(logs) == 1
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    from unlearnkit.recipes.lm import RunConfig, run_name

    assert run_name(RunConfig(continual=1)) == run_name(RunConfig())  # same run directory, same results


def test_continual_run_writes_stages_and_decline_curves(tiny_models):
    from unlearnkit.recipes.lm import run_benchmark

    from .test_run import tiny_run

    cfg = tiny_run(name="continual2", methods=["ga"], continual=2, defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4},
                   eval={"max_new_tokens": 8})
    out = run_benchmark(cfg, say=lambda s: None)
    run = out.run
    assert not out.failures and "ga" in out.results
    cur = run.record("ga__s0").extra["continual"]
    assert cur["stages"] == 2 and [s["stage"] for s in cur["curve"]] == [0, 1, 2]
    assert cur["curve"][1]["forget_es_done"] is not None and cur["curve"][2]["forget_es_to_come"] is None
    assert cur["curve"][2]["forget_es_exact"] == pytest.approx(out.results["ga"][0].value("forget.es_exact"))
    stage1 = run.record("ga__s0__stage1")
    assert stage1 is not None and cur["curve"][1]["mu"] == pytest.approx(stage1.value("mu"))
    for f in ("continual.json", "continual.csv", "continual.png"):
        assert run.layout.file(f).is_file()
    log = json.loads(run.layout.log("ga__s0").read_text())
    assert [s["stage"] for s in log["stages"]] == [1, 2]
    from unlearnkit.recipes.report import report

    from .test_report import Page

    svg = Page(report(["continual2"]).path.read_text(encoding="utf-8")).svg("Continual unlearning")
    assert "forget ES-exact, requests done ↓" in svg and "ga__s0" in svg


# ---------------------------------------------------------------------------------------------
# commands


def _cli(capsys, *argv):
    from unlearnkit.cli import main

    rc = main(list(argv))
    return rc, capsys.readouterr()


@pytest.mark.parametrize("cmd", ["gradient", "squeeze"])
@pytest.mark.parametrize("every", ["0", "-2"])
def test_non_positive_interval_on_the_command_line(capsys, cmd, every):
    rc, out = _cli(capsys, cmd, "--method", "ga", "--every", every)
    assert rc == 2 and f"--every must be a positive number of optimiser steps (s ≥ 1), got {every}" in out.err


def test_layers_command_rejects_a_missing_layer(capsys, tiny_models):
    rc, out = _cli(capsys, "layers", "--unlearned", str(tiny_models.original), "--model", str(tiny_models.original),
                   "--data", str(tiny_models.data_dir), "--reference", str(tiny_models.reference_for("forget10")),
                   "--layers", "0,5")
    assert rc == 2 and "layer 5 does not exist: the model has 2 transformer layers" in out.err


def test_post_hoc_method_in_unlearn_command_is_a_clear_error(capsys, tiny_models):
    rc, out = _cli(capsys, "unlearn", "--method", "cru", "--model", str(tiny_models.original),
                   "--data", str(tiny_models.data_dir))
    assert rc == 2 and "is post-hoc" in out.err


def test_gradient_command_writes_curves_and_plots(capsys, tiny_models, tmp_path):
    rc, out = _cli(capsys, "gradient", "--method", "ga,npo", "--every", "2", "--pointwise", "--model",
                   str(tiny_models.original), "--data", str(tiny_models.data_dir), "--out", str(tmp_path),
                   "max_steps=2", "batch_size=4", "lr=1e-3")
    assert rc == 0, out.err
    doc = json.loads((tmp_path / "g_effect.json").read_text())
    assert json.loads((tmp_path / "run.json").read_text())["kind"] == "gradient"
    assert json.loads((tmp_path / "results" / "ga" / "results.json").read_text())["aggregates"]["e_u"]["value"] < 0
    assert set(doc["methods"]) == {"ga", "npo"}
    assert [r["step"] for r in doc["methods"]["ga"]["records"]] == [0, 2]
    for f in ("g_effect.csv", "g_effect.png", "g_effect_groups.png", "g_effect_pointwise.csv", "g_effect_pointwise.png"):
        assert (tmp_path / f).is_file(), f
    assert "e_u (forget term)" in out.out
    rc, out = _cli(capsys, "report", str(tmp_path))  # an --out directory is a run directory too
    assert rc == 0, out.err
    from .test_report import Page

    svg = Page((tmp_path / "report.html").read_text(encoding="utf-8")).svg("G-effect curves")
    assert "ga (forget term)" in svg and "npo (forget term)" in svg


def test_layers_command_evaluates_every_model_in_the_dtype_asked_for(capsys, tiny_models, tmp_path, monkeypatch):
    """`layers --dtype bfloat16`: θ_u is trained in float32 weights, then θ_r, θ_o, θ_u and every patched model
    are evaluated in bfloat16 (the sweep's `evaluate` sees four models: θ_r, θ_o, θ_u and θ_o ← θ_u[layer.1]),
    and the dtype is written to the output's config."""
    seen = []
    real = C.evaluate

    def spy(model, *a, **k):
        seen.append(next(model.parameters()).dtype)
        return real(model, *a, **k)

    monkeypatch.setattr(C, "evaluate", spy)
    rc, out = _cli(capsys, "layers", "--method", "ga", "--dtype", "bfloat16", "--layers", "1", "--model",
                   str(tiny_models.original), "--data", str(tiny_models.data_dir), "--reference",
                   str(tiny_models.reference_for("forget10")), "--out", str(tmp_path / "ly"), "--max-new-tokens", "8",
                   "max_steps=2", "lr=1e-3", "batch_size=4")
    assert rc == 0, out.err
    assert seen == [torch.bfloat16] * 4, seen  # θ_r, θ_o, θ_u, layer.1
    doc = json.loads((tmp_path / "ly" / "layers.json").read_text())
    assert list(doc["sweep"]) == ["layer.1"] and doc["meta"]["config"]["dtype"] == "torch.bfloat16"


@pytest.mark.parametrize("cmd", ["gradient", "squeeze", "layers"])
def test_analysis_commands_have_help(capsys, cmd):
    with pytest.raises(SystemExit) as e:
        _cli(capsys, cmd, "--help")
    assert e.value.code == 0 and "usage: unlearnkit " + cmd in capsys.readouterr().out


@pytest.mark.slow
def test_layers_command_with_cru_end_to_end(capsys, tiny_models, tmp_path):
    rc, out = _cli(capsys, "layers", "--method", "ga", "--cru", "--model", str(tiny_models.original),
                   "--data", str(tiny_models.data_dir), "--reference", str(tiny_models.reference_for("forget10")),
                   "--out", str(tmp_path), "--max-new-tokens", "16", "max_steps=3", "lr=1e-3", "batch_size=4")
    assert rc == 0, out.err
    doc = json.loads((tmp_path / "layers.json").read_text())
    assert list(doc["sweep"]) == ["embedding", "layer.0", "layer.1", "head"]
    assert set(doc["cru"]["test"]) == {"original", "unlearned", "cru"}
    for f in ("layers.csv", "layers.png", "cru.csv", "cru.png"):
        assert (tmp_path / f).is_file()
    rc, out = _cli(capsys, "report", str(tmp_path))
    assert rc == 0, out.err
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<b>Layer-wise patching.</b>" in text and "<b>CRU.</b>" in text


def test_cru_in_a_run_reuses_the_base_entry_and_reports_its_selection(tiny_models):
    from unlearnkit.recipes.lm import run_benchmark

    from .test_run import tiny_run

    cfg = tiny_run(name="cru", methods=["ga", "cru"], defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4},
                   method_params={"cru": {"base": "ga", "units": "layers", "k": 1}}, eval={"max_new_tokens": 8})
    said = []
    out = run_benchmark(cfg, say=said.append)
    assert not out.failures and set(out.results) == {"Original", "Retrain", "ga", "cru"}
    assert "cru__s0: reusing θ_u of ga__s0" in said
    rep = out.run.record("cru__s0").extra["post_hoc"]
    assert rep["k"] == 1 and len(rep["groups_from_unlearned"]) == 1
    log = json.loads(out.run.layout.log("cru__s0").read_text())
    assert log["base"] == "ga" and log["base_params"]["lr"] == 1e-3


def test_post_hoc_methods_are_validated_in_a_run():
    from unlearnkit.recipes.lm import validate_methods

    from .test_run import tiny_run

    with pytest.raises(UnlearnkitError, match="cannot run in stages"):
        validate_methods(tiny_run(methods=["ga", "cru"], continual=2))
    with pytest.raises(UnlearnkitError, match="base 'cru' is post-hoc too"):
        validate_methods(tiny_run(methods=["cru"], method_params={"cru": {"base": "cru"}}))
    with pytest.raises(UnlearnkitError, match="method_params.cru.k"):
        validate_methods(tiny_run(methods=["cru"], method_params={"cru": {"k": -1}}))
    with pytest.raises(UnlearnkitError, match="give the retain term to its base method"):
        validate_methods(tiny_run(methods=["cru+kl"]))


def test_rank_ties_absorb_numerical_noise():
    # k0 and k1 differ by 2e-7 in MU (a norm weight that barely moved): a tie, so the higher FQ decides
    c = [{"fq_log_p": -9.7957, "mu": 0.9121248}, {"fq_log_p": -9.7957, "mu": 0.9121250},
         {"fq_log_p": -6.80, "mu": 0.8177}, {"fq_log_p": -5.53, "mu": 0.7595}, {"fq_log_p": -5.53, "mu": 0.7344}]
    assert C.choose_k(c) == 3  # rank sums 4.5+1.5, 4.5+1.5, 3+3, 1.5+4, 1.5+5 → 6, 6, 6, 5.5, 6.5


def test_relative_change_is_zero_for_identical_models_and_positive_where_moved(pair):
    original, unlearned, _ = pair
    assert all(v == 0.0 for v in P.relative_change(original, original).values())
    rel = P.relative_change(original, unlearned)
    assert set(rel) == {"embedding", "layer.0", "layer.1", "head"} and all(v > 0 for v in rel.values())
