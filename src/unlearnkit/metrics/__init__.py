"""Metrics: pure functions of per-sample log-probs, argmax flags, texts or scores (docs/metrics.md).

Importing this package loads numpy only; scipy, scikit-learn and rouge_score are imported
inside the functions that need them, and torch is never imported (tensors are accepted by
duck typing). Definitions and orientations: docs/metrics.md.
"""

from unlearnkit.metrics.aggregate import HIGHER_IS_BETTER, UNDIRECTED, Aggregate, aggregate, higher_is_better
from unlearnkit.metrics.conventions import CONVENTIONS, Convention, convention, extraction_strength_one_over_n
from unlearnkit.metrics.lm import (
    MU_COMPONENTS,
    ForgetQuality,
    MemUtilAgg,
    exact_memorization,
    extraction_strength,
    forget_quality,
    harmonic_mean,
    mem_util_agg,
    model_utility,
    normalized_probability,
    probability,
    truth_ratio,
    truth_ratio_forget,
    truth_ratio_retain,
)
from unlearnkit.metrics.mia import (
    MIA_ORIENTATION,
    mia_auc,
    mia_gradnorm_score,
    mia_loss_score,
    mia_min_k_plus_plus_score,
    mia_min_k_score,
    mia_reference_score,
    mia_zlib_score,
    min_k_plus_plus_moments,
    min_k_plus_plus_token_scores,
    privleak,
)
from unlearnkit.metrics.text import rouge_l_f1, rouge_l_f1_batch, rouge_l_recall, rouge_l_recall_batch

__all__ = [
    "CONVENTIONS",
    "Convention",
    "convention",
    "extraction_strength_one_over_n",
    "mia_gradnorm_score",
    "mia_reference_score",
    "HIGHER_IS_BETTER",
    "MIA_ORIENTATION",
    "MU_COMPONENTS",
    "UNDIRECTED",
    "Aggregate",
    "ForgetQuality",
    "MemUtilAgg",
    "aggregate",
    "exact_memorization",
    "extraction_strength",
    "forget_quality",
    "harmonic_mean",
    "higher_is_better",
    "mem_util_agg",
    "mia_auc",
    "mia_loss_score",
    "mia_min_k_plus_plus_score",
    "mia_min_k_score",
    "mia_zlib_score",
    "min_k_plus_plus_moments",
    "min_k_plus_plus_token_scores",
    "model_utility",
    "normalized_probability",
    "privleak",
    "probability",
    "rouge_l_f1",
    "rouge_l_f1_batch",
    "rouge_l_recall",
    "rouge_l_recall_batch",
    "truth_ratio",
    "truth_ratio_forget",
    "truth_ratio_retain",
]
