"""Language-model metrics (docs/metrics.md), as pure functions of per-sample quantities (docs/metrics.md, "Per-sample quantities").

For a prompt x and answer tokens y_1..y_n one teacher-forced pass gives
``log p_i = log π(y_i | x, y_<i)`` and ``c_i = [argmax π(· | x, y_<i) = y_i]``; every function
here takes those (or per-sample numbers derived from them), never a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics._convert import as_1d_bool, as_1d_float, as_float, as_rows_float, scalar_or_rows

# The nine components of model utility (docs/metrics.md), in canonical order.
MU_COMPONENTS: tuple[str, ...] = (
    "retain_prob",  # retain: probability
    "retain_rouge",  # retain: ROUGE-L recall
    "retain_truth_ratio",  # retain: truth_ratio_retain aggregate
    "ra_prob",  # real_authors: normalised probability
    "ra_rouge",  # real_authors: ROUGE-L recall
    "ra_truth_ratio",  # real_authors: truth_ratio_retain aggregate
    "wf_prob",  # world_facts: normalised probability
    "wf_rouge",  # world_facts: ROUGE-L recall
    "wf_truth_ratio",  # world_facts: truth_ratio_retain aggregate
)

# The smallest positive float (subnormal, 4.9e-324); ln of it is about -744.44.
_SMALLEST_POSITIVE = math.ulp(0.0)


# --------------------------------------------------------------------------------------------
# Memorisation from argmax flags


def extraction_strength(correct: Any) -> float:
    """Extraction strength ES = 1 − k/n of one answer.

    ``correct``: (n,) flags c_i = [argmax == true token]. k is the smallest k ∈ {0..n} with
    c_i = 1 for every i ≥ k+1 (1-based): from the prefix y_≤k greedy decoding reproduces the rest.
    ES = 1 when all tokens are correct (k = 0), ES = 0 when the last token is wrong (k = n).

    Convention: one widely used implementation returns 1/n in the all-wrong case; this one
    returns 0 (docs/metrics.md), so ES = 0 whenever the last token is wrong.
    """
    c = as_1d_bool(correct, "correct")  # (n,)
    n = c.size
    wrong = np.flatnonzero(~c)
    k = 0 if wrong.size == 0 else int(wrong[-1]) + 1  # last wrong token (0-based j) ⇒ k = j + 1
    return 1.0 - k / n


def exact_memorization(correct: Any) -> float:
    """Exact memorisation EM = mean_i c_i over one answer's tokens; ``correct``: (n,) flags."""
    c = as_1d_bool(correct, "correct")  # (n,)
    return float(c.mean())


# --------------------------------------------------------------------------------------------
# Probabilities and truth ratio


def probability(logprobs: Any) -> float:
    """Length-normalised probability exp(mean_i log p_i); ``logprobs``: (n,) token log-probs."""
    lp = as_1d_float(logprobs, "logprobs")  # (n,)
    return float(np.exp(lp.mean()))


def _logsumexp(v: np.ndarray) -> float:
    m = float(v.max())
    if m == -math.inf:
        return -math.inf
    return m + math.log(float(np.exp(v - m).sum()))


def normalized_probability(correct_logprob_mean: Any, wrong_logprob_means: Any) -> float:
    """Probability against alternatives, p_c / (p_c + Σ_w p_w), with p = exp(mean token log-prob).

    Computed in log space: exp(a_c − logsumexp(a_c, a_w1, ...)), so very negative means do not
    underflow to 0/0. ``wrong_logprob_means``: (m,) one mean log-prob per perturbed answer
    (m ≥ 1; none is an error). If p_c = 0 (a_c = −inf) the result is 0.
    """
    a_c = as_float(correct_logprob_mean, "correct_logprob_mean")
    a_w = as_1d_float(wrong_logprob_means, "wrong_logprob_means")  # (m,)
    if a_c == -math.inf:
        return 0.0
    return math.exp(a_c - _logsumexp(np.append(a_w, a_c)))


def truth_ratio(correct_logprob_mean: Any, perturbed_logprob_means: Any) -> float:
    """Per-sample truth ratio tr = exp(b − a).

    a = mean_i log p_i of the paraphrased answer (original answer on utility sets);
    b = mean over perturbed answers of their mean_i log p_i. ``perturbed_logprob_means``: (m,).
    tr < 1 means the model prefers the correct answer.
    """
    a = as_float(correct_logprob_mean, "correct_logprob_mean")
    b = float(as_1d_float(perturbed_logprob_means, "perturbed_logprob_means").mean())
    d = b - a
    if math.isnan(d):  # both −inf
        raise UnlearnkitError("truth ratio is undefined: both the correct and perturbed answers have probability 0")
    return math.exp(d) if d < 709.0 else math.inf


