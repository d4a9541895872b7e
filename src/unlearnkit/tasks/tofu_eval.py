"""TOFU's evaluation of a language model on the fictitious-facts benchmark (docs/metrics.md).

The plan: for each evaluation role (forget, retain, holdout, real_authors, world_facts) the
(question, answer) pairs of every *variant* the metrics need go through ONE batched
teacher-forced pass (sorted by length, so batches stay full); one batched greedy generation per
role for ROUGE-L. Passes and generations are cached on disk per
(model fingerprint, eval set, variant) (:class:`~unlearnkit.engine.cache.PassCache`), so re-evaluating a
model costs nothing and a reference model is evaluated once for all the methods compared against it.
The per-set metrics are the registered ones of each role (:mod:`unlearnkit.tasks.tofu_metrics`).

Variants:
  ``qa``    question → answer            ES-exact, EM, probability, MIA scores
  ``pqa``   paraphrased question → answer ES-perturb
  ``qpa``   question → paraphrased answer truth ratio (numerator), paraphrased probability
  ``qpert`` question → each perturbed answer  truth ratio (denominator), normalised probability
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np

from unlearnkit import metrics as M
from unlearnkit.data.tofu import HOLDOUT_OF, QASource
from unlearnkit.engine.cache import PassCache, eval_signature, records_hash
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.generate import generate_answers
from unlearnkit.engine.mia import add_mia_aucs, add_privleak, add_reference_mia, mia_scores
from unlearnkit.engine.passes import TokenStats, teacher_forced_pass
from unlearnkit.engine.result import EvalResult, SampleArrays, aggregate_of, bootstrap_statistic, set_aggregate
from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.registry import LazyInputs, metrics_on
from unlearnkit.tasks import tofu_metrics  # noqa: F401  (registers TOFU's per-set metrics)

Role = Literal["forget", "retain", "holdout", "ra", "wf"]
ROLE_TITLES = {"forget": "forget", "retain": "retain", "holdout": "holdout", "ra": "real_authors", "wf": "world_facts"}


def eval_sets(forget: str) -> dict[Role, str]:
    return {
        "forget": f"{forget}_perturbed",
        "retain": "retain_perturbed",
        "holdout": HOLDOUT_OF[forget],
        "ra": "real_authors_perturbed",
        "wf": "world_facts_perturbed",
    }


# Which variants each role needs, and whether it is generated for ROUGE.
VARIANTS: dict[Role, tuple[str, ...]] = {
    "forget": ("qa", "pqa", "qpa", "qpert"),
    "retain": ("qa", "pqa", "qpa", "qpert"),
    "holdout": ("qa",),
    "ra": ("qa", "qpert"),
    "wf": ("qa", "qpert"),
}
GENERATE: tuple[Role, ...] = ("forget", "retain", "ra", "wf")
SET_FIELDS: dict[Role, tuple[str, ...]] = {
    "forget": ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer"),
    "retain": ("question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer"),
    "holdout": ("question", "answer"),
    "ra": ("question", "answer", "perturbed_answer"),
    "wf": ("question", "answer", "perturbed_answer"),
}

# The nine components of model utility (M.MU_COMPONENTS) → the aggregates they are
MU_PARTS: dict[str, str] = {
    "retain_prob": "retain.prob", "retain_rouge": "retain.rouge", "retain_truth_ratio": "retain.truth_ratio",
    "ra_prob": "ra.norm_prob", "ra_rouge": "ra.rouge", "ra_truth_ratio": "ra.truth_ratio",
    "wf_prob": "wf.norm_prob", "wf_rouge": "wf.rouge", "wf_truth_ratio": "wf.truth_ratio",
}


def variant_pairs(records: list[dict], variant: str) -> list[tuple[str, str]]:
    if variant == "qa":
        return [(r["question"], r["answer"]) for r in records]
    if variant == "pqa":
        return [(r["paraphrased_question"], r["answer"]) for r in records]
    if variant == "qpa":
        return [(r["question"], r["paraphrased_answer"]) for r in records]
    if variant == "qpert":
        return [(r["question"], w) for r in records for w in r["perturbed_answer"]]
    raise ValueError(variant)


def _group_means(stats: TokenStats, sizes: list[int]) -> list[np.ndarray]:
    means = stats.mean_logprob()
    out, s = [], 0
    for g in sizes:
        out.append(means[s : s + g])
        s += g
    return out


def evaluate(model, tokenizer, source: QASource, cfg: EvalConfig | None = None, model_id: str | None = None,
             progress: Callable[[str], None] | None = None) -> EvalResult:
    """Run every pass the metrics need (cached) and compute per-sample values and aggregates.

    FQ, PrivLeak and the Reference MIA need the reference model's result: add them with
    :func:`compare_to_reference`.
    """
    cfg = cfg or EvalConfig()
    if cfg.forget not in HOLDOUT_OF:
        raise UnlearnkitError(f"unknown forget split {cfg.forget!r} for the TOFU layout: use one of "
                              f"{', '.join(HOLDOUT_OF)}")
    cache = PassCache(model_id, cfg.cache, eval_signature(model, tokenizer, cfg))
    res = EvalResult(forget=cfg.forget)
    stats: dict[tuple[str, str], TokenStats] = {}
    records: dict[str, list[dict]] = {}
    for role, split in eval_sets(cfg.forget).items():
        recs = source.split(split, fields=SET_FIELDS[role])
        records[role] = recs
        rh = records_hash(recs)
        if progress:
            progress(f"pass {role}")
        pairs = {v: variant_pairs(recs, v) for v in VARIANTS[role]}
        for variant, st in cache.role_stats(rh, pairs, lambda p: teacher_forced_pass(
                model, tokenizer, p, cfg.batch_size, cfg.truncate)).items():
            stats[(role, variant)] = st
        if role in GENERATE:
            if progress:
                progress(f"generate {role}")
            qs = [r["question"] for r in recs]
            res.generations[role] = cache.generations(
                rh, cfg.max_new_tokens,
                lambda q=qs: generate_answers(model, tokenizer, q, cfg.max_new_tokens, cfg.generation_batch_size))
    grad = _gradnorms(model, tokenizer, records, cache, cfg) if cfg.mia_gradnorm else None
    _compute_metrics(res, records, stats, cfg, grad)
    return res


def _gradnorms(model, tokenizer, records: dict[str, list[dict]], cache: PassCache, cfg: EvalConfig) -> dict:
    """‖∇θ NLL‖_p per member (forget) and non-member (holdout) sample, cached like the passes."""
    from unlearnkit.data.prompts import encode_pair, fit_to_context
    from unlearnkit.engine.gradnorm import gradient_norms
    from unlearnkit.engine.passes import model_context

    out = {}
    for role in ("forget", "holdout"):
        recs = records[role]
        enc = lambda r=recs: fit_to_context([encode_pair(tokenizer, x["question"], x["answer"]) for x in r],  # noqa: E731
                                            model_context(model), "(question, answer) pairs", cfg.truncate)
        out[role] = cache.numbers("gradnorm", [records_hash(recs), cfg.gradnorm_p],
                                  lambda e=enc: gradient_norms(model, tokenizer, e(), cfg.gradnorm_p))
    return out


def _compute_metrics(res: EvalResult, records: dict[str, list[dict]], stats: dict, cfg: EvalConfig,
                     grad: dict | None = None) -> None:
    conv = M.convention(cfg.metrics.convention)
    for role, recs in records.items():
        if metrics_on(role):
            role_metrics(res, role, role_inputs(res, role, recs, stats, conv))
    _mia_metrics(res, records, stats, cfg, conv, grad)
    _composites(res, records)
    if conv.name != "unlearnkit":
        res.notes["convention"] = (f"metrics.convention={conv.name}: ES, EM, Min-K% and Min-K%++ without the EOS "
                                   "position; ES = 1/n when the last token is wrong (docs/metrics.md)")


def role_inputs(res: EvalResult, role: str, recs: list[dict], stats: dict, conv: M.Convention) -> LazyInputs:
    """The per-sample inputs the registered metrics of ``role`` read (:mod:`unlearnkit.tasks.tofu_metrics`),
    each computed on first use; a pass this role does not run is not offered."""
    have = {v for (r, v) in stats if r == role}
    thunks: dict[str, Callable[[], Any]] = {"n": lambda: len(recs), "conv": lambda: conv,
                                            "answers": lambda: [r["answer"] for r in recs]}
    thunks.update({v: (lambda v=v: stats[(role, v)]) for v in ("qa", "pqa", "qpa") if v in have})
    if "qa" in have:
        thunks["answer_means"] = lambda: stats[(role, "qa")].mean_logprob()
    if "qpa" in have:
        thunks["para_means"] = lambda: stats[(role, "qpa")].mean_logprob()
    if "qpert" in have:
        thunks["pert_means"] = lambda: _group_means(stats[(role, "qpert")], [len(r["perturbed_answer"]) for r in recs])
    if role in res.generations:
        thunks["generations"] = lambda: res.generations[role]
    return LazyInputs(role, thunks)


def role_metrics(res: EvalResult, role: str, inputs: LazyInputs) -> None:
    """The registered metrics of ``role``: per-sample values (those of the passes first, then those of the
    generations) and their aggregates ``<role>.<metric>`` in registration order."""
    ms = metrics_on(role)
    computed = [m for m in ms if m.fn is not None]
    ordered = [m for m in computed if "generations" not in m.inputs] + [m for m in computed if "generations" in m.inputs]
    res.per_sample[role] = {m.column: m.values(inputs) for m in ordered}
    n = inputs["n"]
    for m in ms:
        res.add(f"{role}.{m.column}", aggregate_of(f"{role}.{m.column}", res.per_sample), n, m.direction(role))


def _mia_metrics(res: EvalResult, records: dict[str, list[dict]], stats: dict, cfg: EvalConfig,
                 conv: M.Convention = M.Convention(), grad: dict | None = None) -> None:
    """Membership inference: members = forget set, non-members = holdout."""
    for role in ("forget", "holdout"):
        scores = mia_scores(stats[(role, "qa")], [r["answer"] for r in records[role]], cfg.min_k, conv,
                            grad[role] if grad is not None else None)
        res.per_sample.setdefault(role, {}).update(scores)
    add_mia_aucs(res)


def _composites(res: EvalResult, records: dict[str, list[dict]]) -> None:
    """Model utility (harmonic mean of 9) and Mem / Util / Agg."""
    mu_parts = {part: res.value(key) for part, key in MU_PARTS.items()}
    n_mu = len(records["retain"]) + len(records["ra"]) + len(records["wf"])
    res.add("mu", M.model_utility(mu_parts), n_mu, True)
    res.notes["mu"] = "MU = harmonic mean of " + ", ".join(f"{k}={v:.4f}" for k, v in mu_parts.items())
    mua = M.mem_util_agg(res.value("forget.es_exact"), res.value("forget.em"), res.value("forget.para_prob"),
                         res.value("forget.truth_ratio_true_better"), res.value("mu"))
    nf = len(records["forget"])
    res.add("mem", mua.mem, nf, True)
    res.add("util", mua.util, n_mu, True)
    res.add("agg", mua.agg, nf, True)
    res.notes["mem_util_agg"] = mua.composition


def compare_to_reference(res: EvalResult, ref: EvalResult | None) -> EvalResult:
    """Add forget quality (KS test of forget truth ratios) and PrivLeak (Min-K% AUC) vs θ_r."""
    if ref is None:
        raise UnlearnkitError(
            "forget quality and PrivLeak need the reference (retrained) model: pass --reference PATH "
            "(for TOFU e.g. open-unlearning/tofu_Llama-3.2-1B-Instruct_retain90), or --no-reference to skip them"
        )
    if ref.forget != res.forget:
        raise UnlearnkitError(f"reference was evaluated on {ref.forget}, the model on {res.forget}: use the same --forget")
    fq = M.forget_quality(res.per_sample["forget"]["truth_ratio"], ref.per_sample["forget"]["truth_ratio"])
    n = len(res.per_sample["forget"]["truth_ratio"])
    res.add("fq", fq.pvalue, n, True)
    res.add("fq_log_p", fq.log_pvalue, n, True)
    add_privleak(res, ref)
    add_reference_mia(res, ref)
    return res


def tofu_statistic(key: str, res: EvalResult, ref: EvalResult | None, members: str = "forget",
                   nonmembers: str = "holdout") -> tuple[dict[str, int], Callable] | None:
    """:func:`~unlearnkit.engine.result.bootstrap_statistic` plus TOFU's composites: MU (from its nine
    aggregates, each over its own set's resample) and FQ (θ_r's forget truth ratios resampled alike)."""
    ps, rs = SampleArrays(res), SampleArrays(ref) if ref is not None else None
    if key == "mu":
        pairs = [set_aggregate(k)[:2] for k in MU_PARTS.values()]
        return (ps.sizes(pairs), lambda idx: M.model_utility(
            {part: aggregate_of(k, ps.resampled(idx, pairs)) for part, k in MU_PARTS.items()})) if ps.has(*pairs) else None
    if key in ("fq", "fq_log_p"):
        pairs = [("forget", "truth_ratio")]
        if not (ps.has(*pairs) and rs is not None and rs.has(*pairs)):
            return None
        return ps.sizes(pairs), lambda idx: getattr(M.forget_quality(
            ps.resampled(idx, pairs)["forget"]["truth_ratio"], rs.resampled(idx, pairs)["forget"]["truth_ratio"]),
            "pvalue" if key == "fq" else "log_pvalue")
    return bootstrap_statistic(key, res, ref, members, nonmembers)
