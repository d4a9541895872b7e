"""WMDP (Li et al. 2024): remove hazardous knowledge, keep general knowledge — RMU's setting.

- **data**: the embedded twin (:mod:`unlearnkit.data.hazards`: an invented "hazardous" technical domain
  with a forget corpus and four-choice questions, and invented general knowledge with a retain corpus and
  questions standing for MMLU; models by :func:`unlearnkit.models.twins.build_twin`: the base learns the
  general corpus and questions, θ_o is the base fine-tuned on the hazard corpus and questions (with the
  base's data replayed), θ_r the same without the hazard data), or the published ``cais/wmdp`` questions,
  ``cais/wmdp-corpora`` corpora and ``cais/mmlu`` (hub or local copies, :mod:`unlearnkit.data.wmdp`) with
  given θ_o / θ_r. The unlearner gets the forget corpus (D_f) and the retain corpus (D_r) as raw text.
- **metrics**: accuracy on the domain's four-choice questions (↓; chance is 25 %) and on the
  MMLU-style utility questions (↑), scored by lm-evaluation-harness with local task files
  (:mod:`unlearnkit.tasks.lmeval`), per question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.data import hazards
from unlearnkit.data.wmdp import DOMAINS, WMDP_HUB, WmdpSource
from unlearnkit.engine.cache import PassCache, eval_signature, records_hash
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.result import EvalResult
from unlearnkit.tasks import register
from unlearnkit.tasks.base import CorpusTask, Probe, TaskData, TaskRequest, TrainingData


class WmdpOptions(StrictModel):
    domain: Literal["bio", "cyber", "chem"] = Field("bio", description="published data: the WMDP domain")
    corpora: str | None = Field(None, description="published data: the corpora (default: data= when it is a "
                                "directory, else cais/wmdp-corpora)")
    mmlu: str | None = Field(None, description="published data: the utility questions (default: data= when it is "
                             "a directory, else cais/mmlu)")
    mmlu_config: str = Field("all", description="the MMLU config (all, or one subject)")
    mmlu_limit: int | None = Field(None, ge=1, description="score only the first N utility questions")
    twin: hazards.HazardConfig = hazards.HazardConfig()
    context: int = Field(128, ge=64, description="the twin model's context (tokens)")
    chunk_tokens: int = Field(512, ge=16, description="published data: corpus texts train in chunks of this many "
                              "tokens (RMU: 512)")
    scorer: Literal["lm-eval", "native"] = Field(
        "lm-eval", description="lm-eval: lm-evaluation-harness scores the questions (as published numbers are "
        "scored); native: unlearnkit's own identical score (no lm-eval run)")
    lm_eval_batch_size: int = Field(32, ge=1)


COLUMNS = (("forget acc ↓", "forget_mc.acc"), ("utility acc ↑", "utility_mc.acc"))
PROBES = (Probe("forget_mc.acc", False, "accuracy on the hazard questions (native scorer)"),
          Probe("utility_mc.acc", True, "accuracy on the utility questions (native scorer)"))


class Wmdp(CorpusTask):
    name = "wmdp"
    summary = "hazardous-knowledge MC accuracy (↓ to chance) and MMLU-style utility (↑), scored with lm-eval"
    published = "wmdp"
    hub = WMDP_HUB
    paper = "Li et al. 2024, The WMDP Benchmark: Measuring and Reducing Malicious Use with Unlearning (arXiv:2403.03218)"
    forget_splits = ("forget",)
    default_forget = "forget"
    options = WmdpOptions
    columns = COLUMNS
    notes = ("Four-choice accuracy, zero-shot, scored by lm-evaluation-harness (task_options.scorer); chance = 0.25.",)
    probes = PROBES
    calibration_metrics = ("utility_mc.acc",)
    calibration_forget = "forget_mc.acc"
    default_methods = ("rmu", "ga", "gd", "npo")

    published_needs = ("benchmark=wmdp needs original=PATH and reference=PATH (θ_o, and θ_r for the Retrain row: "
                       "e.g. θ_o again when there is none)")

    # -- the corpus-task pieces (CorpusTask.prepare, CorpusTask.training_data) --------------------
    def twin_data(self, options: Any) -> Path:
        return hazards.build(options.twin)

    def published_data(self, options: Any) -> str:
        return WMDP_HUB

    def source(self, location: str, options: Any, twin: bool) -> WmdpSource:
        if twin:
            return WmdpSource(location, domain=hazards.DOMAIN)
        o = options
        return WmdpSource(location, o.corpora, o.mmlu, o.domain, o.mmlu_config, o.mmlu_limit)

    def corpora(self, source: WmdpSource, forget: str) -> tuple[list[dict], list[dict]]:
        return source.forget_corpus(), source.retain_corpus()

    def twin_models(self, req: TaskRequest, train: TrainingData, say) -> tuple[str, str]:
        models = _build_twin(req, train, say)
        return str(models.original), str(models.references["forget"])

    def fingerprint(self, train: TrainingData) -> str:
        src: WmdpSource = train.source
        return records_hash([train.forget_records, train.retain_records, src.questions(), src.utility()])

    def data_info(self, options: Any, twin: bool) -> dict:
        return {"domains": list(DOMAINS)} if twin else {}

    def evaluate(self, model, tokenizer, data: TaskData, cfg: EvalConfig, options: Any,
                 model_id: str | None = None) -> EvalResult:
        src: WmdpSource = data.source
        sets = {"forget_mc": src.questions(), "utility_mc": src.utility()}
        cache = PassCache(model_id, cfg.cache, {**eval_signature(model, tokenizer, cfg), "scorer": options.scorer})
        res = EvalResult(forget=cfg.forget)
        for role, recs in sets.items():
            acc = cache.numbers("mcacc", [role, records_hash(recs), options.scorer],
                                lambda r=role, q=recs: _score(model, tokenizer, {r: q}, options, cfg)[r])
            res.per_sample[role] = {"acc": acc}
            res.add(f"{role}.acc", np.mean(acc), len(acc), role == "utility_mc")
        res.notes["mc"] = (f"four-choice accuracy scored by {options.scorer} (lm-eval's WMDP/MMLU format, zero-shot, "
                           "acc); chance = 0.25")
        return res

    def probe(self, model, tokenizer, data: TaskData, names: list[str], cfg: EvalConfig,
              options: Any) -> dict[str, float]:
        from unlearnkit.tasks.lmeval import native_mc_accuracy

        self.check_probes(names)
        src: WmdpSource = data.source
        sets = {"forget_mc.acc": src.questions, "utility_mc.acc": src.utility}
        return {n: float(np.mean(native_mc_accuracy(model, tokenizer, sets[n](), cfg.batch_size))) for n in names}


def _score(model, tokenizer, sets: dict[str, list[dict]], options, cfg: EvalConfig) -> dict[str, list[float]]:
    from unlearnkit.tasks.lmeval import lm_eval_accuracy, native_mc_accuracy

    if options.scorer == "native":
        return {k: native_mc_accuracy(model, tokenizer, v, cfg.batch_size) for k, v in sets.items()}
    return lm_eval_accuracy(model, tokenizer, sets, options.lm_eval_batch_size)


def _build_twin(req: TaskRequest, train: TrainingData, say):
    """The twin's tokenizer, base, θ_o and θ_r (:func:`unlearnkit.models.twins.build_twin`)."""
    from unlearnkit.models.twins import TwinPlan, build_twin

    src: WmdpSource = train.source
    forget, retain = train.forget_records, train.retain_records
    hazard_q = [{"text": hazards.mc_text(q)} for q in src.questions()]
    general_q = [{"text": hazards.mc_text(q)} for q in src.utility()]
    texts = [r["text"] for r in forget + retain + hazard_q + general_q]
    base = retain + general_q
    plan = TwinPlan("wmdp", {"hazards": hazards.data_hash(req.options.twin)}, texts, base, forget + hazard_q,
                    {"forget": []}, replay=base, context=req.options.context)
    return build_twin(req.build, plan, say=say)


register(Wmdp())
