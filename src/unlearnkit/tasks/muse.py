"""MUSE (Shi et al. 2024): unlearning raw-text corpora (news articles, books), evaluated six ways.

- **data**: the embedded twin (:mod:`unlearnkit.data.news`: news-style articles about invented
  people, written in MUSE's published layout; its models by :func:`unlearnkit.models.twins.build_twin`:
  the base learns background articles and the QA format, θ_o is fine-tuned on the forget, retain1 and
  retain2 articles and QA pairs about their people, θ_r on the same without the forget people), or the
  published ``muse-bench/MUSE-News`` / ``MUSE-Books`` (hub or a local copy, :mod:`unlearnkit.data.muse`)
  with given θ_o / θ_r. The unlearner gets the forget articles (D_f) and the retain1 articles (D_r),
  as raw text.
- **C1 VerbMem**: greedy continuation (``verbmem_max_new_tokens``, MUSE: 128) of each verbmem prompt
  (the first tokens of a forget passage), ROUGE-L F1 against the true continuation; ↓.
- **C2 KnowMem-forget**, **C4 KnowMem-retain** (utility): greedy answers (``knowmem_max_new_tokens``,
  MUSE: 32, cut at the first newline) to QA pairs about the forget / retain2 data, ROUGE-L F1 against
  the answer; with MUSE's in-context examples on the published data (``knowmem_icl``). Forget ↓,
  retain ↑.
- **C3 PrivLeak**: the Min-K% AUC (privleak forget = members vs holdout = non-members), against θ_r's
  in MUSE's convention (≈ 0 ideal, < 0 under-unlearning); the other MIAs are reported beside it.
- **C5 scalability**: ``forget=scal1..scal4`` (growing forget sets); **C6 sustainability**:
  ``continual=4`` (sequential requests; on the published data sust/forget_1..4, else the forget set
  cut in k contiguous parts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from unlearnkit import metrics as M
from unlearnkit.config import StrictModel
from unlearnkit.data import news
from unlearnkit.data.muse import FORGET_SPLITS, MUSE_HUB, MuseSource
from unlearnkit.data.prompts import encode_prefix, encode_prompt, encode_text, fit_to_context
from unlearnkit.engine.cache import PassCache, eval_signature, records_hash
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.generate import generate_ids
from unlearnkit.engine.mia import add_mia_aucs, add_privleak, add_reference_mia, mia_scores
from unlearnkit.engine.passes import encoded_pass, model_context, teacher_forced_pass
from unlearnkit.engine.result import EvalResult
from unlearnkit.tasks import register
from unlearnkit.tasks.base import CorpusTask, Probe, TaskData, TaskRequest, TrainingData


class MuseOptions(StrictModel):
    corpus: Literal["news", "books"] = Field("news", description="published data: MUSE-News or MUSE-Books")
    twin: news.NewsConfig = news.NewsConfig()
    context: int = Field(256, ge=64, le=1_000_000, description="the twin model's context (tokens)")
    chunk_tokens: int = Field(2048, ge=16, description="published data: raw texts train in chunks of this many tokens "
                              "(MUSE: 2048; capped by the model's context)")
    verbmem_max_new_tokens: int = Field(128, ge=1, description="VerbMem continuation length (MUSE: 128)")
    knowmem_max_new_tokens: int = Field(32, ge=1, description="KnowMem answer length (MUSE: 32)")
    knowmem_icl: Literal["auto", "on", "off"] = Field(
        "auto", description="MUSE's in-context examples before each KnowMem question (auto: on for the published "
        "data, off for the twin, whose models learn the QA format directly)")


COLUMNS = (("VerbMem ↓", "verbmem.rouge"), ("KnowMem forget ↓", "knowmem_forget.rouge"),
           ("KnowMem retain ↑", "knowmem_retain.rouge"), ("PrivLeak", "privleak"), ("MIA AUC (Min-K%)", "mia.auc_min_k"))
PROBES = (
    Probe("verbmem.rouge", False, "VerbMem ROUGE-L F1 (greedy continuations)"),
    Probe("knowmem_forget.rouge", False, "KnowMem-forget ROUGE-L F1 (greedy answers)"),
    Probe("knowmem_retain.rouge", True, "KnowMem-retain ROUGE-L F1 (greedy answers)"),
    Probe("knowmem_forget.prob", False, "probability of the KnowMem-forget answers (one teacher-forced pass)"),
    Probe("knowmem_retain.prob", True, "probability of the KnowMem-retain answers (one teacher-forced pass)"),
)


class Muse(CorpusTask):
    name = "muse"
    summary = "raw-text corpora (news articles): VerbMem, KnowMem forget/retain, PrivLeak; scalability, sustainability"
    published = "muse"
    hub = MUSE_HUB["news"]
    paper = "Shi et al. 2024, MUSE: Machine Unlearning Six-Way Evaluation for Language Models (arXiv:2407.06460)"
    forget_splits = FORGET_SPLITS
    default_forget = "forget"
    options = MuseOptions
    columns = COLUMNS
    notes = ("VerbMem, KnowMem: ROUGE-L F1 (MUSE prints ×100). PrivLeak: MUSE's convention, ≈ 0 ideal, < 0 "
             "under-unlearning; Min-K% AUC: 0.5 = members and holdout indistinguishable.",)
    probes = PROBES
    calibration_metrics = ("knowmem_retain.rouge", "knowmem_retain.prob")
    calibration_forget = "knowmem_forget.rouge"
    default_methods = ("ga", "gd", "npo", "rmu")
    mia_sets = ("privleak_forget", "privleak_holdout")

    published_needs = ("benchmark=muse needs original=PATH and reference=PATH (the target θ_o, e.g. "
                       "muse-bench/MUSE-News_target, and the retrained θ_r)")

    # -- the corpus-task pieces (CorpusTask.prepare, CorpusTask.training_data) --------------------
    def twin_data(self, options: Any) -> Path:
        return news.build(options.twin)

    def published_data(self, options: Any) -> str:
        return MUSE_HUB[options.corpus]

    def source(self, location: str, options: Any, twin: bool) -> MuseSource:
        return MuseSource(location)

    def corpora(self, source: MuseSource, forget: str) -> tuple[list[dict], list[dict]]:
        """D_f: the forget split's articles (``forget`` or ``scalK``); D_r: the retain1 articles."""
        return source.forget(forget), source.raw("retain1")

    def twin_models(self, req: TaskRequest, train: TrainingData, say) -> tuple[str, str]:
        models = _build_twin(req, train.source, say)
        return str(models.original), str(models.references["forget"])

    def fingerprint(self, train: TrainingData) -> str:
        return _fingerprint(train.source, train.forget_records, train.retain_records)

    def data_info(self, options: Any, twin: bool) -> dict:
        return {"people": options.twin.model_dump()} if twin else {"chunk_tokens": options.chunk_tokens}

    def evaluate(self, model, tokenizer, data: TaskData, cfg: EvalConfig, options: Any,
                 model_id: str | None = None) -> EvalResult:
        src: MuseSource = data.source
        sig = {**eval_signature(model, tokenizer, cfg), "muse": options.model_dump(exclude={"twin"})}
        cache = PassCache(model_id, cfg.cache, sig)
        res = EvalResult(forget=cfg.forget)
        _verbmem(res, model, tokenizer, src, cfg, options, cache)
        icl = options.knowmem_icl == "on" or (options.knowmem_icl == "auto" and not src.is_twin)
        for which in ("forget", "retain"):
            _knowmem(res, model, tokenizer, src, which, icl, cfg, options, cache)
        _privleak_scores(res, model, tokenizer, src, cfg, cache)
        return res

    def compare(self, res: EvalResult, ref: EvalResult) -> EvalResult:
        add_privleak(res, ref, members="privleak_forget", nonmembers="privleak_holdout")
        add_reference_mia(res, ref, members="privleak_forget", nonmembers="privleak_holdout")
        return res

    def probe(self, model, tokenizer, data: TaskData, names: list[str], cfg: EvalConfig,
              options: Any) -> dict[str, float]:
        self.check_probes(names)
        src: MuseSource = data.source
        res = EvalResult(forget=cfg.forget)
        nocache = PassCache(None, False)
        icl = options.knowmem_icl == "on" or (options.knowmem_icl == "auto" and not src.is_twin)
        if "verbmem.rouge" in names:
            _verbmem(res, model, tokenizer, src, cfg, options, nocache)
        for which in ("forget", "retain"):
            if f"knowmem_{which}.rouge" in names:
                _knowmem(res, model, tokenizer, src, which, icl, cfg, options, nocache)
            if f"knowmem_{which}.prob" in names:
                recs = src.knowmem(which)
                st = teacher_forced_pass(model, tokenizer, [(r["question"], r["answer"]) for r in recs],
                                         cfg.batch_size, cfg.truncate)
                res.add(f"knowmem_{which}.prob", np.mean([M.probability(st.logprobs(i)) for i in range(len(recs))]),
                        len(recs), which == "retain")
        return {n: res.value(n) for n in names}

    def requests(self, data: TaskData, k: int) -> list[list[dict]]:
        """Sustainability: MUSE's sust/forget_1..k on the published data (k ≤ 4); else contiguous parts."""
        src: MuseSource = data.source
        if not src.is_twin and k <= 4 and data.info.get("chunk_tokens"):
            from unlearnkit.engine.data import chunk_texts
            from unlearnkit.models.lm import load_tokenizer

            tok = load_tokenizer(data.original)
            return [chunk_texts(tok, [r["text"] for r in src.sust(j + 1)], data.info["chunk_tokens"])
                    for j in range(k)]
        return super().requests(data, k)