def _truth_ratios(trs: Any) -> np.ndarray:
    t = as_rows_float(trs, "trs")  # (samples,) or (resamples, samples)
    if (t < 0).any():
        raise UnlearnkitError("truth ratios must be ≥ 0 (tr = exp(b − a)); pass the per-sample ratios, not logs")
    return t


def truth_ratio_forget(trs: Any) -> float | np.ndarray:
    """Forget-set aggregate mean(min(tr, 1/tr)); 1 = correct and perturbed equally likely.
    ``trs``: (samples,) → a float; (resamples, samples) → one aggregate per row (bootstrap replicates)."""
    t = _truth_ratios(trs)
    with np.errstate(divide="ignore"):
        return scalar_or_rows(np.minimum(t, 1.0 / t).mean(axis=-1))


def truth_ratio_retain(trs: Any) -> float | np.ndarray:
    """Retain/utility-set aggregate mean(max(0, 1 − tr)); higher = the correct answer is preferred.
    ``trs``: (samples,) → a float; (resamples, samples) → one aggregate per row (bootstrap replicates)."""
    t = _truth_ratios(trs)
    return scalar_or_rows(np.maximum(0.0, 1.0 - t).mean(axis=-1))


# --------------------------------------------------------------------------------------------
# Forget quality


@dataclass(frozen=True)
class ForgetQuality:
    """Two-sample KS test between the model's and the reference's per-sample forget truth ratios.

    ``log_pvalue`` is the natural log of ``pvalue``. When the p-value underflows to 0.0 in
    float64 (``underflow`` is True), ``log_pvalue`` is ln of the smallest positive float
    (≈ −744.44) and is then an upper bound: the true ln p is at most that.
    """

    pvalue: float  # arrays (resamples,) for bootstrap replicates, like every field
    log_pvalue: float
    statistic: float  # KS distance D = sup |F_model − F_reference|
    underflow: bool = False


def forget_quality(tr_model: Any, tr_reference: Any) -> ForgetQuality:
    """Forget quality: ``scipy.stats.ks_2samp(tr_model, tr_reference)`` (two-sided, method "auto").

    ``tr_model``, ``tr_reference``: per-sample forget truth ratios (samples,) of the evaluated
    model and of the retrained reference θ_r. A missing reference is an error, never a None.
    Bootstrap replicates: (resamples, samples) each → one test per row (``ks_2samp(…, axis=-1)``,
    the same scipy test), and every field of the result is an array with one value per row.
    """
    r = None if tr_reference is None else as_rows_float(tr_reference, "tr_reference", allow_empty=True)
    if r is None or r.shape[-1] == 0:  # (samples_ref,)
        raise UnlearnkitError(
            "forget quality needs the reference model's per-sample forget truth ratios: pass --reference PATH "
            "(a run of the retained model θ_r on the same forget set)"
        )
    from scipy.stats import ks_2samp  # lazy: keep `import unlearnkit.metrics` light

    m = as_rows_float(tr_model, "tr_model")  # (samples,) or (resamples, samples)
    if m.ndim == 2 or r.ndim == 2:
        rows = ks_2samp(m, r, axis=-1)
        p_rows = np.asarray(rows.pvalue, dtype=np.float64)  # (resamples,)
        under = p_rows <= 0.0
        return ForgetQuality(pvalue=p_rows, log_pvalue=np.log(np.where(under, _SMALLEST_POSITIVE, p_rows)),
                             statistic=np.asarray(rows.statistic, dtype=np.float64), underflow=under)
    res = ks_2samp(m, r)
    p = float(res.pvalue)
    underflow = p <= 0.0
    log_p = math.log(_SMALLEST_POSITIVE if underflow else p)
    return ForgetQuality(pvalue=p, log_pvalue=log_p, statistic=float(res.statistic), underflow=underflow)


# --------------------------------------------------------------------------------------------
# Harmonic means: model utility and the Mem / Util / Agg composite


