"""ROUGE-L recall of generations against the ground truth (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from unlearnkit.errors import UnlearnkitError


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer  # lazy: keep `import unlearnkit.metrics` light

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(prediction: str, target: str) -> float:
    """ROUGE-L recall of ``prediction`` (greedy generation cut at EOS) against ``target`` (ground truth).

    ``RougeScorer(["rougeL"], use_stemmer=True).score(target, prediction)["rougeL"].recall``:
    the longest common subsequence of tokens divided by the number of target tokens.
    """
    if not isinstance(prediction, str) or not isinstance(target, str):
        raise UnlearnkitError("rouge_l_recall takes two strings (prediction, target): decode the token ids first")
    return float(_scorer().score(target, prediction)["rougeL"].recall)


def rouge_l_recall_batch(predictions: Sequence[str], targets: Sequence[str]) -> list[float]:
    """Per-sample :func:`rouge_l_recall` over aligned lists of predictions and targets."""
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise UnlearnkitError(
            f"got {len(predictions)} predictions but {len(targets)} targets: pass one generation per target"
        )
    return [rouge_l_recall(p, t) for p, t in zip(predictions, targets, strict=True)]


def rouge_l_f1(prediction: str, target: str) -> float:
    """ROUGE-L F1 (F-measure) of ``prediction`` against ``target``: with L = the longest common subsequence of
    tokens, P = L / |prediction|, R = L / |target|, F1 = 2PR / (P + R) (0 when L = 0). The same scorer as
    :func:`rouge_l_recall`; MUSE's VerbMem and KnowMem report it (as OpenUnlearning computes them)."""
    if not isinstance(prediction, str) or not isinstance(target, str):
        raise UnlearnkitError("rouge_l_f1 takes two strings (prediction, target): decode the token ids first")
    return float(_scorer().score(target, prediction)["rougeL"].fmeasure)


def rouge_l_f1_batch(predictions: Sequence[str], targets: Sequence[str]) -> list[float]:
    """Per-sample :func:`rouge_l_f1` over aligned lists of predictions and targets."""
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise UnlearnkitError(
            f"got {len(predictions)} predictions but {len(targets)} targets: pass one generation per target"
        )
    return [rouge_l_f1(p, t) for p, t in zip(predictions, targets, strict=True)]
