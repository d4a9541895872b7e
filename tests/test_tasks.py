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
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.engine.result import EvalResult
    from unlearnkit.tasks.tofu_eval import _compute_metrics

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
    from unlearnkit.engine.cache import PassCache
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.engine.result import EvalResult

    model, tok, data = muse_twin
    gts = [r["gt"] for r in data.source.verbmem()]
    monkeypatch.setattr(mu, "_generate", lambda m, t, prompts, n, cfg: [gts[0]] + [""] * (len(prompts) - 1))
    res = EvalResult(forget="forget")
    mu._verbmem(res, model, tok, data.source, EvalConfig(forget="forget"), mu.MuseOptions(), PassCache(None, False))
    assert res.per_sample["verbmem"]["rouge"] == [1.0, 0.0, 0.0, 0.0] and res.value("verbmem.rouge") == 0.25


def test_muse_evaluate_scores_known_generations(muse_twin, monkeypatch):
    """Generations set by construction, in evaluate's order (verbmem, knowmem forget, knowmem retain): verbmem
    [gt₁, "", "", ""] ⇒ 1/4; knowmem-forget the first of 12 answers right ⇒ 1/12; knowmem-retain every answer
    followed by a second line (cut at the newline) ⇒ 1."""
    import unlearnkit.tasks.muse as mu
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.tasks import get_task

    model, tok, data = muse_twin
    src = data.source
    forget_answers = [r["answer"] for r in src.knowmem("forget")]
    queue = [[src.verbmem()[0]["gt"], "", "", ""], [forget_answers[0]] + ["xyzzy"] * 11,
             [f" {r['answer']}\nQuestion: next" for r in src.knowmem("retain")]]
    monkeypatch.setattr(mu, "_generate", lambda m, t, prompts, n, cfg: queue.pop(0))
    task = get_task("muse")
    res = task.evaluate(model, tok, data, EvalConfig(forget="forget", cache=False, mia_gradnorm=False), task.options())
    assert queue == [] and res.per_sample["knowmem_forget"]["rouge"] == [1.0] + [0.0] * 11
    assert res.value("verbmem.rouge") == 0.25 and res.value("knowmem_forget.rouge") == pytest.approx(1 / 12, abs=TOL)
    assert res.generations["knowmem_retain"] == [r["answer"] for r in src.knowmem("retain")]
    assert res.value("knowmem_retain.rouge") == 1.0


def _pair_auc(members: list[float], nonmembers: list[float]) -> float:
    """ROC AUC with members labelled 1, by hand: the share of (member, non-member) pairs where the member scores
    higher, ties counting ½."""
    return float(np.mean([1.0 if m > n else 0.5 if m == n else 0.0 for m in members for n in nonmembers]))


def test_muse_evaluation_and_privleak_against_itself(muse_twin):
    """Each aggregate recomputed from what the evaluation produced: the ROUGE-L F1 (rouge_score's scorer, stemmed) of
    each generation against its own reference (verbmem gt, knowmem answers) and their mean; the Min-K% and GradNorm
    AUCs by pair counting over the per-sample scores of the 4 privleak members and 4 non-members. θ_r against
    itself: PrivLeak 0, Reference AUC ½."""
    from rouge_score.rouge_scorer import RougeScorer

    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.tasks import get_task

    model, tok, data = muse_twin
    task, src = get_task("muse"), data.source
    res = task.evaluate(model, tok, data, EvalConfig(forget="forget", cache=False), task.options())
    refs = {"verbmem": [r["gt"] for r in src.verbmem()], "knowmem_forget": [r["answer"] for r in src.knowmem("forget")],
            "knowmem_retain": [r["answer"] for r in src.knowmem("retain")]}
    assert {k: len(v) for k, v in refs.items()} == {"verbmem": 4, "knowmem_forget": 12, "knowmem_retain": 6}
    scorer = RougeScorer(["rougeL"], use_stemmer=True)
    for role, gts in refs.items():
        gens = res.generations[role]
        f1 = [scorer.score(gt, g)["rougeL"].fmeasure for g, gt in zip(gens, gts, strict=True)]
        np.testing.assert_allclose(res.per_sample[role]["rouge"], f1, atol=TOL)
        assert res.value(f"{role}.rouge") == pytest.approx(np.mean(f1), abs=TOL)
    members, nonmembers = res.per_sample["privleak_forget"], res.per_sample["privleak_holdout"]
    assert len(members["mia_min_k"]) == 4 == len(nonmembers["mia_gradnorm"])
    for attack in ("min_k", "gradnorm", "loss", "zlib"):
        assert res.value(f"mia.auc_{attack}") == pytest.approx(
            _pair_auc(members[f"mia_{attack}"], nonmembers[f"mia_{attack}"]), abs=TOL)
    task.compare(res, res)
    assert res.value("privleak") == 0.0 and res.value("mia.auc_reference") == 0.5
    probes = task.probe(model, tok, data, ["knowmem_forget.prob", "knowmem_retain.rouge"],
                        EvalConfig(forget="forget"), task.options())
    assert probes["knowmem_retain.rouge"] == pytest.approx(res.value("knowmem_retain.rouge"))


