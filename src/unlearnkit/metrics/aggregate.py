"""Aggregation of per-sample values and the orientation of each metric (for results.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics._convert import as_1d_float

# Which direction is better, for each directed metric, on the set docs/metrics.md evaluates it on:
# memorisation metrics (ES, EM) and the forget-set composites on the forget set; probability,
# ROUGE-L and truth_ratio_retain on retain/utility sets. When probability or ROUGE-L is
# reported on a forget set the desirable direction reverses: use higher_is_better(name, on_forget=True).
HIGHER_IS_BETTER: dict[str, bool] = {
    "extraction_strength": False,  # forget set: less extractable is better
    "exact_memorization": False,  # forget set
    "probability": True,  # retain/utility sets (reversed on forget sets)
    "normalized_probability": True,  # utility sets (reversed on forget sets)
    "rouge_l_recall": True,  # retain/utility sets (reversed on forget sets)
    "truth_ratio_forget": True,  # forget set: mean(min(tr, 1/tr)) → 1 when forgotten
    "truth_ratio_retain": True,  # retain/utility sets: mean(max(0, 1 − tr))
    "forget_quality": True,  # KS p-value: higher = closer to the reference θ_r
    "log_forget_quality": True,  # ln of the p-value
    "model_utility": True,
    "mem": True,
    "util": True,
    "agg": True,
}

# Metrics with no better direction, and what to do with them instead.
UNDIRECTED: dict[str, str] = {
    "privleak": "≈ 0 is ideal; < 0 under-unlearning, > 0 over-unlearning (MUSE's convention)",
    "mia_auc": "the reference model's AUC is ideal; compare through privleak",
    "truth_ratio": "per-sample ratio; aggregate with truth_ratio_forget or truth_ratio_retain",
    "mia_loss": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
    "mia_zlib": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
    "mia_min_k": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
    "mia_min_k_plus_plus": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
    "mia_reference": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
    "mia_gradnorm": "per-sample MIA score (higher = more member-like); aggregate with mia_auc",
}

# Knowledge metrics whose desirable direction flips on a forget set.
_REVERSED_ON_FORGET = frozenset({"probability", "normalized_probability", "rouge_l_recall"})


def higher_is_better(name: str, on_forget: bool = False) -> bool | None:
    """Direction of ``name`` (None for :data:`UNDIRECTED` metrics); ``on_forget`` flips knowledge metrics."""
    if name in UNDIRECTED:
        return None
    if name not in HIGHER_IS_BETTER:
        known = sorted([*HIGHER_IS_BETTER, *UNDIRECTED])
        raise UnlearnkitError(f"unknown metric {name!r}: known metrics are {known}")
    return HIGHER_IS_BETTER[name] != (on_forget and name in _REVERSED_ON_FORGET)


@dataclass(frozen=True)
class Aggregate:
    """One aggregated metric: the mean ``value`` over ``n`` samples and its direction (None = undirected)."""

    value: float
    n: int
    higher_is_better: bool | None
    name: str


def aggregate(name: str, per_sample_values: Any, higher_is_better: bool | None) -> Aggregate:
    """Mean of ``per_sample_values`` (samples,) as an :class:`Aggregate` named ``name``."""
    v = as_1d_float(per_sample_values, f"per-sample values of {name!r}")  # (samples,)
    return Aggregate(value=float(v.mean()), n=int(v.size), higher_is_better=higher_is_better, name=name)