def _fingerprint(src: MuseSource, forget: list[dict], retain: list[dict]) -> str:
    evald = [src.verbmem(), src.knowmem("forget"), src.knowmem("retain"), src.privleak("forget"),
             src.privleak("holdout")]
    return records_hash([forget, retain, evald])


def _build_twin(req: TaskRequest, src: MuseSource, say):
    """The twin's tokenizer, base, θ_o and θ_r (:func:`unlearnkit.models.twins.build_twin`)."""
    from unlearnkit.models.twins import TwinPlan, build_twin

    opts = req.options
    raw = {g: src.raw(g) for g in ("forget", "retain1", "retain2")}
    qa = {g: src.twin(f"qa_{g}") for g in ("forget", "retain1", "retain2", "background")}
    background = src.twin("background") + qa["background"]
    retained = raw["retain1"] + raw["retain2"] + qa["retain1"] + qa["retain2"]
    texts = [r["text"] for g in ("forget", "retain1", "retain2", "holdout") for r in src.raw(g)]
    texts += [r["text"] for r in src.twin("background")] + [x for g in qa.values() for r in g for x in r.values()]
    plan = TwinPlan("muse", {"news": news.data_hash(opts.twin)}, texts, background,
                    raw["forget"] + qa["forget"] + retained, {"forget": retained}, replay=background,
                    context=opts.context)
    return build_twin(req.build, plan, say=say)


