"""TOFU (Maini et al. 2024): question–answer pairs about fictitious authors, in TOFU's layout.

- **data**: the embedded fictitious-facts generator (:mod:`unlearnkit.data.fictitious`, models by
  :func:`unlearnkit.models.build.build_models`) or the published ``locuslab/TOFU`` (a local copy or
  the hub) with given θ_o / θ_r (e.g. ``open-unlearning/tofu_Llama-3.2-1B-Instruct_full`` and
  ``…_retain90``);
- **eval sets**: ``forgetXX_perturbed`` (forget), ``retain_perturbed``, ``holdoutXX`` (MIA
  non-members), ``real_authors_perturbed`` and ``world_facts_perturbed`` (utility);
- **metrics** (docs/metrics.md; the evaluation :mod:`unlearnkit.tasks.tofu_eval`, the registered per-set
  metrics :mod:`unlearnkit.tasks.tofu_metrics`): ES-exact / ES-perturb, EM, probabilities, truth ratio,
  ROUGE-L, MU, Mem/Util/Agg, the MIAs; against θ_r: FQ, PrivLeak and the Reference MIA;
- **table**: the seed's columns (ES-exact and ES-perturb on retain and forget, MU, FQ, PrivLeak).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from unlearnkit import metrics as M
from unlearnkit.data.tofu import FORGET_SPLITS, HUB_NAME, RETAIN_OF, QASource
from unlearnkit.engine.cache import records_hash
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.passes import teacher_forced_pass
from unlearnkit.engine.result import EvalResult
from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.registry import metric
from unlearnkit.tasks import register
from unlearnkit.tasks.base import Probe, Task, TaskData, TaskRequest, TrainingData
from unlearnkit.tasks.tofu_eval import compare_to_reference, eval_sets, evaluate, tofu_statistic

COLUMNS = (
    ("ES-exact retain ↑", "retain.es_exact"), ("ES-exact unlearn ↓", "forget.es_exact"),
    ("ES-perturb retain ↑", "retain.es_perturb"), ("ES-perturb unlearn ↓", "forget.es_perturb"),
    ("MU ↑", "mu"), ("FQ (ln p) ↑", "fq_log_p"), ("PrivLeak", "privleak"),
)
_TF = {"es_exact": ("question", "es"), "es_perturb": ("paraphrased_question", "es"), "em": ("question", "em"),
       "prob": ("question", "prob")}
PROBES = (
    *(Probe(f"{role}.{m}", metric(m).direction(role), f"{m} on the {role} eval set (one teacher-forced pass)")
      for role in ("forget", "retain") for m in _TF),
    Probe("mu", True, "model utility (a full evaluation with generation: slow)"),
)
RELIABILITY_METRICS = ("es", "em", "prob", "rouge", "truth_ratio", "perplexity", "mia")


class Tofu(Task):
    name = "tofu"
    summary = "QA about fictitious authors (TOFU layout): ES, EM, truth ratio, ROUGE, MU, FQ, MIAs, PrivLeak"
    published = "tofu"
    hub = HUB_NAME
    paper = "Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs (arXiv:2401.06121)"
    forget_splits = FORGET_SPLITS
    default_forget = "forget10"
    columns = COLUMNS
    probes = PROBES
    calibration_metrics = ("retain.es_exact", "retain.es_perturb", "retain.em", "retain.prob", "mu")
    calibration_forget = "forget.es_exact"
    reliability_metrics = RELIABILITY_METRICS

    def prepare(self, req: TaskRequest, say) -> TaskData:
        """Build or reuse the embedded models (or take the given TOFU paths); load the forget/retain data."""
        self.check_benchmark(req.benchmark)
        if req.benchmark == "embedded":
            from unlearnkit.models.build import build_models

            ms = build_models(req.build.with_forget(req.forget), say=say)
            data, original, reference = str(ms.data_dir), str(ms.original), str(ms.reference_for(req.forget))
        else:
            if not (req.original and req.reference):
                raise UnlearnkitError("benchmark=tofu needs original=PATH and reference=PATH (θ_o and θ_r for the "
                                      "forget split)")
            data, original, reference = req.data or HUB_NAME, req.original, req.reference
        t = self.training_data(dataclasses.replace(req, data=data))
        evald = {role: t.source.split(split) for role, split in eval_sets(req.forget).items()}
        return TaskData("tofu", t.source, data, original, reference, t.forget_records, t.retain_records, t.refusals,
                        records_hash([t.forget_records, t.retain_records, evald, t.refusals]))

    def training_data(self, req: TaskRequest, say=None) -> TrainingData:
        """The forget split and its retain split (``RETAIN_OF``) of ``req.data``, else of the embedded set
        (generated offline, no models) or the published TOFU."""
        data = req.data
        if data is None:
            from unlearnkit.data import fictitious

            data = str(fictitious.build(req.build.data)) if req.benchmark == "embedded" else HUB_NAME
        src = QASource(data)
        return TrainingData(src, src.location, src.split(req.forget), src.split(RETAIN_OF[req.forget]), src.refusals)

    def evaluate(self, model, tokenizer, data: TaskData, cfg: EvalConfig, options: Any,
                 model_id: str | None = None) -> EvalResult:
        return evaluate(model, tokenizer, data.source, cfg, model_id=model_id)

    def compare(self, res: EvalResult, ref: EvalResult) -> EvalResult:
        return compare_to_reference(res, ref)

    def statistic(self, metric: str, res: EvalResult, ref: EvalResult | None):
        return tofu_statistic(metric, res, ref, *self.mia_sets)

    def probe(self, model, tokenizer, data: TaskData, names: list[str], cfg: EvalConfig,
              options: Any) -> dict[str, float]:
        return tofu_probe(model, tokenizer, data.source, self.check_probes(names), cfg)

    def requests(self, data: TaskData, k: int) -> list[list[dict]]:
        """Contiguous groups of whole subjects (:func:`unlearnkit.analysis.continual.forget_requests` rule)."""
        from unlearnkit.data.halves import subject_blocks, subject_names

        names = subject_names(data.source) if data.source.is_local else None
        blocks = subject_blocks(data.forget_records, names)
        if not 1 <= k <= len(blocks):
            raise UnlearnkitError(f"continual={k} needs at least {k} subjects in the forget split, which has "
                                  f"{len(blocks)}: use continual ≤ {len(blocks)} or a larger forget split")
        cuts = np.array_split(np.arange(len(blocks)), k)
        return [[data.forget_records[i] for b in c for i in blocks[b]] for c in cuts]

    def measure(self, model, tokenizer, records: list[dict], role: str, question: Callable[[int, dict], str],
                metrics: list[str], max_new_tokens: int, batch_size: int = 64) -> dict[str, float]:
        """The reliability study's measurement: mean of each metric over ``records`` with questions from
        ``question(i, record)`` (an intervention rewrites them)."""
        return reliability_measure(model, tokenizer, records, role, question, metrics, max_new_tokens, batch_size)


def _mean_of(st, kind: str, conv: M.Convention) -> float:
    n = len(st)
    if kind == "es":
        return float(np.mean([conv.es(st.corrects(i)) for i in range(n)]))
    if kind == "em":
        return float(np.mean([conv.em(st.corrects(i)) for i in range(n)]))
    return float(np.mean([M.probability(st.logprobs(i)) for i in range(n)]))


def tofu_probe(model, tokenizer, source, names: list[str], cfg: EvalConfig) -> dict[str, float]:
    """Teacher-forced probes of the current weights (``mu``: a full uncached evaluation)."""
    conv = M.convention(cfg.metrics.convention)
    out: dict[str, float] = {}
    splits = {"forget": f"{cfg.forget}_perturbed", "retain": "retain_perturbed"}
    for role, split in splits.items():
        wanted = [n.split(".", 1)[1] for n in names if n.startswith(role + ".")]
        if not wanted:
            continue
        recs = source.split(split)
        for qkey in sorted({_TF[m][0] for m in wanted}):
            st = teacher_forced_pass(model, tokenizer, [(r[qkey], r["answer"]) for r in recs], cfg.batch_size,
                                     cfg.truncate)
            out.update({f"{role}.{m}": _mean_of(st, _TF[m][1], conv) for m in wanted if _TF[m][0] == qkey})
    if "mu" in names:
        out["mu"] = evaluate(model, tokenizer, source, cfg.model_copy(update={"cache": False,
                                                                              "mia_gradnorm": False})).value("mu")
    return {n: out[n] for n in names}


def reliability_measure(model, tokenizer, records: list[dict], role: str, question: Callable[[int, dict], str],
                        metrics: list[str], max_new_tokens: int, batch_size: int = 64) -> dict[str, float]:
    """Mean of each reliability metric over ``records`` with questions from ``question(i, record)``."""
    from unlearnkit.engine.generate import generate_answers

    qs = [question(i, r) for i, r in enumerate(records)]
    pairs = [(q, r["answer"]) for q, r in zip(qs, records)]
    need_tr = "truth_ratio" in metrics
    if need_tr:
        pairs += [(q, r["paraphrased_answer"]) for q, r in zip(qs, records)]
        pairs += [(q, w) for q, r in zip(qs, records) for w in r["perturbed_answer"]]
    st = teacher_forced_pass(model, tokenizer, pairs, batch_size)
    n = len(records)
    per = {"es": lambda i: M.extraction_strength(st.corrects(i)), "em": lambda i: M.exact_memorization(st.corrects(i)),
           "prob": lambda i: M.probability(st.logprobs(i)), "perplexity": lambda i: math.exp(-st.logprobs(i).mean()),
           "mia": lambda i: M.mia_min_k_score(st.logprobs(i))}
    out: dict[str, float] = {m: float(np.mean([per[m](i) for i in range(n)])) for m in metrics if m in per}
    if need_tr:
        means = st.mean_logprob()
        para = means[n : 2 * n]
        s, trs = 2 * n, []
        for i, r in enumerate(records):
            k = len(r["perturbed_answer"])
            trs.append(M.truth_ratio(para[i], means[s : s + k]))
            s += k
        out["truth_ratio"] = M.truth_ratio_forget(trs) if role == "forget" else M.truth_ratio_retain(trs)
    if "rouge" in metrics:
        gens = generate_answers(model, tokenizer, qs, max_new_tokens)
        out["rouge"] = float(np.mean(M.rouge_l_recall_batch(gens, [r["answer"] for r in records])))
    return {m: out[m] for m in metrics}


register(Tofu())