# ---------------------------------------------------------------------------------------------
# `unlearnkit unlearn` through the task registry (the twins' data only: no twin models are built)

MUSE_TWIN = {"n_forget": 4, "n_retain1": 2, "n_retain2": 2, "n_holdout": 4, "n_background": 4}  # = muse_twin's
WMDP_TWIN = {"n_agents": 4, "n_countries": 4}


def _twin_training_data(task: str):
    """D_f, D_r of the twin as the loaders read them (raw texts, not chunked), and the data directory."""
    from unlearnkit.data import hazards, news
    from unlearnkit.data.muse import MuseSource
    from unlearnkit.data.wmdp import WmdpSource

    if task == "muse":
        src = MuseSource(news.build(news.NewsConfig(**MUSE_TWIN)))
        return src.raw("forget"), src.raw("retain1"), src.location
    src = WmdpSource(hazards.build(hazards.HazardConfig(**WMDP_TWIN)), domain=hazards.DOMAIN)
    return src.forget_corpus(), src.retain_corpus(), src.location


def _tiny_lm_for(texts: list[str]):
    """A random 1-layer model whose tokenizer is trained on ``texts`` (context 256)."""
    from unlearnkit.config import TinyLlamaConfig
    from unlearnkit.models.lm import build_tiny_llama
    from unlearnkit.models.tokenizer import train_tokenizer

    tok = train_tokenizer(texts, 400)
    return build_tiny_llama(TinyLlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            intermediate_size=64, vocab_size=400, max_position_embeddings=256),
                            tok, 0).eval(), tok


@pytest.mark.parametrize("task", ["muse", "wmdp"])
def test_unlearn_trains_on_a_tasks_twin_data(task, muse_twin, tmp_path):
    """GA for 2 steps on the twin's forget corpus (retain corpus beside it): θ_u is saved, its hash is that of
    (method, params, θ_o, the twin's forget + retain + refusal records, forget split, task), the weights moved,
    and the same call again reuses it."""
    from unlearnkit.data.fictitious import REFUSALS
    from unlearnkit.engine.cache import records_hash
    from unlearnkit.io import content_hash, read_json
    from unlearnkit.methods.unlearn import make_params, resolve
    from unlearnkit.models.lm import load_model, model_id, save_model
    from unlearnkit.recipes.unlearn import unlearn_model

    forget, retain, location = _twin_training_data(task)
    model, tok = muse_twin[:2] if task == "muse" else _tiny_lm_for([r["text"] for r in forget + retain])
    save_model(model, tok, tmp_path / "theta_o")
    overrides = {"max_steps": 2, "batch_size": 2, "lr": 1e-2}
    options = {"twin": MUSE_TWIN if task == "muse" else WMDP_TWIN}
    lines: list[str] = []
    call = lambda: unlearn_model("ga", str(tmp_path / "theta_o"), out=str(tmp_path / "u"),  # noqa: E731
                                 overrides=overrides, say=lines.append, task=task, options=options)
    u = call()
    assert (u.steps, u.reused) == (2, False) and lines == [f"{task + ' twin data':<22} ready    {location}"]
    spec, retain_term = resolve("ga")
    inputs = {"method": "ga", "params": make_params(spec, overrides, retain_term).model_dump(),
              "model": model_id(str(tmp_path / "theta_o")), "data": records_hash([forget, retain, list(REFUSALS)]),
              "forget": "forget", "task": task}
    log = read_json(u.out / "train_log.json")
    assert (log["hash"], log["task"], log["forget"], len(log["steps"])) == (content_hash(inputs), task, "forget", 2)
    after = load_model(str(u.out))[0].state_dict()
    assert any(not torch.equal(v, after[k]) for k, v in model.state_dict().items())
    again = call()
    assert (again.reused, again.steps, again.out) == (True, 2, u.out)