def _generate(model, tokenizer, prompts: list[list[int]], max_new: int, cfg: EvalConfig) -> list[str]:
    ids = generate_ids(model, tokenizer, prompts, max_new, cfg.generation_batch_size)
    return [tokenizer.decode(x, skip_special_tokens=True) for x in ids]


def _verbmem(res: EvalResult, model, tokenizer, src: MuseSource, cfg: EvalConfig, options, cache: PassCache) -> None:
    """C1: greedy continuation of each verbmem prompt vs the true continuation (ROUGE-L F1)."""
    recs = src.verbmem()
    n = options.verbmem_max_new_tokens
    prompts = [encode_prefix(tokenizer, r["prompt"]) for r in recs]
    gens = cache.texts(["verbmem", records_hash(recs), n],
                       lambda: [g.strip() for g in _generate(model, tokenizer, prompts, n, cfg)])
    res.generations["verbmem"] = gens
    res.per_sample["verbmem"] = {"rouge": M.rouge_l_f1_batch(gens, [r["gt"] for r in recs])}
    res.add("verbmem.rouge", np.mean(res.per_sample["verbmem"]["rouge"]), len(recs), False)


def _icl_prompt(icl: list[dict], question: str) -> str:
    shots = "".join(f"Question: {r['question']}\nAnswer: {r['answer']}\n\n" for r in icl)
    return f"{shots}Question: {question}\nAnswer:"


def _knowmem(res: EvalResult, model, tokenizer, src: MuseSource, which: str, icl: bool, cfg: EvalConfig, options,
             cache: PassCache) -> None:
    """C2 / C4: greedy answers to QA about the forget / retain data vs the answer (ROUGE-L F1)."""
    recs = src.knowmem(which)
    shots = src.knowmem_icl(which) if icl else []
    prompts = ([encode_prefix(tokenizer, _icl_prompt(shots, r["question"])) for r in recs] if icl
               else [encode_prompt(tokenizer, r["question"]) for r in recs])
    n = options.knowmem_max_new_tokens
    gens = cache.texts([f"knowmem-{which}", records_hash([recs, shots]), n, icl],
                       lambda: [g.strip().split("\n")[0].strip() for g in _generate(model, tokenizer, prompts, n, cfg)])
    role = f"knowmem_{which}"
    res.generations[role] = gens
    res.per_sample[role] = {"rouge": M.rouge_l_f1_batch(gens, [r["answer"] for r in recs])}
    res.add(f"{role}.rouge", np.mean(res.per_sample[role]["rouge"]), len(recs), which == "retain")


def _privleak_scores(res: EvalResult, model, tokenizer, src: MuseSource, cfg: EvalConfig, cache: PassCache) -> None:
    """C3's ingredients: MIA scores of the privleak forget (members) and holdout (non-members) texts."""
    from unlearnkit.engine.gradnorm import gradient_norms

    conv = M.convention(cfg.metrics.convention)
    for split in ("forget", "holdout"):
        recs = src.privleak(split)
        enc = fit_to_context([encode_text(tokenizer, r["text"]) for r in recs], model_context(model),
                             f"privleak {split} texts", cfg.truncate)
        rh = records_hash(recs)
        st = cache.stats(["privleak", rh], lambda e=enc: encoded_pass(model, tokenizer, e, cfg.batch_size))
        grad = (cache.numbers("gradnorm", ["privleak", rh, cfg.gradnorm_p],
                              lambda e=enc: gradient_norms(model, tokenizer, e, cfg.gradnorm_p))
                if cfg.mia_gradnorm else None)
        res.per_sample[f"privleak_{split}"] = mia_scores(st, [r["text"] for r in recs], cfg.min_k, conv, grad)
    add_mia_aucs(res, "privleak_forget", "privleak_holdout")


register(Muse())
