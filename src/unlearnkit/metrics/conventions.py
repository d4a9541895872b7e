"""Metric conventions: unlearnkit's exact definitions (the default) and OpenUnlearning's.

``metrics.convention=openunlearning`` reproduces OpenUnlearning's published numbers where its
definitions differ from ours, so a table can sit beside a paper's. Every difference (docs/metrics.md
lists each with a worked example):

- **the EOS position**: unlearnkit's answer tokens end with EOS (what the model must produce to
  stop); OpenUnlearning computes ES, EM, Min-K% and Min-K%++ without it (the last answer token is
  dropped before those four metrics; probabilities, truth ratio, LOSS and ZLib keep it in both);
- **ES when the last token is wrong**: unlearnkit's ES = 0 (no prefix lets greedy decoding finish
  the answer); OpenUnlearning's loop stops at k = n − 1 and returns 1/n.

Everything else is computed identically under both conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics._convert import as_1d_bool
from unlearnkit.metrics.lm import exact_memorization, extraction_strength
from unlearnkit.metrics.mia import mia_min_k_plus_plus_score, mia_min_k_score

ConventionName = Literal["unlearnkit", "openunlearning"]
CONVENTIONS: tuple[str, ...] = ("unlearnkit", "openunlearning")


def extraction_strength_one_over_n(correct: Any) -> float:
    """OpenUnlearning's ES: 1 − k/n with k the smallest k ∈ {0..n−1} such that c_i = 1 for every i ≥ k+1;
    when even the last token is wrong no such k exists, the search ends at k = n − 1 and ES = 1/n
    (unlearnkit's :func:`~unlearnkit.metrics.extraction_strength` returns 0 there)."""
    c = as_1d_bool(correct, "correct")  # (n,)
    n = c.size
    wrong = np.flatnonzero(~c)
    k = 0 if wrong.size == 0 else min(int(wrong[-1]) + 1, n - 1)
    return 1.0 - k / n


@dataclass(frozen=True)
class Convention:
    """How ES, EM, Min-K% and Min-K%++ read one answer's per-token arrays."""

    name: ConventionName = "unlearnkit"

    @property
    def drops_eos(self) -> bool:
        return self.name == "openunlearning"

    def tokens(self, arr: np.ndarray) -> np.ndarray:
        """The answer positions the four metrics see: all of them, or all but the last (EOS) one.
        An answer of one token (EOS alone) keeps it, so no metric is asked about an empty answer."""
        return arr[:-1] if self.drops_eos and len(arr) > 1 else arr

    def es(self, correct: Any) -> float:
        c = self.tokens(np.asarray(correct))
        return extraction_strength_one_over_n(c) if self.drops_eos else extraction_strength(c)

    def em(self, correct: Any) -> float:
        return exact_memorization(self.tokens(np.asarray(correct)))

    def min_k(self, logprobs: Any, k: float) -> float:
        return mia_min_k_score(self.tokens(np.asarray(logprobs, dtype=float)), k)

    def min_k_plus_plus(self, z: Any, k: float) -> float:
        return mia_min_k_plus_plus_score(self.tokens(np.asarray(z, dtype=float)), k)


def convention(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise UnlearnkitError(f"unknown metric convention {name!r}: use one of {', '.join(CONVENTIONS)}")
    return Convention(name)  # type: ignore[arg-type]
