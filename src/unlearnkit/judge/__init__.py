"""LLM-as-judge: Naturalness and Similarity (seed: "LLM Unlearning with LLM Beliefs"), a forget
and a retain rubric, judges behind an OpenAI-compatible endpoint or in-process, a content-hashed
cache, offline proxies, and agreement with a shipped labelled set. Guide: docs/judge.md.

Entry points::

    backend = make_backend("local:smollm2-135m")          # or "openai:MODEL", base_url=...
    results = judge_responses(backend, "naturalness", items)   # list[JudgeResult]
    rows = agreement(backend) + agreement(RepetitionFluency())
    print(agreement_table(rows))
"""

from __future__ import annotations

from typing import Any

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.agreement import (
    AgreementRow,
    JudgeScorer,
    Scorer,
    agreement,
    agreement_table,
    balanced_accuracy,
    category_table,
    spearman,
)
from unlearnkit.judge.base import Backend, Completion, JudgeItem, JudgeResult, Usage
from unlearnkit.judge.cache import JudgeCache
from unlearnkit.judge.core import judge_responses
from unlearnkit.judge.labelled import LabelledCase, load_labelled
from unlearnkit.judge.local import LocalBackend, LocalJudgeConfig, load_judge_model
from unlearnkit.judge.logprob import LogprobScorer
from unlearnkit.judge.openai_backend import OpenAIBackend, OpenAIJudgeConfig
from unlearnkit.judge.parse import AnswerError, ParsedAnswer, parse_answer
from unlearnkit.judge.proxies import EmbeddingSimilarity, LMFluency, RepetitionFluency, distinct_n, ppl_score
from unlearnkit.judge.rubrics import RUBRICS, Rubric, get_rubric


def make_backend(spec: str, **settings: Any) -> Backend:
    """``"local:NAME_OR_PATH"`` → :class:`LocalBackend`; ``"openai:MODEL"`` → :class:`OpenAIBackend`.

    ``settings`` go to the backend's config (e.g. ``base_url=``, ``concurrency=``, ``batch_size=``).
    """
    kind, sep, name = spec.partition(":")
    if not sep or not name or kind not in ("local", "openai"):
        raise UnlearnkitError(f"judge backend {spec!r} is not of the form local:MODEL or openai:MODEL "
                              "(e.g. local:smollm2-135m, openai:gpt-4o-mini)")
    if kind == "local":
        return LocalBackend.from_pretrained(name, **settings)
    return OpenAIBackend(model=name, **settings)


__all__ = [
    "RUBRICS", "AgreementRow", "AnswerError", "Backend", "Completion", "EmbeddingSimilarity", "JudgeCache",
    "JudgeItem", "JudgeResult", "JudgeScorer", "LMFluency", "LabelledCase", "LocalBackend", "LocalJudgeConfig", "LogprobScorer",
    "OpenAIBackend", "OpenAIJudgeConfig", "ParsedAnswer", "RepetitionFluency", "Rubric", "Scorer", "Usage",
    "agreement", "agreement_table", "category_table", "balanced_accuracy", "distinct_n", "get_rubric", "judge_responses",
    "load_judge_model", "load_labelled", "make_backend", "parse_answer", "ppl_score", "spearman",
]
