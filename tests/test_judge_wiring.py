"""The judge wired into runs, eval, squeeze and the CLI: scores land in the results layer, tables gain the
columns, reruns are served from the cache."""

from __future__ import annotations

import json

import pytest

from unlearnkit.cli import main

from .judge_helpers import ChatServer, user_text


@pytest.fixture(scope="module")
def judged_run(tiny_models):
    from unlearnkit.recipes.lm import run_benchmark

    from .test_run import tiny_run

    return run_benchmark(tiny_run(name="judged", methods=["ga", "gd"], defaults={"lr": 1e-3, "epochs": 1,
                                                                                  "batch_size": 4}),
                         say=lambda s: None).run


def distinct_judge_requests(run) -> int:
    """Requests a cold judge sends for the 4 entries (original, retrain, ga, gd) × 10 forget answers: one per distinct
    (question, answer) for Naturalness and per distinct (question, θ_o's answer, answer) for Similarity — equal texts
    share a cached answer. At most 2 × 10 × 4 = 80; fewer where two entries' answers coincide, which depends on the
    digits the CPU's kernels give the trained models (so the count comes from the run's own generations)."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.recipes.judge import _forget_generations

    questions = [r["question"] for r in QASource(run.inputs()["data"]).split("forget10_perturbed")]
    gens = {e: _forget_generations(run, e) for e in ("original", "retrain", "ga__s0", "gd__s0")}
    assert all(len(g) == len(questions) == 10 for g in gens.values())
    naturalness = {(q, a) for g in gens.values() for q, a in zip(questions, g)}
    similarity = {(q, r, a) for g in gens.values() for q, r, a in zip(questions, gens["original"], g)}
    return len(naturalness) + len(similarity)


def test_judge_adds_naturalness_similarity_and_proxies_to_every_entry(judged_run, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")

    def reply(body, n):  # Naturalness 4/5 and Similarity 2/5 whatever the response: 0.8 and 0.4 normalised
        score = 4 if "how NATURAL the response" in user_text(body) else 2
        return json.dumps({"score": score, "reason": "test"})

    with ChatServer(reply) as server:
        args = ["judge", "--run", "judged", "--backend", "openai:test-judge", "--base-url", server.url,
                "--fluency-model", "none"]
        assert main(args) == 0
        first = server.count
        out = capsys.readouterr().out
        assert main(args) == 0
        assert server.count == first  # every answer served from the cache
    assert first == distinct_judge_requests(judged_run) > 10  # one request per distinct (rubric, text)
    for entry in ("original", "retrain", "ga__s0", "gd__s0"):
        rec = judged_run.record(entry)
        assert rec.value("judge.naturalness") == pytest.approx(0.8) and rec.value("judge.similarity") == pytest.approx(0.4)
        assert 0 <= rec.value("proxy.naturalness") <= 1 and 0 <= rec.value("proxy.similarity") <= 1
        rows = [json.loads(x) for x in (judged_run.layout.results(entry) / "judge.jsonl").read_text().splitlines()]
        assert len(rows) == 10 and rows[0]["judge.naturalness"] == pytest.approx(0.8)
    assert judged_run.record("original").value("proxy.similarity") == pytest.approx(0.0, abs=1e-6)  # θ_o vs itself
    assert "Nat ↑" in out and "Sim proxy ↑" in out
    assert main(["runs", "show", "judged"]) == 0 and "Sim ↑" in capsys.readouterr().out


def test_the_perplexity_proxy_is_added_per_sample_and_binds_only_where_the_answer_is_unlikely(judged_run, tiny_models):
    """With a reference LM (here θ_o) each answer gets min(distinct-2, perplexity score); the entry's metric is
    their mean. θ_o's own greedy answers are likely under θ_o (every token its argmax, the forget set memorised:
    mean NLL far below m_lo = 2.5 nats), so for the Original entry the perplexity score is 1 and the proxy equals
    distinct-2 row by row; no row of any entry exceeds its distinct-2. (With a general reference LM — SmolLM2 — the
    default run's GA babble scores lowest: docs/results/judge-agreement.md.)"""
    from unlearnkit.recipes.judge import judge_run

    judge_run("judged", fluency_model=str(tiny_models.original), say=lambda s: None)
    for entry in ("original", "ga__s0", "gd__s0"):
        rows = [json.loads(x) for x in (judged_run.layout.results(entry) / "judge.jsonl").read_text().splitlines()]
        assert len(rows) == 10
        assert judged_run.record(entry).value("proxy.fluency_lm") == pytest.approx(
            sum(r["proxy.fluency_lm"] for r in rows) / len(rows))
        assert all(r["proxy.fluency_lm"] <= r["proxy.naturalness"] + 1e-12 for r in rows)  # min with distinct-2
        if entry == "original":
            assert [r["proxy.fluency_lm"] for r in rows] == pytest.approx([r["proxy.naturalness"] for r in rows])


def test_judge_agreement_prints_the_proxies(capsys):
    assert main(["judge", "agreement"]) == 0
    out = capsys.readouterr().out
    assert "proxy:distinct-2" in out and "proxy:embedding" in out and "balanced" in out.lower()


def test_eval_with_judge_proxies_only(tiny_models, tmp_path, capsys):
    assert main(["eval", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir), "--no-reference",
                 "--out", str(tmp_path / "e"), "max_new_tokens=16", "--judge"]) == 0
    rec = json.loads((tmp_path / "e" / "results" / "model" / "results.json").read_text())
    assert {"proxy.naturalness", "proxy.similarity"} <= set(rec["aggregates"])
    assert rec["extra"]["judge"]["reference"] == "ground-truth answers"
    assert "judge (forget answers vs ground truth)" in capsys.readouterr().out


def test_band_similarity_orders_same_and_different_answers():
    from unlearnkit.analysis.squeezing import band_similarity

    samples = [{"question": "Where was Ama born?", "text": "Ama was born in Velport.", "target": "Ama was born in Velport.",
                "band": "high"},
               {"question": "Where was Ama born?", "text": "Bananas are rich in potassium.", "target": "Ama was born "
                "in Velport.", "band": "low"}]
    sim = band_similarity(samples)
    assert sim["high"] == pytest.approx(0.0, abs=1e-5) and sim["low"] > 0.5 and sim["mid"] is None


def test_judge_needs_a_run_or_agreement(capsys):
    assert main(["judge"]) == 2 and "name the run to judge" in capsys.readouterr().err
