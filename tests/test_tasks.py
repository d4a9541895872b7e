"""Tasks: the registry, TOFU's per-sample values through the task, MUSE's and WMDP's loaders on test-written
copies in the published layouts, the lm-eval path (offline), the twins' metrics, evaluation during training."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.errors import UnlearnkitError

TOL = 1e-9


# ---------------------------------------------------------------------------------------------
# The registry and the run config


def test_the_registry_holds_every_task_with_columns_and_probes():
    from unlearnkit.tasks import TASKS, all_tasks, get_task

    names = [t.name for t in all_tasks()]
    assert names == ["muse", "tofu", "wmdp"] and len(TASKS) == 3
    for t in all_tasks():
        assert t.columns and t.probes and t.default_forget in t.forget_splits
        assert set(t.calibration_metrics) <= {p.name for p in t.probes}
        assert t.calibration_forget in {p.name for p in t.probes}
    assert [m for _, m in get_task("tofu").columns] == ["retain.es_exact", "forget.es_exact", "retain.es_perturb",
                                                        "forget.es_perturb", "mu", "fq_log_p", "privleak"]
    with pytest.raises(UnlearnkitError, match="unknown task 'mues'. Did you mean muse"):
        get_task("mues")


def test_run_config_takes_the_tasks_defaults_and_checks_names():
    from unlearnkit.config import validate
    from unlearnkit.recipes.lm import RunConfig

    muse = validate(RunConfig, {"task": "muse"})
    assert (muse.forget, muse.eval.forget) == ("forget", "forget")
    assert muse.task_options["verbmem_max_new_tokens"] == 128 and muse.task_options["twin"]["n_forget"] == 16
    assert validate(RunConfig, {}).forget == "forget10"
    ou = validate(RunConfig, {"metrics": {"convention": "openunlearning"}})
    assert ou.eval.metrics.convention == "openunlearning"
    for bad, msg in (({"task": "muse", "forget": "forget10"}, "has no forget split"),
                     ({"task": "wmdp", "benchmark": "tofu"}, "benchmark=embedded"),
                     ({"task": "muse", "task_options": {"verbmem_max_new_tokens": 0}}, "verbmem_max_new_tokens"),
                     ({"eval_every": {"every": 2, "metrics": ["knowmem_forget.rouge"]}}, "no probe metric")):
        with pytest.raises(UnlearnkitError, match=msg):
            validate(RunConfig, bad)


# ---------------------------------------------------------------------------------------------
# TOFU through the task: per-sample values of every metric on hand-made token statistics


def _stats(samples: list[tuple[list[float], list[bool], list[float]]]):
    from unlearnkit.engine.passes import TokenStats

    offsets = np.cumsum([0, *(len(s[0]) for s in samples)]).astype(np.int64)
    cat = lambda k, dt: np.concatenate([np.asarray(s[k], dt) for s in samples])  # noqa: E731
    return TokenStats(offsets, cat(0, np.float64), cat(1, bool), cat(2, np.float64))


def _tofu_records():
    def rec(q, a, pa, pert):
        return {"question": q, "answer": a, "paraphrased_question": q + "?", "paraphrased_answer": pa,
                "perturbed_answer": pert}

    qa = [rec("Q1", "alpha beta", "beta alpha", ["x", "y"]), rec("Q2", "gamma", "gamma", ["z", "w"])]
    return {"forget": qa, "retain": qa, "holdout": qa, "ra": qa[:1], "wf": qa[:1]}


def test_tofu_per_sample_values_are_pinned():
    """Two samples; answer tokens (EOS last) with log-probs lp, argmax flags c, Min-K%++ scores z:
    sample 1: lp = [ln .5, ln .25, ln 1], c = [1, 0, 1];  sample 2: lp = [ln .5, ln .5], c = [0, 0].
    ES = [1 − 2/3, 0] = [1/3, 0] (last wrong token at 2 ⇒ k = 2 of n = 3; sample 2 ends wrong ⇒ 0);
    EM = [2/3, 0]; prob = exp(mean lp) = [(1/8)^(1/3), 1/2] = [0.5, 0.5];
    truth ratio: a = mean lp of the paraphrased answer = [ln .5, ln .5], b = mean over perturbed of their
    mean lp = [ln .25, ln .125] ⇒ tr = exp(b − a) = [0.5, 0.25];
    MIA (k = 0.4): LOSS = mean lp = [−(ln 2 + ln 4)/3, −ln 2] = [−ln 2, −ln 2];
    Min-K% = lowest max(1, int(0.4·n)) = 1 ⇒ [ln .25, ln .5]; ZLib = mean lp / len(zlib(answer)).
    Under metrics.convention=openunlearning the EOS position is dropped: c = [1, 0] and [0], both ending
    wrong ⇒ ES = 1/n = [1/2, 1/1]; EM = [1/2, 0]; Min-K% of [ln .5, ln .25] and [ln .5] = [ln .25, ln .5]."""
    from unlearnkit.engine.evaluate import EvalConfig, EvalResult, _compute_metrics

    recs = _tofu_records()
    s1 = ([math.log(.5), math.log(.25), 0.0], [True, False, True], [1.0, -1.0, 2.0])
    s2 = ([math.log(.5), math.log(.5)], [False, False], [0.5, 0.25])
    para = _stats([([math.log(.5)] * 2, [True] * 2, [0.0] * 2), ([math.log(.5)], [True], [0.0])])
    pert = _stats([([math.log(.25)], [False], [0.0]), ([math.log(.25)], [False], [0.0]),
                   ([math.log(.125)], [False], [0.0]), ([math.log(.125)], [False], [0.0])])
    stats = {}
    for role in ("forget", "retain", "holdout"):
        stats[(role, "qa")] = stats[(role, "pqa")] = _stats([s1, s2])
        stats[(role, "qpa")], stats[(role, "qpert")] = para, pert
    for role in ("ra", "wf"):
        stats[(role, "qa")], stats[(role, "qpert")] = _stats([s1]), _stats([([math.log(.25)], [False], [0.0])] * 2)
    results = {}
    for conv in ("unlearnkit", "openunlearning"):
        res = EvalResult(forget="forget10")
        res.generations = {r: [x["answer"] for x in recs[r]] for r in ("forget", "retain", "ra", "wf")}
        cfg = EvalConfig(metrics={"convention": conv})
        _compute_metrics(res, recs, stats, cfg)
        results[conv] = res
    f = results["unlearnkit"].per_sample["forget"]
    np.testing.assert_allclose(f["es_exact"], [1 / 3, 0.0], atol=TOL)
    np.testing.assert_allclose(f["em"], [2 / 3, 0.0], atol=TOL)
    np.testing.assert_allclose(f["prob"], [0.5, 0.5], atol=TOL)
    np.testing.assert_allclose(f["truth_ratio"], [0.5, 0.25], atol=TOL)
    np.testing.assert_allclose(f["rouge"], [1.0, 1.0], atol=TOL)
    h = results["unlearnkit"].per_sample["holdout"]
    np.testing.assert_allclose(h["mia_loss"], [-math.log(2), -math.log(2)], atol=TOL)
    np.testing.assert_allclose(h["mia_min_k"], [math.log(.25), math.log(.5)], atol=TOL)
    np.testing.assert_allclose(h["mia_zlib"], [-math.log(2) / len(zlib.compress(b"alpha beta")),
                                               -math.log(2) / len(zlib.compress(b"gamma"))], atol=TOL)
    o = results["openunlearning"].per_sample["forget"]
    np.testing.assert_allclose(o["es_exact"], [0.5, 1.0], atol=TOL)
    np.testing.assert_allclose(o["em"], [0.5, 0.0], atol=TOL)
    np.testing.assert_allclose(results["openunlearning"].per_sample["holdout"]["mia_min_k"],
                               [math.log(.25), math.log(.5)], atol=TOL)
    for key in ("prob", "truth_ratio", "rouge", "para_prob"):  # the convention changes only ES, EM, Min-K(++)
        assert o[key] == f[key]
    assert "convention" in results["openunlearning"].notes and "convention" not in results["unlearnkit"].notes


# ---------------------------------------------------------------------------------------------
# MUSE: the published layout, on a test-written copy


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_muse_loader_reads_the_published_layout(tmp_path):
    """MUSE-News as the hub lays it out (parquet shards per config/split; early revisions name the retain
    splits retain2_qa / retain2)."""
    from unlearnkit.data.muse import MuseSource

    texts = [{"text": f"article {i}"} for i in range(3)]
    for split in ("forget", "retain1", "retain2", "holdout"):
        _write_parquet(tmp_path / "raw" / f"{split}-00000-of-00001.parquet", texts)
    _write_parquet(tmp_path / "verbmem" / "forget-00000-of-00001.parquet", [{"prompt": "The", "gt": "end"}])
    for split in ("forget_qa", "retain2_qa", "forget_qa_icl", "retain2_qa_icl"):
        _write_parquet(tmp_path / "knowmem" / f"{split}-00000-of-00001.parquet", [{"question": split, "answer": "a"}])
    for split in ("forget", "retain2", "holdout"):
        _write_parquet(tmp_path / "privleak" / f"{split}-00000-of-00001.parquet", texts)
    for j in range(1, 5):
        _write_parquet(tmp_path / "scal" / f"forget_{j}-00000-of-00001.parquet", texts[:1] * j)
    src = MuseSource(tmp_path)
    assert not src.is_twin
    assert [r["text"] for r in src.forget("forget")] == ["article 0", "article 1", "article 2"]
    assert len(src.forget("scal3")) == 3 and src.verbmem() == [{"prompt": "The", "gt": "end"}]
    assert src.knowmem("retain")[0]["question"] == "retain2_qa" and src.knowmem_icl("forget")[0]["answer"] == "a"
    assert len(src.privleak("retain")) == 3
    (tmp_path / "knowmem" / "forget_qa.json").write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(UnlearnkitError, match="has no valid field 'answer'"):
        MuseSource(tmp_path).knowmem("forget")
    with pytest.raises(UnlearnkitError, match="sust/forget_1 not found"):
        src.sust(1)


def test_the_muse_twin_is_written_in_the_published_layout():
    from unlearnkit.data import news
    from unlearnkit.data.muse import MuseSource

    cfg = news.NewsConfig(n_forget=8, n_retain1=4, n_retain2=4, n_holdout=4, n_background=4)
    src = MuseSource(news.build(cfg))
    assert src.is_twin and len(src.raw("forget")) == 8 and len(src.forget("scal1")) == 2
    v = src.verbmem()[0]
    assert len(v["prompt"].split()) == cfg.verbmem_prompt_words and src.raw("forget")[0]["text"] == \
        v["prompt"] + " " + v["gt"]
    assert len(src.knowmem("forget")) == 8 * cfg.facts_per_person
    assert {r["question"] for r in src.knowmem("forget")}.isdisjoint({r["question"] for r in src.twin("qa_forget")})
    assert [r["answer"] for r in src.knowmem("forget")] == [r["answer"] for r in src.twin("qa_forget")]


# ---------------------------------------------------------------------------------------------
# WMDP: the published layout, on a test-written copy


def test_wmdp_loader_reads_the_published_layout(tmp_path):
    """cais/wmdp (wmdp-bio/test-…parquet), cais/wmdp-corpora (two shards read in order, and a JSON-lines
    copy), cais/mmlu in the converted-parquet layout (all/test/0000.parquet)."""
    from unlearnkit.data.wmdp import WmdpSource

    q = [{"question": f"q{i}", "choices": ["a", "b", "c", "d"], "answer": i % 4} for i in range(5)]
    _write_parquet(tmp_path / "wmdp-bio" / "test-00000-of-00001.parquet", q)
    _write_parquet(tmp_path / "bio-forget-corpus" / "train-00000-of-00002.parquet", [{"text": "one"}])
    _write_parquet(tmp_path / "bio-forget-corpus" / "train-00001-of-00002.parquet", [{"text": "two"}])
    (tmp_path / "bio-retain-corpus").mkdir()
    (tmp_path / "bio-retain-corpus" / "train.jsonl").write_text('{"text": "keep"}\n')
    _write_parquet(tmp_path / "all" / "test" / "0000.parquet", [{**x, "subject": "s"} for x in q])
    src = WmdpSource(tmp_path, domain="bio", mmlu_limit=3)
    assert [r["answer"] for r in src.questions()] == [0, 1, 2, 3, 0]
    assert [r["text"] for r in src.forget_corpus()] == ["one", "two"] and src.retain_corpus() == [{"text": "keep"}]
    assert len(src.utility()) == 3
    _write_parquet(tmp_path / "wmdp-cyber" / "test-00000-of-00001.parquet",
                   [{"question": "q", "choices": ["a", "b", "c"], "answer": 0}])
    with pytest.raises(UnlearnkitError, match="not a four-choice question"):
        WmdpSource(tmp_path, domain="cyber").questions()
    with pytest.raises(UnlearnkitError, match="does not exist"):
        WmdpSource(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------------
# lm-eval (offline) and the native scorer


@pytest.fixture(scope="module")
def tiny_mc_model():
    from unlearnkit.config import TinyLlamaConfig
    from unlearnkit.data import hazards
    from unlearnkit.models.lm import build_tiny_llama
    from unlearnkit.models.tokenizer import train_tokenizer

    data = hazards.generate(hazards.HazardConfig(n_agents=4, n_countries=4))
    questions = data["wmdp-hazard/test"][:6]
    tok = train_tokenizer([hazards.mc_text(x) for x in data["wmdp-hazard/test"] + data["all/test"]], 400)
    cfg = TinyLlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          vocab_size=400)
    return build_tiny_llama(cfg, tok, 3).eval(), tok, questions


def test_lm_eval_scores_our_model_offline_as_the_native_scorer_does(tiny_mc_model, monkeypatch):
    """lm-eval (local task YAML, json builder, our model wrapped as HFLM) and unlearnkit's own pass give the
    same log-likelihood for every choice and the same accuracy; the caller's RNG is untouched."""
    from unlearnkit.tasks.lmeval import lm_eval_samples, native_mc_accuracy, native_mc_logliks

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    model, tok, questions = tiny_mc_model
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    samples = lm_eval_samples(model, tok, {"twin_hazard": questions}, batch_size=4)["twin_hazard"]
    assert torch.equal(torch.random.get_rng_state(), before)
    lm = np.array([[ll for ll, _ in s["filtered_resps"]] for s in samples])
    np.testing.assert_allclose(lm, native_mc_logliks(model, tok, questions), atol=1e-4)
    assert [float(s["acc"]) for s in samples] == native_mc_accuracy(model, tok, questions)


