"""The evaluation engine: one pass per variant, generation-based ES cross-check, the embedded story."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unlearnkit import metrics as M
from unlearnkit.data.tofu import QASource
from unlearnkit.engine.generate import extraction_strength_by_generation
from unlearnkit.engine.passes import teacher_forced_pass
from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.lm import load_model, model_fingerprint
from unlearnkit.tasks import tofu_eval as E

CFG = E.EvalConfig(max_new_tokens=48)


@pytest.fixture(scope="module")
def src(tiny_models):
    return QASource(tiny_models.data_dir)


@pytest.fixture(scope="module")
def results(tiny_models, src):
    """θ_o, θ_r and the base model evaluated once (cached passes) and compared to θ_r."""
    out = {}
    for name, path in (("original", tiny_models.original), ("reference", tiny_models.reference_for("forget10")),
                       ("base", tiny_models.base)):
        model, tok = load_model(path)
        out[name] = E.evaluate(model, tok, src, CFG, model_id=model_fingerprint(path))
    for r in out.values():
        E.compare_to_reference(r, out["reference"])
    return out


@pytest.mark.parametrize("which", ["original", "reference"])
def test_teacher_forced_es_equals_generation_es_on_every_sample(tiny_models, src, which):
    """ES from teacher-forced argmax flags = ES from greedy rollouts, sample by sample."""
    path = tiny_models.original if which == "original" else tiny_models.reference_for("forget10")
    model, tok = load_model(path)
    for split in ("forget10_perturbed", "retain_perturbed"):
        recs = src.split(split)
        st = teacher_forced_pass(model, tok, [(r["question"], r["answer"]) for r in recs])
        for i, r in enumerate(recs):
            tf = M.extraction_strength(st.corrects(i))
            gen = extraction_strength_by_generation(model, tok, r["question"], r["answer"])
            assert tf == pytest.approx(gen, abs=1e-12), (split, i, r["answer"])


def test_pass_equals_a_full_logits_forward(tiny_models, src):
    """Gathered-hidden-state pass = log_softmax over the full logits of one unbatched forward."""
    model, tok = load_model(tiny_models.reference_for("forget10"))
    recs = src.split("forget10_perturbed")[:4]
    st = teacher_forced_pass(model, tok, [(r["question"], r["answer"]) for r in recs], batch_size=3)
    from unlearnkit.data.prompts import encode_pair

    for i, r in enumerate(recs):
        enc = encode_pair(tok, r["question"], r["answer"])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        n_p = len(enc.prompt_ids)
        pos = torch.arange(n_p - 1, len(enc.input_ids) - 1)
        tgt = torch.tensor(enc.answer_ids)
        lp = logp[pos, tgt].numpy()
        np.testing.assert_allclose(st.logprobs(i), lp, atol=1e-5)
        np.testing.assert_array_equal(st.corrects(i), (logits[pos].argmax(-1) == tgt).numpy())
        mu, sigma = M.min_k_plus_plus_moments(logp[pos].numpy())
        np.testing.assert_allclose(st.zs(i), M.min_k_plus_plus_token_scores(lp, mu, sigma), atol=1e-4)


def test_reference_against_itself_has_forget_quality_one(results):
    assert results["reference"].value("fq") == 1.0
    assert results["reference"].value("fq_log_p") == 0.0
    assert results["reference"].value("privleak") == 0.0


def test_original_is_far_from_the_reference(results):
    o, r = results["original"], results["reference"]
    assert o.value("fq") < 0.05 < r.value("fq")
    assert o.value("forget.es_exact") >= 0.9 and o.value("forget.em") >= 0.9
    assert r.value("forget.es_exact") <= 0.3 and r.value("forget.em") <= 0.5
    assert o.value("retain.es_exact") >= 0.9 and r.value("retain.es_exact") >= 0.9
    assert abs(o.value("mu") - r.value("mu")) < 0.1
    assert o.value("mia.auc_min_k") > 0.9 and o.value("privleak") < -80  # MUSE convention: θ_o ≈ −100


def test_base_model_knows_only_the_utility_facts(results):
    b = results["base"]
    assert b.value("mu") < 0.2  # it never saw the retain subjects
    assert b.value("wf.rouge") > 0.8 and b.value("ra.rouge") > 0.8


def test_aggregates_agree_with_per_sample_values(results):
    o = results["original"]
    assert o.value("forget.es_exact") == pytest.approx(np.mean(o.per_sample["forget"]["es_exact"]))
    assert o.value("forget.truth_ratio") == pytest.approx(M.truth_ratio_forget(o.per_sample["forget"]["truth_ratio"]))
    parts = [o.value(k) for k in ("retain.prob", "retain.rouge", "retain.truth_ratio", "ra.norm_prob", "ra.rouge",
                                  "ra.truth_ratio", "wf.norm_prob", "wf.rouge", "wf.truth_ratio")]
    assert o.value("mu") == pytest.approx(M.harmonic_mean(parts))
    assert o.aggregates["forget.es_exact"].n == 10 and o.aggregates["forget.es_exact"].higher_is_better is False


def test_second_evaluation_reads_the_cache(tiny_models, src, results, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("pass recomputed")

    monkeypatch.setattr(E, "teacher_forced_pass", boom)
    monkeypatch.setattr(E, "generate_answers", boom)
    model, tok = load_model(tiny_models.original)
    again = E.evaluate(model, tok, src, CFG, model_id=model_fingerprint(tiny_models.original))
    assert again.value("forget.es_exact") == results["original"].value("forget.es_exact")


def test_save_and_load_round_trip(results, tmp_path):
    from unlearnkit.results.eval import load_eval, write_eval
    from unlearnkit.results.store import EntryInfo, Run

    run = Run.open_at(tmp_path / "r", "eval")
    write_eval(run, EntryInfo("model", "h"), results["original"], {"seed": 0})
    data = json.loads(run.layout.result_file("model").read_text())
    assert data["aggregates"]["mu"]["n"] == 30 and data["aggregates"]["mu"]["higher_is_better"] is True
    back = load_eval(run, "model")
    assert back.aggregates == results["original"].aggregates
    assert back.value("fq") == results["original"].value("fq")
    assert back.per_sample["forget"]["truth_ratio"] == results["original"].per_sample["forget"]["truth_ratio"]
    assert back.generations["forget"] == results["original"].generations["forget"]


def test_missing_reference_is_a_clear_error(results):
    with pytest.raises(UnlearnkitError, match="--reference PATH"):
        E.compare_to_reference(results["original"], None)


def test_eval_set_missing_a_field_is_a_clear_error(tiny_models, tmp_path):
    import shutil

    d = tmp_path / "data"
    shutil.copytree(tiny_models.data_dir, d)
    rows = [json.loads(x) for x in (d / "retain_perturbed.json").read_text().splitlines()]
    for r in rows:
        r.pop("paraphrased_question")
    (d / "retain_perturbed.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model, tok = load_model(tiny_models.original)
    with pytest.raises(UnlearnkitError, match="retain_perturbed' has no field 'paraphrased_question'"):
        E.evaluate(model, tok, QASource(d), CFG)


def test_eval_cli_writes_results_with_provenance(tiny_models, tmp_path, capsys):
    from unlearnkit.cli import main

    rc = main(["eval", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir),
               "--reference", str(tiny_models.reference_for("forget10")), "--out", str(tmp_path), "max_new_tokens=48"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "forget.es_exact" in out and "fq_log_p" in out and "AUC > 0.5 means members" in out
    data = json.loads((tmp_path / "results" / "model" / "results.json").read_text())
    prov = data["provenance"]
    assert prov["unlearnkit_version"] and "torch" in prov["libraries"] and prov["hardware"]["cpu_count"]
    assert prov["config"]["max_new_tokens"] == 48
    rows = (tmp_path / "results" / "model" / "per_sample.jsonl").read_text().splitlines()
    assert len(rows) == 10 + 10 + 10 + 10 + 10  # forget, retain, holdout, ra, wf
    assert json.loads((tmp_path / "run.json").read_text())["kind"] == "eval"
    # the same command again reuses the finished evaluation; a non-empty foreign directory is refused
    assert main(["eval", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir),
                 "--reference", str(tiny_models.reference_for("forget10")), "--out", str(tmp_path),
                 "max_new_tokens=48"]) == 0
    assert "evaluated earlier" in capsys.readouterr().out


def test_eval_cli_tofu_without_reference_is_a_clear_error(tiny_models, capsys):
    from unlearnkit.cli import main

    rc = main(["eval", "--model", str(tiny_models.original), "--benchmark", "tofu", "--data", str(tiny_models.data_dir)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: forget quality and PrivLeak need the reference model") and err.count("\n") == 1


def test_eval_cli_unknown_forget_split_is_a_clear_error(tiny_models, capsys):
    from unlearnkit.cli import main

    rc = main(["eval", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir), "--forget", "forget7",
               "--no-reference"])
    err = capsys.readouterr().err
    assert rc == 2 and "forget7" in err and "forget10" in err and err.count("\n") == 1
