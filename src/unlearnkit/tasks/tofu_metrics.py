"""TOFU's per-set metrics, registered in :data:`unlearnkit.metrics.registry.METRICS` (docs/metrics.md).

Each is a function of the per-sample inputs :func:`unlearnkit.tasks.tofu_eval.role_inputs` provides for an
eval set — ``n`` (samples), ``conv`` (the metric convention), the passes ``qa`` (question → answer), ``pqa``
(paraphrased question → answer), ``qpa`` (question → paraphrased answer), the per-sample mean log-probs
``answer_means``, ``para_means`` and ``pert_means`` (one array of the perturbed answers' per sample), the
greedy ``generations`` and the gold ``answers`` — plus one registration. The registration order is the
order of the aggregates in the results; per-sample columns list the pass-based metrics before those read
from the generations.
"""

from __future__ import annotations

from unlearnkit import metrics as M
from unlearnkit.metrics.registry import Metric, register_metric

QA_SETS = ("forget", "retain")  # ES, EM, probabilities, truth ratio of the paraphrased answer
UTILITY_SETS = ("ra", "wf")  # normalised probability, truth ratio of the answer
GENERATED_SETS = (*QA_SETS, *UTILITY_SETS)  # ROUGE-L of the greedy generations


def es_exact(qa, conv: M.Convention, n: int) -> list[float]:
    return [conv.es(qa.corrects(i)) for i in range(n)]


def es_perturb(pqa, conv: M.Convention, n: int) -> list[float]:
    return [conv.es(pqa.corrects(i)) for i in range(n)]


def em(qa, conv: M.Convention, n: int) -> list[float]:
    return [conv.em(qa.corrects(i)) for i in range(n)]


def prob(qa, n: int) -> list[float]:
    return [M.probability(qa.logprobs(i)) for i in range(n)]


def para_prob(qpa, n: int) -> list[float]:
    return [M.probability(qpa.logprobs(i)) for i in range(n)]


def norm_prob(answer_means, pert_means, n: int) -> list[float]:
    return [M.normalized_probability(answer_means[i], pert_means[i]) for i in range(n)]


def truth_ratio_of_answer(answer_means, pert_means, n: int) -> list[float]:
    return [M.truth_ratio(answer_means[i], pert_means[i]) for i in range(n)]


def truth_ratio_of_paraphrase(para_means, pert_means, n: int) -> list[float]:
    return [M.truth_ratio(para_means[i], pert_means[i]) for i in range(n)]


def rouge(generations: list[str], answers: list[str]) -> list[float]:
    return M.rouge_l_recall_batch(generations, answers)


_TR = {"aggregate": M.truth_ratio_retain, "forget_aggregate": M.truth_ratio_forget}
for _m in (
    Metric("es_exact", QA_SETS, True, es_exact, ("qa", "conv", "n"), reversed_on_forget=True,
           summary="extraction strength of the answer"),
    Metric("es_perturb", QA_SETS, True, es_perturb, ("pqa", "conv", "n"), reversed_on_forget=True,
           summary="extraction strength of the answer to the paraphrased question"),
    Metric("em", QA_SETS, True, em, ("qa", "conv", "n"), reversed_on_forget=True, summary="exact memorisation"),
    Metric("prob", QA_SETS, True, prob, ("qa", "n"), reversed_on_forget=True, summary="probability of the answer"),
    Metric("para_prob", QA_SETS, True, para_prob, ("qpa", "n"), reversed_on_forget=True,
           summary="probability of the paraphrased answer"),
    Metric("norm_prob", UTILITY_SETS, True, norm_prob, ("answer_means", "pert_means", "n"), reversed_on_forget=True,
           summary="probability of the answer normalised over it and the perturbed answers"),
    Metric("utility_truth_ratio", UTILITY_SETS, True, truth_ratio_of_answer, ("answer_means", "pert_means", "n"),
           key="truth_ratio", **_TR, summary="truth ratio of the answer against the perturbed answers"),
    Metric("rouge", GENERATED_SETS, True, rouge, ("generations", "answers"), reversed_on_forget=True,
           summary="ROUGE-L recall of the greedy generation against the answer"),
    Metric("truth_ratio", QA_SETS, True, truth_ratio_of_paraphrase, ("para_means", "pert_means", "n"), **_TR,
           summary="truth ratio of the paraphrased answer against the perturbed answers"),
    Metric("truth_ratio_true_better", ("forget",), True, of="truth_ratio", aggregate=M.truth_ratio_retain,
           reversed_on_forget=True, summary="truth_ratio_retain of the forget truth ratios (Mem/Util/Agg)"),
):
    register_metric(_m)