# ---------------------------------------------------------------------------------------------
# MUSE's metrics on the twin (a random tiny model: the plumbing and the arithmetic)


@pytest.fixture(scope="module")
def muse_twin():
    from unlearnkit.config import TinyLlamaConfig
    from unlearnkit.data import news
    from unlearnkit.data.muse import MuseSource
    from unlearnkit.models.lm import build_tiny_llama
    from unlearnkit.models.tokenizer import train_tokenizer
    from unlearnkit.tasks.base import TaskData

    src = MuseSource(news.build(news.NewsConfig(n_forget=4, n_retain1=2, n_retain2=2, n_holdout=4, n_background=4)))
    tok = train_tokenizer([r["text"] for r in src.raw("forget") + src.raw("holdout")], 400)
    model = build_tiny_llama(TinyLlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=64, vocab_size=400, max_position_embeddings=256),
                             tok, 0).eval()
    data = TaskData("muse", src, src.location, "", "", src.raw("forget"), src.raw("retain1"), [], "")
    return model, tok, data


def test_muse_verbmem_is_the_rouge_l_f1_of_the_continuations(muse_twin, monkeypatch):
    """Continuations [gt₁, "", …]: ROUGE-L F1 = [1, 0, …]; VerbMem = their mean = 1/4 with 4 prompts."""
    import unlearnkit.tasks.muse as mu
    from unlearnkit.engine.evaluate import EvalConfig, EvalResult, PassCache

    model, tok, data = muse_twin
    gts = [r["gt"] for r in data.source.verbmem()]
    monkeypatch.setattr(mu, "_generate", lambda m, t, prompts, n, cfg: [gts[0]] + [""] * (len(prompts) - 1))
    res = EvalResult(forget="forget")
    mu._verbmem(res, model, tok, data.source, EvalConfig(forget="forget"), mu.MuseOptions(), PassCache(None, False))
    assert res.per_sample["verbmem"]["rouge"] == [1.0, 0.0, 0.0, 0.0] and res.value("verbmem.rouge") == 0.25