def test_the_unlearn_command_takes_a_task(muse_twin, tmp_path, capsys):
    """`unlearnkit unlearn --task muse …` on the MUSE twin: the task's options come from task_options.* overrides,
    the forget split defaults to the task's (MUSE: forget), θ_u and its log are saved; the same command for a split
    MUSE does not have is the one-line error naming MUSE's splits (exit 2)."""
    from unlearnkit.cli import main
    from unlearnkit.io import read_json
    from unlearnkit.models.lm import save_model

    save_model(*muse_twin[:2], tmp_path / "theta_o")
    twin = [f"task_options.twin.{k}={v}" for k, v in MUSE_TWIN.items()]
    argv = ["unlearn", "--task", "muse", "--method", "ga", "--model", str(tmp_path / "theta_o"),
            "--out", str(tmp_path / "u"), "max_steps=2", "batch_size=2", *twin]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "with ga on forget in" in out and "(2 steps)" in out
    log = read_json(tmp_path / "u" / "train_log.json")
    assert (log["task"], log["forget"], len(log["steps"])) == ("muse", "forget", 2)
    assert main([*argv[:-len(twin) - 2], "--forget", "forget10"]) == 2
    assert "task muse has no forget split 'forget10': use one of forget, scal1" in capsys.readouterr().err


def test_unlearn_on_tofu_keeps_its_inputs_so_an_existing_theta_u_is_reused(tiny_models, tmp_path):
    """TOFU's θ_u hash is unchanged by the task registry: (method, params, θ_o, forget10 + retain90 + refusals,
    forget) — no task key — so an output written before is still recognised."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.cache import records_hash
    from unlearnkit.io import content_hash, read_json
    from unlearnkit.methods.unlearn import make_params, resolve
    from unlearnkit.models.lm import model_id
    from unlearnkit.recipes.unlearn import unlearn_model

    overrides = {"max_steps": 1, "batch_size": 4, "lr": 1e-3}
    u = unlearn_model("ga", str(tiny_models.original), data=str(tiny_models.data_dir), out=str(tmp_path / "u"),
                      overrides=overrides)
    src = QASource(tiny_models.data_dir)
    spec, retain_term = resolve("ga")
    inputs = {"method": "ga", "params": make_params(spec, overrides, retain_term).model_dump(),
              "model": model_id(str(tiny_models.original)),
              "data": records_hash([src.split("forget10"), src.split("retain90"), src.refusals]), "forget": "forget10"}
    log = read_json(u.out / "train_log.json")
    assert u.steps == 1 and log["hash"] == content_hash(inputs) and "task" not in log


def test_unlearn_names_the_tasks_forget_splits_and_benchmarks():
    """A wrong split (or benchmark) for the task is one line naming the valid ones, before any model is read."""
    from unlearnkit.recipes.unlearn import unlearn_model

    for task, bad, valid in (("muse", "forget10", "forget, scal1, scal2, scal3, scal4"), ("wmdp", "scal1", "forget"),
                             ("tofu", "forget3", "forget01, forget05, forget10")):
        with pytest.raises(UnlearnkitError) as e:
            unlearn_model("ga", "no/such-model", forget=bad, task=task)
        assert str(e.value) == f"task {task} has no forget split {bad!r}: use one of {valid}"
    with pytest.raises(UnlearnkitError) as e:
        unlearn_model("ga", "no/such-model", benchmark="tofu", task="wmdp")
    assert str(e.value) == ("task wmdp runs on benchmark=embedded (its offline twin) or benchmark=wmdp (the "
                            "published data), not 'tofu'")
    with pytest.raises(UnlearnkitError, match="task_options.chunk_tokens"):
        unlearn_model("ga", "no/such-model", task="muse", options={"chunk_tokens": 1})


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
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import get_task
    from unlearnkit.tasks.base import TaskData
    from unlearnkit.tasks.tofu_eval import evaluate

    model, tok = load_model(tiny_models.original)
    src = QASource(tiny_models.data_dir)
    data = TaskData("tofu", src, "", "", "", [], [], [], "")
    names = ["forget.es_exact", "forget.es_perturb", "retain.em", "retain.prob"]
    for conv in ("unlearnkit", "openunlearning"):
        cfg = EvalConfig(max_new_tokens=8, mia_gradnorm=False, metrics={"convention": conv})
        res = evaluate(model, tok, src, cfg)
        probes = get_task("tofu").probe(model, tok, data, names, cfg, None)
        assert probes == pytest.approx({n: res.value(n) for n in names}, abs=1e-12)
