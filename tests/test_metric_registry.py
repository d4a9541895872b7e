"""The metric registry: a metric is its function plus one registration, and an evaluation computes it."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.data.tofu import QASource
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.registry import METRICS, LazyInputs, Metric, metric, metric_at, metrics_on, registered
from unlearnkit.registry import Registry
from unlearnkit.tasks import get_task
from unlearnkit.tasks.tofu_eval import evaluate


def answer_words(answers: list[str], n: int) -> list[float]:
    """A throw-away metric: the number of words of each gold answer."""
    assert len(answers) == n
    return [float(len(a.split())) for a in answers]


WORDS = Metric("answer_words", ("forget", "holdout"), False, answer_words, ("answers", "n"),
               summary="words of the gold answer (test only)")


def test_a_registered_metric_is_computed_aggregated_and_bootstrapped(tiny_models):
    from unlearnkit.models.lm import load_model, model_fingerprint

    src = QASource(tiny_models.data_dir)
    model, tok = load_model(tiny_models.original)
    cfg, mid = EvalConfig(max_new_tokens=8, mia_gradnorm=False), model_fingerprint(tiny_models.original)
    plain = evaluate(model, tok, src, cfg, model_id=mid)
    with registered(WORDS):
        res = evaluate(model, tok, src, cfg, model_id=mid)
        st = get_task("tofu").statistic("forget.answer_words", res, None)
    assert "answer_words" not in METRICS and metric_at("forget", "answer_words") is None  # unregistered again
    for role, split in (("forget", "forget10_perturbed"), ("holdout", "holdout10")):
        words = [float(len(r["answer"].split())) for r in src.split(split)]
        assert res.per_sample[role]["answer_words"] == words
        agg = res.aggregates[f"{role}.answer_words"]
        assert agg.value == pytest.approx(np.mean(words)) and agg.n == len(words) and agg.higher_is_better is False
    assert "forget.answer_words" not in plain.aggregates and "answer_words" not in plain.per_sample["forget"]
    assert {k: a.value for k, a in plain.aggregates.items()} == {
        k: a.value for k, a in res.aggregates.items() if not k.endswith(".answer_words")}  # nothing else moved
    sizes, stat = st  # its bootstrap interval: the aggregate over the resampled per-sample values
    n = sizes["forget"]
    idx = {"forget": np.stack([np.arange(n), np.zeros(n, dtype=int)])}
    words = np.asarray(res.per_sample["forget"]["answer_words"])
    assert stat(idx).tolist() == pytest.approx([words.mean(), words[0]])


def test_directions_and_aggregates_come_from_the_registry():
    assert [m.name for m in metrics_on("forget")] == [
        "es_exact", "es_perturb", "em", "prob", "para_prob", "rouge", "truth_ratio", "truth_ratio_true_better"]
    assert [m.column for m in metrics_on("ra")] == ["norm_prob", "truth_ratio", "rouge"]
    assert (metric("es_exact").direction("forget"), metric("es_exact").direction("retain")) == (False, True)
    assert (metric("truth_ratio").direction("forget"), metric("truth_ratio_true_better").direction("forget")) == (
        True, False)
    tr = [0.5, 2.0]  # forget: mean(min(tr, 1/tr)) = 0.5; retain-style: mean(max(0, 1 − tr)) = 0.25
    assert metric_at("forget", "truth_ratio").aggregator("forget")(tr) == pytest.approx(0.5)
    assert metric_at("forget", "truth_ratio_true_better").aggregator("forget")(tr) == pytest.approx(0.25)
    assert metric_at("wf", "truth_ratio").name == "utility_truth_ratio" and metric_at("holdout", "prob") is None


def test_an_unknown_metric_name_is_one_line_with_the_close_match():
    with pytest.raises(UnlearnkitError, match=r"unknown metric 'es_exactt'\. Did you mean es_exact") as e:
        metric("es_exactt")
    assert "\n" not in str(e.value)


def test_a_missing_input_or_a_clashing_registration_is_refused():
    inputs = LazyInputs("holdout", {"n": lambda: 2})
    with pytest.raises(UnlearnkitError, match="takes the input 'qpa', which eval set 'holdout' does not provide"):
        inputs["qpa"]
    with pytest.raises(ValueError, match="names its results 'prob' on a role metric 'prob' already does"):
        with registered(Metric("prob2", ("retain",), True, answer_words, ("answers", "n"), key="prob")):
            pass
    with pytest.raises(ValueError, match="exactly one of fn"):
        with registered(Metric("nothing", ("forget",), None)):
            pass
    assert "prob2" not in METRICS and "nothing" not in METRICS


def test_a_registry_entry_added_for_a_block_is_removed_even_on_error():
    reg: Registry[int] = Registry("thing")
    with pytest.raises(RuntimeError):
        with reg.added("one", 1):
            assert reg.get("one") == 1 and reg.in_order() == [1]
            raise RuntimeError
    assert "one" not in reg and len(reg) == 0
    with pytest.raises(UnlearnkitError, match="unknown thing 'two'"):
        reg.remove("two")