def test_muse_evaluation_and_privleak_against_itself(muse_twin):
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.tasks import get_task

    model, tok, data = muse_twin
    task = get_task("muse")
    res = task.evaluate(model, tok, data, EvalConfig(forget="forget", cache=False), task.options())
    for key in ("verbmem.rouge", "knowmem_forget.rouge", "knowmem_retain.rouge", "mia.auc_min_k", "mia.auc_gradnorm"):
        assert 0.0 <= res.value(key) <= 1.0
    assert len(res.per_sample["privleak_forget"]["mia_min_k"]) == 4 == len(res.generations["verbmem"])
    task.compare(res, res)
    assert res.value("privleak") == 0.0 and res.value("mia.auc_reference") == 0.5
    probes = task.probe(model, tok, data, ["knowmem_forget.prob", "knowmem_retain.rouge"],
                        EvalConfig(forget="forget"), task.options())
    assert probes["knowmem_retain.rouge"] == pytest.approx(res.value("knowmem_retain.rouge"))


# ---------------------------------------------------------------------------------------------
# GradNorm: the engine's norms against a hand computation


def test_gradient_norms_match_a_manual_backward(muse_twin):
    """‖∇θ mean NLL‖_p for p = 1, 2, inf equals the norm of the gradients of loss.backward(); .grad untouched."""
    from unlearnkit.data.prompts import collate, encode_text
    from unlearnkit.engine.gradnorm import gradient_norms

    model, tok, _ = muse_twin
    enc = encode_text(tok, "The story is still developing.")
    norms = {p: gradient_norms(model, tok, [enc], p)[0] for p in (1, 2, "inf")}
    assert all(p.grad is None for p in model.parameters())
    batch = collate([enc], tok.pad_token_id)
    model.zero_grad()
    model(**batch).loss.backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    model.zero_grad(set_to_none=True)
    assert norms[2] == pytest.approx(float(g.norm()), rel=1e-5)
    assert norms[1] == pytest.approx(float(g.abs().sum()), rel=1e-5)
    assert norms["inf"] == pytest.approx(float(g.abs().max()), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Evaluation during training


class _FakeTask:
    name = "fake"

    class _P:
        def __init__(self, name, hib):
            self.name, self.higher_is_better = name, hib

    probes = (_P("forget.es", False), _P("retain.es", True))

    def __init__(self, values):
        self.values = iter(values)

    def probe(self, model, tok, data, names, cfg, options):
        return dict(zip(("forget.es", "retain.es"), next(self.values)))


def test_selection_takes_the_lowest_forget_metric_that_keeps_tau_of_the_original():
    """Points (step: forget, retain): 0: (1.0, 1.0) θ_o; 2: (0.6, 0.95); 4: (0.2, 0.85); 6: (0.1, 0.5).
    τ = 0.9 ⇒ retain ≥ 0.9: steps 0 and 2 qualify, the lowest forget is 0.6 at step 2 (step 4's 0.85 < 0.9)."""
    from unlearnkit.tasks.training import EvalEveryConfig, TrainingEvaluator

    cfg = EvalEveryConfig(every=2, metrics=["forget.es"], select={"metric": "forget.es", "keep": "retain.es",
                                                                   "tau": 0.9, "use": False})
    ev = TrainingEvaluator(_FakeTask([(1.0, 1.0), (0.6, 0.95), (0.2, 0.85), (0.1, 0.5)]), None, None, None, cfg,
                           None, is_main=lambda: True)
    model = torch.nn.Linear(1, 1)
    ctx = type("Ctx", (), {"model": model})()
    for step in range(7):
        ev.on_step(step, ctx, final=step == 6)
    doc = ev.finish(model)
    assert [p["step"] for p in doc["curve"]] == [0, 2, 4, 6] and doc["selected"]["step"] == 2
    assert doc["criterion"] == "min forget.es with retain.es ≥ 0.9·(step 0)"
    skipped = TrainingEvaluator(_FakeTask([]), None, None, None, cfg, None, is_main=lambda: False)
    skipped.on_step(0, ctx, False)
    assert skipped.curve == []  # another process: probes run on the main process only


def test_probes_leave_training_bit_identical(tiny_models):
    """GD for 4 steps (2 epochs of 3 batches, max_steps=4) with a probe every step (and a selected checkpoint reported, not used) trains exactly the
    weights of the same run without probes; the curve starts at θ_o (step 0)."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import get_task
    from unlearnkit.tasks.base import TaskData
    from unlearnkit.tasks.training import EvalEveryConfig, TrainingEvaluator

    src = QASource(tiny_models.data_dir)
    spec, retain = resolve("gd")
    params = make_params(spec, {"lr": 1e-3, "epochs": 2, "batch_size": 4, "max_steps": 4}, retain)
    data = TaskData("tofu", src, "", "", "", src.split("forget10"), src.split("retain90"), src.refusals, "")
    states = []
    for probed in (False, True):
        model, tok = load_model(tiny_models.original)
        ev = TrainingEvaluator(get_task("tofu"), data, None, EvalConfig(batch_size=16),
                               EvalEveryConfig(every=1, metrics=["forget.es_exact", "retain.prob"],
                                               select={"metric": "forget.es_exact", "use": False}), tok,
                               is_main=lambda: True) if probed else None
        unlearn(model, tok, spec, params, data.forget_records, data.retain_records, src.refusals,
                on_step=ev.on_step if ev else None, on_epoch=ev.on_epoch if ev else None)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert [p["step"] for p in ev.curve] == [0, 1, 2, 3, 4] and ev.curve[0]["forget.es_exact"] > 0.9


# ---------------------------------------------------------------------------------------------
# The twins end to end (slow: builds the twins' models)


def _tiny_task_run(task: str, methods: list[str], **over):
    from unlearnkit.config import validate
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    from .conftest import tiny_build_config

    build = tiny_build_config().model_dump()
    opts = {"muse": {"twin": {"n_forget": 8, "n_retain1": 8, "n_retain2": 8, "n_holdout": 8, "n_background": 8}},
            "wmdp": {"twin": {"n_agents": 8, "n_countries": 8}}}[task]
    cfg = validate(RunConfig, {"task": task, "task_options": opts, "build": build, "methods": methods,
                               "defaults": {"lr": 1e-3, "epochs": 3, "batch_size": 4}, **over})
    return run_benchmark(cfg, say=lambda s: None)


@pytest.mark.slow
def test_muse_twin_runs_end_to_end():
    out = _tiny_task_run("muse", ["ga", "npo"])
    o, r = out.results["Original"][0], out.results["Retrain"][0]
    assert o.value("verbmem.rouge") > r.value("verbmem.rouge") and o.value("privleak") < r.value("privleak") == 0
    assert o.value("knowmem_forget.rouge") > r.value("knowmem_forget.rouge")
    assert "VerbMem ↓" in out.table and not out.failures
    assert out.results["ga"][0].value("verbmem.rouge") < o.value("verbmem.rouge")


@pytest.mark.slow
def test_wmdp_twin_runs_end_to_end_with_lm_eval():
    out = _tiny_task_run("wmdp", ["rmu"], method_params={"rmu": {"lr": 2e-3}})
    o, r = out.results["Original"][0], out.results["Retrain"][0]
    assert o.value("forget_mc.acc") > 0.6 > r.value("forget_mc.acc")
    assert "utility acc ↑" in out.table and not out.failures


def test_tofu_probes_equal_the_evaluations_aggregates(tiny_models):
    """A probe is the evaluation's number computed alone: same pass, same definition (both conventions)."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import EvalConfig, evaluate
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import get_task
    from unlearnkit.tasks.base import TaskData

    model, tok = load_model(tiny_models.original)
    src = QASource(tiny_models.data_dir)
    data = TaskData("tofu", src, "", "", "", [], [], [], "")
    names = ["forget.es_exact", "forget.es_perturb", "retain.em", "retain.prob"]
    for conv in ("unlearnkit", "openunlearning"):
        cfg = EvalConfig(max_new_tokens=8, mia_gradnorm=False, metrics={"convention": conv})
        res = evaluate(model, tok, src, cfg)
        probes = get_task("tofu").probe(model, tok, data, names, cfg, None)
        assert probes == pytest.approx({n: res.value(n) for n in names}, abs=1e-12)
