"""Squeezing-effect tracker (docs/analysis.md; seed: "LLM Unlearning with LLM Beliefs", after Ren et al. 2025).

Along an unlearning run, the log-probability under the current model θ_t of

- ``target``      the forget answer y (the thing being unlearned),
- ``paraphrase``  its paraphrased answer,
- ``high`` / ``mid`` / ``low``  responses sampled from θ_o for the forget prompts, grouped by
  their likelihood under θ_o into three equal-count bands (terciles of the per-token mean
  log-prob under θ_o, over all kept samples).

The squeezing effect: pushing the target's probability down with a softmax-based objective
moves mass to what θ_o already found likely — the high band rises (or falls least) while the
low band falls. Reported per group: the mean over its sequences of the summed answer log-prob
(``seq``) and of the per-token mean log-prob (``tok``); the plot shows their change since
step 0.

Sampling: ``n_samples`` answers per forget question from θ_o at temperature T (the full
softmax, no top-k/top-p), cut at EOS, with a fixed seed on a forked RNG (training is
unaffected). Samples that equal the target or the paraphrase (after whitespace/case
normalisation) are dropped and counted, as are duplicates within a question: a model that has
memorised its forget set reproduces the target verbatim most of the time, and those samples
are the target, not its neighbours. Decoded samples are re-tokenised for scoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from unlearnkit.engine.generate import sample_answers
from unlearnkit.engine.passes import teacher_forced_pass
from unlearnkit.errors import UnlearnkitError

GROUPS = ("target", "paraphrase", "high", "mid", "low")


def _norm(s: str) -> str:
    return " ".join(s.lower().split()).rstrip(".")


def likelihood_bands(scores: np.ndarray) -> list[str]:
    """Terciles of ``scores``: the top third ``high``, the middle ``mid``, the bottom ``low`` (by rank)."""
    order = np.argsort(-scores, kind="stable")
    bands = [""] * len(scores)
    for rank, i in enumerate(order):
        bands[i] = ("high", "mid", "low")[min(2, rank * 3 // max(1, len(scores)))]
    return bands


@dataclass
class SqueezeProbe:
    """``unlearn(..., on_step=probe)``: log-probs of target / paraphrase / θ_o samples every ``every`` steps."""

    every: int = 1
    n_samples: int = 8
    temperature: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    batch_size: int = 64
    records: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    sampling: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every <= 0:
            raise UnlearnkitError(f"the squeezing interval s must be a positive number of steps (every=1, 2, …), got {self.every!r}")
        if self.n_samples <= 0 or self.temperature <= 0:
            raise UnlearnkitError("n_samples and temperature must be positive")

    def __call__(self, step: int, ctx, final: bool) -> None:
        if self.records and self.records[-1]["step"] == step:
            return
        if step == 0:
            self._sample(ctx)
        if not (final or step % self.every == 0):
            return
        self.records.append(self.measure(step, ctx))

    def _sample(self, ctx) -> None:
        recs = ctx.forget_records
        qs = [r["question"] for r in recs]
        drawn = sample_answers(ctx.model, ctx.tokenizer, qs, self.n_samples, self.temperature, self.max_new_tokens,
                               self.seed, self.batch_size)
        kept, n_target, n_dup, n_empty = [], 0, 0, 0
        for i, (r, answers) in enumerate(zip(recs, drawn, strict=True)):
            seen = {_norm(r["answer"]), _norm(r.get("paraphrased_answer", r["answer"]))}
            own: set[str] = set()
            for a in answers:
                k = _norm(a)
                if not k:
                    n_empty += 1
                elif k in seen:
                    n_target += 1
                elif k in own:
                    n_dup += 1
                else:
                    own.add(k)
                    kept.append({"index": i, "text": a, "question": r["question"], "target": r["answer"]})
        total = len(recs) * self.n_samples
        self.sampling = {"drawn": total, "kept": len(kept), "equal_to_target_or_paraphrase": n_target,
                         "duplicates": n_dup, "empty": n_empty, "temperature": self.temperature,
                         "n_per_question": self.n_samples}
        if kept:
            st = teacher_forced_pass(ctx.model, ctx.tokenizer, [(qs[s["index"]], s["text"]) for s in kept], self.batch_size)
            tok_mean = st.mean_logprob()
            for s, b, v in zip(kept, likelihood_bands(tok_mean), tok_mean, strict=True):
                s["band"], s["tok_logp_o"] = b, float(v)
        self.samples = kept

    def measure(self, step: int, ctx) -> dict:
        t0 = time.perf_counter()
        recs = ctx.forget_records
        pairs = [(r["question"], r["answer"]) for r in recs]
        pairs += [(r["question"], r.get("paraphrased_answer", r["answer"])) for r in recs]
        pairs += [(recs[s["index"]]["question"], s["text"]) for s in self.samples]
        st = teacher_forced_pass(ctx.model, ctx.tokenizer, pairs, self.batch_size)
        lengths = st.lengths()
        tok = st.mean_logprob()
        seq = tok * lengths
        n = len(recs)
        idx = {"target": np.arange(n), "paraphrase": np.arange(n, 2 * n)}
        bands = np.array([s["band"] for s in self.samples])
        for b in ("high", "mid", "low"):
            idx[b] = 2 * n + np.flatnonzero(bands == b) if len(bands) else np.zeros(0, int)
        rec: dict = {"step": step}
        for g in GROUPS:
            ii = idx[g]
            rec[g] = {"seq": float(seq[ii].mean()) if len(ii) else None,
                      "tok": float(tok[ii].mean()) if len(ii) else None, "n": int(len(ii))}
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        return rec


def as_rows(method: str, records: list[dict]) -> list[dict]:
    rows = []
    for rec in records:
        for g in GROUPS:
            v = rec[g]
            rows.append({"method": method, "step": rec["step"], "group": g, "seq_logp": v["seq"], "tok_logp": v["tok"],
                         "n": v["n"]})
    return rows


def band_similarity(samples: list[dict], backend: str | None = None) -> dict[str, float | None]:
    """The seed's Similarity per likelihood band: how far θ_o's sampled answers in each band differ in meaning
    from the target answer (mean; higher = more different). The MiniLM embedding proxy by default; a judge
    backend (``local:…``, ``openai:…``) when given."""
    from unlearnkit.judge import EmbeddingSimilarity, JudgeItem, judge_responses, make_backend

    if not samples:
        return {}
    items = [JudgeItem(id=str(i), question=s["question"], response=s["text"], reference=s["target"])
             for i, s in enumerate(samples)]
    if backend:
        scores = [r.score for r in judge_responses(make_backend(backend), "similarity", items)]
    else:
        scores = EmbeddingSimilarity().score("similarity", items)
    out: dict[str, float | None] = {}
    for band in ("high", "mid", "low"):
        vals = [v for s, v in zip(samples, scores, strict=True) if s.get("band") == band and v is not None]
        out[band] = float(np.mean(vals)) if vals else None
    return out

