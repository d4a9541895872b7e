"""Evaluate a language model on the fictitious-facts benchmark (docs/metrics.md).

The plan: for each evaluation role (forget, retain, holdout, real_authors, world_facts) the
(question, answer) pairs of every *variant* the metrics need go through ONE batched
teacher-forced pass (sorted by length, so batches stay full); one batched greedy generation per
role for ROUGE-L. Passes and generations are cached on disk per
(model fingerprint, eval set, variant), so re-evaluating a model costs nothing and a reference
model is evaluated once for all the methods compared against it.

Variants:
  ``qa``    question → answer            ES-exact, EM, probability, MIA scores
  ``pqa``   paraphrased question → answer ES-perturb
  ``qpa``   question → paraphrased answer truth ratio (numerator), paraphrased probability
  ``qpert`` question → each perturbed answer  truth ratio (denominator), normalised probability
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from unlearnkit import metrics as M
from unlearnkit.config import StrictModel
from unlearnkit.data.prompts import prompt_signature, tokenizer_hash
from unlearnkit.data.tofu import HOLDOUT_OF, QASource
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.generate import generate_answers
from unlearnkit.engine.passes import TokenStats, model_context, teacher_forced_pass
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import canonical_json, discard, home, lock_path, locked, read_checked, write_checked

ENGINE_VERSION = 3  # bump when pass or generation semantics or cache formats change (invalidates caches)

Role = Literal["forget", "retain", "holdout", "ra", "wf"]
ROLE_TITLES = {"forget": "forget", "retain": "retain", "holdout": "holdout", "ra": "real_authors", "wf": "world_facts"}


class MetricsConfig(StrictModel):
    """How metrics are defined where published implementations differ (docs/metrics.md)."""

    convention: Literal["unlearnkit", "openunlearning"] = Field(
        "unlearnkit", description="unlearnkit: our exact definitions; openunlearning: ES/EM/Min-K/Min-K++ without the "
        "EOS position and ES = 1/n when the last token is wrong, as OpenUnlearning computes them")


class EvalConfig(StrictModel):
    forget: str = Field("forget10", description="the forget split evaluated (the task's names; TOFU: forget01, "
                        "forget05, forget10)")
    batch_size: int = Field(64, ge=1, description="sequences per teacher-forced batch")
    generation_batch_size: int = Field(64, ge=1)
    max_new_tokens: int = Field(200, ge=1, description="greedy generation length cap for ROUGE-L (TOFU: 200)")
    min_k: float = Field(0.4, gt=0, le=1, description="fraction k of Min-K% / Min-K%++")
    truncate: bool = Field(False, description="cut answers that do not fit the model's context (else an error)")
    cache: bool = True
    mia_gradnorm: bool = Field(True, description="the GradNorm MIA (one backward pass per member and non-member)")
    gradnorm_p: Literal[1, 2, "inf"] = Field(2, description="the p of GradNorm's ‖∇θ NLL‖_p")
    metrics: MetricsConfig = MetricsConfig()


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


def eval_signature(model, tokenizer, cfg: EvalConfig) -> dict:
    """Everything besides the weights and the records that decides a pass or a generation: the rendered
    prompt format and chat template, the tokenizer's content, the dtype, the context length, truncation
    and the generation settings. Part of every cache key, so none of them can go stale."""
    param = next(model.parameters(), None)
    return {"prompt": prompt_signature(tokenizer), "tokenizer": tokenizer_hash(tokenizer),
            "dtype": str(param.dtype) if param is not None else None, "context": model_context(model),
            "truncate": cfg.truncate, "generation": {"max_new_tokens": cfg.max_new_tokens, "greedy": True,
                                                     "batch_size": cfg.generation_batch_size}}


def records_hash(records: list[dict]) -> str:
    return hashlib.sha256(canonical_json(records).encode()).hexdigest()[:16]


def state_fingerprint(model) -> str:
    """Content hash of an in-memory model's tensors (for models not saved to disk)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class PassCache:
    """Teacher-forced passes and generations on disk, keyed by model and eval set.

    Every file carries a checksum (:func:`unlearnkit.io.write_checked`): a damaged or altered cache
    file is reported in one line, discarded and recomputed, never used. A lock per cache entry makes
    concurrent processes compute it once.
    """

    def __init__(self, model_id: str | None, enabled: bool = True, signature: dict | None = None) -> None:
        self.dir = home() / "cache" / "eval" / model_id if (model_id and enabled) else None
        self.signature = signature or {}

    def _key(self, *parts: Any) -> str:
        return hashlib.sha256(canonical_json([ENGINE_VERSION, self.signature, *parts]).encode()).hexdigest()[:20]

    def _cached(self, name: str, compute: Callable[[], Any], dump: Callable[[Any], bytes],
                parse: Callable[[bytes], Any]) -> Any:
        if self.dir is None:
            return compute()
        if dist.world_size() > 1:  # the main process reads and writes; every process computes its share
            return self._cached_by_main(name, compute, dump, parse)
        path = self.dir / name
        with locked(lock_path("eval", f"{self.dir.name}-{name}")):
            data = read_checked(path, "evaluation cache file")
            if data is not None:
                try:
                    return parse(data)
                except (ValueError, KeyError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
                    discard(path, "evaluation cache file", "it does not parse")
            out = compute()
            write_checked(path, dump(out))
            return out

    def _cached_by_main(self, name: str, compute: Callable[[], Any], dump: Callable[[Any], bytes],
                        parse: Callable[[bytes], Any]) -> Any:
        path = self.dir / name

        def read() -> Any:
            data = read_checked(path, "evaluation cache file")
            try:
                return None if data is None else parse(data)
            except (ValueError, KeyError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
                discard(path, "evaluation cache file", "it does not parse")
                return None

        out = dist.on_main(read)
        if out is None:
            out = compute()  # collective: each process its share, gathered
            dist.on_main(lambda: write_checked(path, dump(out)))
        return out

    def role_stats(self, rec_hash: str, variants: tuple[str, ...], records: list[dict],
                   run: Callable[[list[tuple[str, str]]], TokenStats]) -> dict[str, TokenStats]:
        """All variants of one eval set in ONE batched pass (cached), split back per variant."""
        sizes = [len(variant_pairs(records, v)) for v in variants]
        st = self._cached(f"pass-{self._key(rec_hash, variants)}.npz",
                          lambda: run([p for v in variants for p in variant_pairs(records, v)]),
                          TokenStats.to_bytes, TokenStats.from_bytes)
        if len(st) != sum(sizes):
            raise UnlearnkitError(f"cached pass for {self.dir} holds {len(st)} samples, expected {sum(sizes)}")
        out, s = {}, 0
        for v, n in zip(variants, sizes):
            out[v] = st.take(s, s + n)
            s += n
        return out

    def generations(self, rec_hash: str, max_new: int, compute: Callable[[], list[str]]) -> list[str]:
        def parse(b: bytes) -> list[str]:
            v = json.loads(b.decode("utf-8"))
            if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise ValueError("not a list of strings")
            return v

        return self._cached(f"gen-{self._key(rec_hash, max_new)}.json", compute,
                            lambda v: json.dumps(v).encode("utf-8"), parse)

    def stats(self, key: Any, compute: Callable[[], TokenStats]) -> TokenStats:
        """A cached teacher-forced pass over already tokenised items (raw text), keyed by ``key``."""
        return self._cached(f"pass-{self._key('encoded', key)}.npz", compute, TokenStats.to_bytes,
                            TokenStats.from_bytes)

    def texts(self, key: Any, compute: Callable[[], list[str]]) -> list[str]:
        """Cached generations keyed by ``key`` (a task's own generation settings and records)."""
        return self.generations(self._key("texts", key), -1, compute)

    def numbers(self, kind: str, key: Any, compute: Callable[[], list[float]]) -> list[float]:
        """A cached list of per-sample numbers (e.g. gradient norms) under ``kind-<key>.json``."""
        def parse(b: bytes) -> list[float]:
            v = json.loads(b.decode("utf-8"))
            if not (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)):
                raise ValueError("not a list of numbers")
            return [float(x) for x in v]

        return self._cached(f"{kind}-{self._key(kind, key)}.json", compute, lambda v: json.dumps(v).encode("utf-8"),
                            parse)


@dataclass
class EvalResult:
    """Per-sample values and aggregates of one model on one forget setting."""

    forget: str
    per_sample: dict[str, dict[str, list]] = field(default_factory=dict)  # role → metric → values
    aggregates: dict[str, M.Aggregate] = field(default_factory=dict)  # "role.metric" → Aggregate
    generations: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> float:
        return self.aggregates[key].value

    def get(self, key: str, default: float | None = None) -> float | None:
        a = self.aggregates.get(key)
        return a.value if a is not None else default

    def add(self, key: str, value: float, n: int, hib: bool | None) -> None:
        self.aggregates[key] = M.Aggregate(value=float(value), n=int(n), higher_is_better=hib, name=key)

    def to_json(self) -> dict:
        return {
            "forget": self.forget,
            "aggregates": {k: {"value": a.value, "n": a.n, "higher_is_better": a.higher_is_better}
                           for k, a in self.aggregates.items()},
            "notes": self.notes,
        }

    def per_sample_rows(self) -> list[dict]:
        rows = []
        for role, metrics in self.per_sample.items():
            n = len(next(iter(metrics.values()))) if metrics else 0
            for i in range(n):
                row = {"role": role, "index": i}
                row.update({k: v[i] for k, v in metrics.items()})
                if role in self.generations:
                    row["generation"] = self.generations[role][i]
                rows.append(row)
        return rows

    @classmethod
    def from_json(cls, agg: dict, rows: list[dict]) -> EvalResult:
        res = cls(forget=agg["forget"], notes=agg.get("notes", {}))
        for k, a in agg["aggregates"].items():
            res.add(k, a["value"], a["n"], a["higher_is_better"])
        for row in rows:
            role = row["role"]
            ps = res.per_sample.setdefault(role, {})
            for k, v in row.items():
                if k in ("role", "index"):
                    continue
                if k == "generation":
                    res.generations.setdefault(role, []).append(v)
                else:
                    ps.setdefault(k, []).append(v)
        return res


# ---------------------------------------------------------------------------------------------
# Aggregates from per-sample values: one evaluation, or every bootstrap resample at once

# The nine components of model utility (M.MU_COMPONENTS) → the aggregates they are
MU_PARTS: dict[str, str] = {
    "retain_prob": "retain.prob", "retain_rouge": "retain.rouge", "retain_truth_ratio": "retain.truth_ratio",
    "ra_prob": "ra.norm_prob", "ra_rouge": "ra.rouge", "ra_truth_ratio": "ra.truth_ratio",
    "wf_prob": "wf.norm_prob", "wf_rouge": "wf.rouge", "wf_truth_ratio": "wf.truth_ratio",
}


def sample_mean(values: Any) -> float | np.ndarray:
    """The mean over the samples (the last axis): a float, or one mean per bootstrap resample."""
    m = np.mean(np.asarray(values, dtype=np.float64), axis=-1)
    return float(m) if np.ndim(m) == 0 else m


def set_aggregate(key: str) -> tuple[str, str, Callable[[Any], Any]]:
    """(eval set, per-sample value, aggregate function) of the per-set aggregate ``key`` = "<set>.<metric>"."""
    role, name = key.split(".", 1)
    if name == "truth_ratio":
        return role, "truth_ratio", M.truth_ratio_forget if role == "forget" else M.truth_ratio_retain
    if name == "truth_ratio_true_better":
        return role, "truth_ratio", M.truth_ratio_retain
    return role, name, sample_mean


def aggregate_of(key: str, per_sample: dict[str, dict[str, Any]]) -> float | np.ndarray:
    """Aggregate ``key`` of per-sample values (set → metric → (samples,) or (resamples, samples)): the number
    the evaluation reports, or one replicate per bootstrap resample."""
    role, src, fn = set_aggregate(key)
    return fn(per_sample[role][src])


class SampleArrays:
    """The per-sample values of an :class:`EvalResult` as float arrays (converted once, on first use); a value
    that is missing, not numeric or NaN somewhere is absent (its aggregate gets no interval)."""

    def __init__(self, res: EvalResult) -> None:
        self.per_sample, self._arrays = res.per_sample, {}

    def array(self, role: str, name: str) -> np.ndarray | None:
        if (role, name) not in self._arrays:
            v = self.per_sample.get(role, {}).get(name)
            try:
                a = None if v is None else np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                a = None
            ok = a is not None and a.ndim == 1 and a.size > 0 and not np.isnan(a).any()
            self._arrays[(role, name)] = a if ok else None
        return self._arrays[(role, name)]

    def has(self, *pairs: tuple[str, str]) -> bool:
        return all(self.array(role, name) is not None for role, name in pairs)

    def sizes(self, pairs) -> dict[str, int]:
        return {role: int(self.array(role, name).size) for role, name in pairs}

    def resampled(self, idx, pairs) -> dict[str, dict[str, np.ndarray]]:
        """set → value → (resamples, n): the values at the resampled indices of their set."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for role, name in pairs:
            out.setdefault(role, {})[name] = self.array(role, name)[idx[role]]
        return out


def bootstrap_statistic(key: str, res: EvalResult, ref: EvalResult | None, members: str = "forget",
                        nonmembers: str = "holdout") -> tuple[dict[str, int], Callable] | None:
    """(eval-set sizes, statistic) recomputing aggregate ``key`` of ``res`` on resampled eval samples with the
    functions the evaluation uses (the statistic gets ``idx``: set → (resamples, n) indices; θ_r's per-sample
    values are resampled with the same indices: paired); None when ``key`` cannot be recomputed from the
    stored per-sample values (then it gets no interval)."""
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
    attack = "min_k" if key == "privleak" else key[len("mia.auc_"):] if key.startswith("mia.auc_") else None
    if attack is not None:
        pairs = [(members, f"mia_{attack}"), (nonmembers, f"mia_{attack}")]

        def auc(src: SampleArrays, idx) -> Any:
            r = src.resampled(idx, pairs)
            return M.mia_auc(r[members][f"mia_{attack}"], r[nonmembers][f"mia_{attack}"])

        if not ps.has(*pairs) or (key == "privleak" and not (rs is not None and rs.has(*pairs))):
            return None
        return ps.sizes(pairs), ((lambda idx: M.privleak(auc(ps, idx), auc(rs, idx))) if key == "privleak"
                                 else (lambda idx: auc(ps, idx)))
    if "." in key and ps.has(set_aggregate(key)[:2]):
        role, src, fn = set_aggregate(key)
        return ps.sizes([(role, src)]), lambda idx: fn(ps.resampled(idx, [(role, src)])[role][src])
    return None


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
        for variant, st in cache.role_stats(rh, VARIANTS[role], recs,
                                            lambda pairs: teacher_forced_pass(model, tokenizer, pairs, cfg.batch_size, cfg.truncate)).items():
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
    for role in ("forget", "retain"):
        _qa_metrics(res, role, records[role], stats, conv)
    for role in ("ra", "wf"):
        _utility_metrics(res, role, records[role], stats)
    _mia_metrics(res, records, stats, cfg, conv, grad)
    _composites(res, records)
    if conv.name != "unlearnkit":
        res.notes["convention"] = (f"metrics.convention={conv.name}: ES, EM, Min-K% and Min-K%++ without the EOS "
                                   "position; ES = 1/n when the last token is wrong (docs/metrics.md)")


def _qa_metrics(res: EvalResult, role: str, recs: list[dict], stats: dict, conv: M.Convention = M.Convention()) -> None:
    """ES, EM, probabilities, truth ratio and ROUGE on a forget or retain set."""
    hib = M.higher_is_better
    qa, pqa, qpa, qpert = (stats[(role, v)] for v in ("qa", "pqa", "qpa", "qpert"))
    n = len(recs)
    on_forget = role == "forget"
    pert_means = _group_means(qpert, [len(r["perturbed_answer"]) for r in recs])
    para_means = qpa.mean_logprob()
    ps = {
        "es_exact": [conv.es(qa.corrects(i)) for i in range(n)],
        "es_perturb": [conv.es(pqa.corrects(i)) for i in range(n)],
        "em": [conv.em(qa.corrects(i)) for i in range(n)],
        "prob": [M.probability(qa.logprobs(i)) for i in range(n)],
        "para_prob": [M.probability(qpa.logprobs(i)) for i in range(n)],
        "truth_ratio": [M.truth_ratio(para_means[i], pert_means[i]) for i in range(n)],
        "rouge": M.rouge_l_recall_batch(res.generations[role], [r["answer"] for r in recs]),
    }
    res.per_sample[role] = ps
    es_dir = not on_forget
    directions = {"es_exact": es_dir, "es_perturb": es_dir, "em": es_dir, "prob": hib("probability", on_forget),
                  "para_prob": hib("probability", on_forget), "rouge": hib("rouge_l_recall", on_forget),
                  "truth_ratio": True, **({"truth_ratio_true_better": False} if on_forget else {})}
    for name, direction in directions.items():
        res.add(f"{role}.{name}", aggregate_of(f"{role}.{name}", res.per_sample), n, direction)


def _utility_metrics(res: EvalResult, role: str, recs: list[dict], stats: dict) -> None:
    """Normalised probability, truth ratio and ROUGE on a utility set (real authors, world facts)."""
    qa, qpert = stats[(role, "qa")], stats[(role, "qpert")]
    n = len(recs)
    means = qa.mean_logprob()
    pert_means = _group_means(qpert, [len(r["perturbed_answer"]) for r in recs])
    ps = {
        "norm_prob": [M.normalized_probability(means[i], pert_means[i]) for i in range(n)],
        "truth_ratio": [M.truth_ratio(means[i], pert_means[i]) for i in range(n)],
        "rouge": M.rouge_l_recall_batch(res.generations[role], [r["answer"] for r in recs]),
    }
    res.per_sample[role] = ps
    for name in ("norm_prob", "truth_ratio", "rouge"):
        res.add(f"{role}.{name}", aggregate_of(f"{role}.{name}", res.per_sample), n, True)


MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "gradnorm")  # "reference" needs θ_r: compare_to_reference


def mia_scores(st: TokenStats, texts: list[str], k: float, conv: M.Convention = M.Convention(),
               grad: list[float] | None = None) -> dict[str, list[float]]:
    """Per-sample MIA scores of the items of a pass (``texts``: the scored text of each, for ZLib)."""
    n = len(texts)
    out = {"mia_loss": [M.mia_loss_score(st.logprobs(i)) for i in range(n)],
           "mia_zlib": [M.mia_zlib_score(st.logprobs(i), texts[i]) for i in range(n)],
           "mia_min_k": [conv.min_k(st.logprobs(i), k) for i in range(n)],
           "mia_min_k_plus_plus": [conv.min_k_plus_plus(st.zs(i), k) for i in range(n)]}
    if grad is not None:
        out["mia_gradnorm"] = [M.mia_gradnorm_score(g) for g in grad]
    return out


def add_mia_aucs(res: EvalResult, members: str = "forget", nonmembers: str = "holdout") -> None:
    """``mia.auc_<attack>`` for every attack scored on both roles (members labelled 1)."""
    n_mia = len(res.per_sample[members]["mia_loss"]) + len(res.per_sample[nonmembers]["mia_loss"])
    for attack in MIA_ATTACKS:
        if f"mia_{attack}" in res.per_sample[members]:
            auc = M.mia_auc(res.per_sample[members][f"mia_{attack}"], res.per_sample[nonmembers][f"mia_{attack}"])
            res.add(f"mia.auc_{attack}", auc, n_mia, None)
    res.notes["mia"] = M.MIA_ORIENTATION


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


def add_privleak(res: EvalResult, ref: EvalResult, auc_key: str = "mia.auc_min_k", members: str = "forget",
                 nonmembers: str = "holdout") -> None:
    """PrivLeak (MUSE's convention) from the Min-K% AUC of ``res`` and of the reference θ_r."""
    n = len(res.per_sample[members]["mia_min_k"]) + len(res.per_sample[nonmembers]["mia_min_k"])
    res.add("privleak", M.privleak(res.value(auc_key), ref.value(auc_key)), n, None)
    res.notes["privleak"] = ("PrivLeak = (A'(model) − A'(reference)) / A'(reference) × 100 with A' = 1 − Min-K% AUC "
                             "(MUSE's convention); ≈0 ideal, < 0 under-unlearning, > 0 over-unlearning")


def add_reference_mia(res: EvalResult, ref: EvalResult, members: str = "forget", nonmembers: str = "holdout") -> None:
    """The Reference MIA: per sample, the model's LOSS score minus θ_r's (mean log-prob difference), and its AUC."""
    for role in (members, nonmembers):
        ps, rs = res.per_sample[role], ref.per_sample[role]
        if len(ps["mia_loss"]) != len(rs["mia_loss"]):
            raise UnlearnkitError(f"the reference was evaluated on {len(rs['mia_loss'])} {role} samples, the model on "
                                  f"{len(ps['mia_loss'])}: evaluate both on the same data")
        ps["mia_reference"] = [M.mia_reference_score(a, b) for a, b in zip(ps["mia_loss"], rs["mia_loss"])]
    n = len(res.per_sample[members]["mia_reference"]) + len(res.per_sample[nonmembers]["mia_reference"])
    res.add("mia.auc_reference", M.mia_auc(res.per_sample[members]["mia_reference"],
                                           res.per_sample[nonmembers]["mia_reference"]), n, None)