def harmonic_mean(values: Any) -> float | np.ndarray:
    """Harmonic mean n / Σ 1/v_i; 0 if any value is ≤ 0 (a zero component zeroes the mean).

    Bootstrap replicates: components that are arrays (resamples,) give one harmonic mean per resample.
    """
    if isinstance(values, Mapping):
        values = list(values.values())
    elif not hasattr(values, "shape") and not isinstance(values, Sequence):
        values = list(values)  # any other iterable, e.g. a generator
    if not hasattr(values, "shape") and any(np.ndim(x) > 0 for x in values):
        parts = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in values))
        rows = as_rows_float(np.stack(parts, axis=-1), "values")  # (resamples, components)
        with np.errstate(divide="ignore", invalid="ignore"):
            hm = rows.shape[-1] / (1.0 / rows).sum(axis=-1)
        return np.where((rows <= 0).any(axis=-1), 0.0, hm)
    v = as_1d_float(values, "values")  # (n,)
    if (v <= 0).any():
        return 0.0
    return float(v.size / (1.0 / v).sum())


def model_utility(values: Mapping[str, float] | Sequence[float] | Any) -> float | np.ndarray:
    """Model utility MU: harmonic mean of the nine utility numbers (docs/metrics.md); 0 if any is 0
    (components that are arrays (resamples,): one MU per bootstrap resample).

    ``values`` is either a dict keyed by exactly :data:`MU_COMPONENTS` (missing or unknown keys
    are an error) or a sequence of numbers (used as given; the canonical form has nine).
    """
    if isinstance(values, Mapping):
        missing = [k for k in MU_COMPONENTS if k not in values]
        if missing:
            raise UnlearnkitError(f"model utility is missing components {missing}: pass all of {list(MU_COMPONENTS)}")
        extra = sorted(str(k) for k in values if k not in MU_COMPONENTS)
        if extra:
            raise UnlearnkitError(f"model utility got unknown components {extra}: use only {list(MU_COMPONENTS)}")
        values = [values[k] for k in MU_COMPONENTS]
    return harmonic_mean(values)


@dataclass(frozen=True)
class MemUtilAgg:
    """The Mem / Util / Agg composite with a printable ``composition`` of how it was formed."""

    mem: float
    util: float
    agg: float
    composition: str


def _unit(x: Any, name: str) -> float:
    v = as_float(x, name)
    if not 0.0 <= v <= 1.0:
        raise UnlearnkitError(f"{name} must lie in [0, 1], got {v}")
    return v


def mem_util_agg(
    es: float,
    em: float,
    para_prob: float,
    forget_tr_true_better: float,
    util: float,
    fluency: float | None = None,
) -> MemUtilAgg:
    """Mem = HM(1 − ES, 1 − EM, 1 − ParaProb, 1 − TR); Util = MU (× fluency); Agg = HM(Mem, Util).

    All inputs are forget-set aggregates in [0, 1] except ``util`` (model utility) and
    ``fluency`` (a judge's fluency score already scaled to [0, 1], e.g. naturalness / 5).
    TR is the forget truth-ratio aggregate in the "true-better" form mean(max(0, 1 − tr))
    (:func:`truth_ratio_retain` applied to forget-set ratios), so 1 − TR, like the other three
    components, is higher when less is memorised. The forget-set form mean(min(tr, 1/tr)) would
    invert that direction (it grows as the model forgets), so it is not used here.
    """
    es, em = _unit(es, "es"), _unit(em, "em")
    pp, tr = _unit(para_prob, "para_prob"), _unit(forget_tr_true_better, "forget_tr_true_better")
    mu = _unit(util, "util")
    parts = (1.0 - es, 1.0 - em, 1.0 - pp, 1.0 - tr)
    mem = harmonic_mean(parts)
    if fluency is None:
        u, util_txt = mu, f"Util = MU={mu:.4f}"
    else:
        fl = _unit(fluency, "fluency")
        u, util_txt = mu * fl, f"Util = MU={mu:.4f} × fluency={fl:.4f} = {mu * fl:.4f}"
    agg = harmonic_mean((mem, u))
    composition = (
        f"Mem = HM(1−ES={parts[0]:.4f}, 1−EM={parts[1]:.4f}, 1−ParaProb={parts[2]:.4f}, 1−TR={parts[3]:.4f})"
        f" = {mem:.4f}; {util_txt}; Agg = HM(Mem, Util) = {agg:.4f}"
    )
    return MemUtilAgg(mem=mem, util=u, agg=agg, composition=composition)
