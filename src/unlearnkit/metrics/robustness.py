"""Recovery: the share of the forgetting an attack undoes (docs/metrics.md, "Recovery under attack").

For a metric m measured on the forget set, with m_o on the original θ_o, m_u on the unlearned θ_u and m_a on θ_u
after an attack:

    recovery = (m_a − m_u) / (m_o − m_u)

0 = the attack brought nothing back, 1 = it restored θ_o's value, < 0 = the attacked model is further from θ_o
than θ_u, > 1 = beyond θ_o. The ratio reads the same for metrics where forgetting lowers m (ES, probability)
and where it raises m (a loss): numerator and denominator change sign together. It is undefined (None) when θ_u
did not move the metric (|m_o − m_u| ≤ ``eps``): there is nothing to recover. This is the "share of the forgotten
knowledge restored" of Zhang et al., "Catastrophic Failure of LLM Unlearning via Quantization" (ICLR 2025).

Arrays broadcast (one value per bootstrap resample, or per sample); NaN marks undefined entries there.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def recovery(attacked, unlearned, original, eps: float = 1e-12):
    """(m_a − m_u) / (m_o − m_u); None for scalars (NaN in arrays) where |m_o − m_u| ≤ eps."""
    a, u, o = (np.asarray(x, dtype=np.float64) for x in (attacked, unlearned, original))
    gap = o - u
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.abs(gap) > eps, (a - u) / np.where(gap == 0, 1.0, gap), np.nan)
    if r.ndim == 0:
        return None if np.isnan(r) else float(r)
    return r


def worst_recovery(recoveries: Iterable[float | None]) -> float | None:
    """The highest recovery over the attacks run (the worst case for the unlearned model); None if none is
    defined."""
    vals = [r for r in recoveries if r is not None and not np.isnan(r)]
    return max(vals) if vals else None
