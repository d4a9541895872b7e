"""Membership-inference scores, their AUC and PrivLeak (docs/metrics.md).

Every per-sample score is oriented so that HIGHER = MORE MEMBER-LIKE (members = forget split,
non-members = holdout split), and :func:`mia_auc` labels members 1, so AUC > 0.5 means members
look more like members than non-members do.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics._convert import as_1d_float, as_float, as_rows_float, to_numpy

MIA_ORIENTATION = (
    "MIA scores: higher = more member-like; AUC labels members (forget split) 1 and non-members "
    "(holdout split) 0, so AUC > 0.5 means members look more like members, 0.5 = indistinguishable"
)

_DEFAULT_EPS = 1e-8


def mia_loss_score(logprobs: Any) -> float:
    """LOSS attack: −mean NLL = mean_i log p_i; ``logprobs``: (n,) answer-token log-probs."""
    lp = as_1d_float(logprobs, "logprobs")  # (n,)
    return float(lp.mean())


def mia_zlib_score(logprobs: Any, text: str) -> float:
    """ZLib attack: −(mean NLL / len(zlib.compress(text.encode("utf-8")))) = mean_i log p_i / zlib bytes.

    The mean NLL (log-perplexity), as the published attack (Carlini et al. 2021), MUSE and
    OpenUnlearning divide it; unlearnkit ≤ 0.1 divided the NLL *sum* (docs/metrics.md, "Metrics version").
    """
    lp = as_1d_float(logprobs, "logprobs")  # (n,)
    if not isinstance(text, str):
        raise UnlearnkitError(f"text must be the decoded answer string, got {type(text).__name__}")
    return float(lp.mean()) / len(zlib.compress(text.encode("utf-8")))


def mia_reference_score(mean_logprob: Any, reference_mean_logprob: Any) -> float:
    """Reference attack (difficulty calibration with a reference model): the loss ratio in log space,
    mean_i log p_i − mean_i log p_ref,i = NLL_ref − NLL_θ = ln(ppl_ref / ppl_θ).

    Both arguments are one sample's mean answer-token log-prob (its LOSS score,
    :func:`mia_loss_score`) under the evaluated model and under the reference model (θ_r, retrained
    without the forget set, as OpenUnlearning configures it for TOFU). Members are easier for θ than
    for a model that never saw them, so a higher score is more member-like. OpenUnlearning scores
    NLL_θ − NLL_ref (higher = non-member); the AUC is the same after orientation.
    """
    return as_float(mean_logprob, "mean_logprob") - as_float(reference_mean_logprob, "reference_mean_logprob")


def mia_gradnorm_score(grad_norm: Any) -> float:
    """GradNorm attack: −‖∇_θ NLL_mean(x)‖_p. Training drives the loss of members to a flat region,
    so members have smaller gradients: a smaller norm is more member-like (hence the minus sign)."""
    g = as_float(grad_norm, "grad_norm")
    if g < 0:
        raise UnlearnkitError(f"grad_norm must be a norm (≥ 0), got {g}")
    return -g


def _min_k_count(n: int, k: float) -> int:
    if not 0.0 < k <= 1.0:
        raise UnlearnkitError(f"k must be a fraction in (0, 1] (e.g. 0.4 for Min-40%), got {k}")
    return max(1, int(k * n))


def mia_min_k_score(logprobs: Any, k: float = 0.4) -> float:
    """Min-K% attack: mean of the lowest max(1, int(k·n)) token log-probs (as TOFU/MUSE code does)."""
    lp = as_1d_float(logprobs, "logprobs")  # (n,)
    m = _min_k_count(lp.size, float(k))
    return float(np.sort(lp)[:m].mean())


def mia_min_k_plus_plus_score(z_scores: Any, k: float = 0.4) -> float:
    """Min-K%++ attack: Min-K% over standardised token scores z_i (see :func:`min_k_plus_plus_token_scores`)."""
    z = as_1d_float(z_scores, "z_scores")  # (n,)
    m = _min_k_count(z.size, float(k))
    return float(np.sort(z)[:m].mean())


def min_k_plus_plus_token_scores(logprobs: Any, mu: Any, sigma: Any, eps: float = _DEFAULT_EPS) -> np.ndarray:
    """Standardise token log-probs: z_i = (log p_i − μ_i) / max(σ_i, eps).

    μ_i = E_{v~π}[log π(v)] and σ_i = sqrt(E_{v~π}[(log π(v))²] − μ_i²) over the vocabulary at
    position i (see :func:`min_k_plus_plus_moments`). All three inputs are (n,). The floor ``eps``
    only matters for a (near-)deterministic position where σ_i ≈ 0.
    """
    lp = as_1d_float(logprobs, "logprobs")  # (n,)
    m = as_1d_float(mu, "mu")  # (n,)
    s = as_1d_float(sigma, "sigma")  # (n,)
    if not lp.shape == m.shape == s.shape:
        raise UnlearnkitError(f"logprobs, mu and sigma must have the same length, got {lp.size}, {m.size}, {s.size}")
    if (s < 0).any():
        raise UnlearnkitError("sigma must be a standard deviation (≥ 0), not a variance or a log")
    return (lp - m) / np.maximum(s, eps)


def min_k_plus_plus_moments(vocab_logprobs: Any) -> tuple[np.ndarray, np.ndarray]:
    """μ_i and σ_i of log π over the vocabulary, from log-softmax rows (n, vocab) → ((n,), (n,)).

    Reference helper for tests and cross-checks; the engine computes the same on the device.
    Zero-probability entries (log π = −inf) contribute 0 to both expectations.
    """
    lv = to_numpy(vocab_logprobs).astype(np.float64)  # (n, vocab)
    if lv.ndim != 2 or lv.size == 0:
        raise UnlearnkitError(f"vocab_logprobs must be log-softmax rows of shape (n, vocab), got {lv.shape}")
    p = np.exp(lv)  # (n, vocab); exp(−inf) = 0
    lv0 = np.where(np.isfinite(lv), lv, 0.0)  # (n, vocab); avoids 0 · (−inf) = NaN
    mu = (p * lv0).sum(axis=1)  # (n,)
    second = (p * lv0**2).sum(axis=1)  # (n,)
    sigma = np.sqrt(np.maximum(second - mu**2, 0.0))  # (n,)
    return mu, sigma


def mia_auc(member_scores: Any, nonmember_scores: Any) -> float | np.ndarray:
    """ROC AUC with members labelled 1: ``sklearn.metrics.roc_auc_score``; see :data:`MIA_ORIENTATION`.

    Bootstrap replicates — (resamples, members) and (resamples, non-members) — give one AUC per row:
    ``scipy.stats.mannwhitneyu(…, axis=-1)``'s U / (members · non-members), the same number (pairs where
    the member scores higher, ties counted ½; tests check both against each other), computed for every
    row at once where ``roc_auc_score`` takes one at a time.
    """
    mem = as_rows_float(member_scores, "member_scores", allow_empty=True)  # (members,) or (resamples, members)
    non = as_rows_float(nonmember_scores, "nonmember_scores", allow_empty=True)  # (nonmembers,) or (resamples, …)
    if mem.shape[-1] == 0 or non.shape[-1] == 0:
        side = "member (forget split)" if mem.shape[-1] == 0 else "non-member (holdout split)"
        raise UnlearnkitError(f"MIA AUC needs scores on both sides: the {side} scores are empty")
    if mem.ndim == 2 or non.ndim == 2:
        from scipy.stats import mannwhitneyu

        u = mannwhitneyu(mem, non, axis=-1, method="asymptotic", use_continuity=False).statistic
        return np.asarray(u, dtype=np.float64) / (mem.shape[-1] * non.shape[-1])
    from sklearn.metrics import roc_auc_score  # lazy: keep `import unlearnkit.metrics` light

    labels = np.concatenate([np.ones(mem.size), np.zeros(non.size)])
    return float(roc_auc_score(labels, np.concatenate([mem, non])))


def privleak(auc_model: Any, auc_reference: Any) -> float | np.ndarray:
    """PrivLeak in MUSE's published convention (as OpenUnlearning computes it).

    With A = the AUC oriented as :data:`MIA_ORIENTATION` (members up) and A' = 1 − A:
    PrivLeak = (A'(θ_u) − A'(θ_r)) / A'(θ_r) × 100. ≈ 0 is ideal, < 0 under-unlearning (θ_u still
    separates members better than θ_r: the original model on TOFU, with A ≈ 1, scores ≈ −100),
    > 0 over-unlearning. unlearnkit ≤ 0.1 used (A(θ_u) − A(θ_r)) / A(θ_r) × 100, whose sign is the
    opposite (docs/metrics.md, "Metrics version").

    Bootstrap replicates: arrays of AUCs (resamples,) give one PrivLeak per resample, NaN where the
    reference's AUC is 1 (the error of one evaluation; a bootstrap with such a replicate shows no interval).
    """
    if np.ndim(auc_model) > 0 or np.ndim(auc_reference) > 0:
        u_rows, r_rows = np.broadcast_arrays(as_rows_float(np.atleast_1d(auc_model), "auc_model"),
                                             as_rows_float(np.atleast_1d(auc_reference), "auc_reference"))
        if ((u_rows < 0) | (u_rows > 1) | (r_rows < 0) | (r_rows > 1)).any():
            raise UnlearnkitError("auc_model and auc_reference must be AUCs in [0, 1]")
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _privleak(u_rows, r_rows)
        return np.where(r_rows == 1.0, np.nan, out)
    u = as_float(auc_model, "auc_model")
    r = as_float(auc_reference, "auc_reference")
    for name, v in (("auc_model", u), ("auc_reference", r)):
        if not 0.0 <= v <= 1.0:
            raise UnlearnkitError(f"{name} must be an AUC in [0, 1], got {v}")
    if r == 1.0:
        raise UnlearnkitError(
            "privleak is undefined when the reference AUC is 1 (1 − AUC = 0): the reference model separates "
            "members from non-members perfectly; check that it was trained without the forget set"
        )
    return _privleak(u, r)


def _privleak(u, r):
    """(A'(θ_u) − A'(θ_r)) / A'(θ_r) × 100 with A' = 1 − AUC: floats, or arrays of bootstrap replicates."""
    return ((1.0 - u) - (1.0 - r)) / (1.0 - r) * 100.0
