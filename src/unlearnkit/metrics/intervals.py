"""The spread beside every number: 95 % intervals and whether a difference lies inside the noise.

- **Over seeds** (a table row that averages k ≥ 2 seeds): the t-interval
  mean ± t_{(1+level)/2, k−1} · sd / √k (sd with k − 1 in the denominator) — :func:`t_interval`.
- **Over eval samples** (a row of one entry): a percentile bootstrap. The eval samples of each eval
  set are drawn with replacement ``resamples`` times (:func:`resample_indices`: a fixed seed per
  (seed, set name, set size), so every entry evaluated on the same sets gets the *same* draws — the
  replicates of two entries, or of an entry and its reference θ_r, are paired); a statistic recomputes
  the metric from the resampled per-sample values with the project's own aggregate functions (which
  take (resamples, samples) arrays) and the interval is the (1−level)/2 and (1+level)/2 quantiles of the
  replicates (``numpy.quantile``, linear interpolation) — :func:`bootstrap`.
- **Inside the noise** (:func:`inside_noise`): with paired replicates, the percentile interval of the
  replicate differences contains 0; otherwise the two intervals overlap.

Worked examples and the choices behind them: docs/metrics.md, "Intervals and noise".
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics._convert import as_1d_float

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0

# eval set → (resamples, samples) indices  ↦  (resamples,) replicates of one metric
Statistic = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Interval:
    """A ``level`` interval [lo, hi] around ``value`` (the number a table shows): ``method`` "t" over ``n``
    seeds, or "bootstrap" over ``n`` resamples of the eval samples."""

    value: float
    lo: float
    hi: float
    method: str
    n: int
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        """(hi − lo) / 2: what a table prints after ±."""
        return (self.hi - self.lo) / 2.0

    def to_json(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "half_width": self.half_width,
                "method": self.method, "n": self.n, "level": self.level}

    @classmethod
    def from_json(cls, d: Mapping) -> Interval:
        return cls(float(d["value"]), float(d["lo"]), float(d["hi"]), str(d["method"]), int(d["n"]),
                   float(d.get("level", LEVEL)))


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise UnlearnkitError(f"an interval level must lie in (0, 1) (e.g. 0.95), got {level}")
    return float(level)


def t_interval(values, level: float = LEVEL) -> Interval:
    """mean ± t_{(1+level)/2, k−1} · sd / √k over k ≥ 2 values (one per seed); sd with ddof = 1."""
    v = as_1d_float(values, "values")  # (seeds,)
    if v.size < 2:
        raise UnlearnkitError("a t-interval needs at least two values (one per seed): run several seeds, or use "
                              "the bootstrap over eval samples")
    from scipy.stats import t  # lazy: keep `import unlearnkit.metrics` light

    k = v.size
    mean = float(v.mean())
    half = float(t.ppf((1.0 + _check_level(level)) / 2.0, k - 1)) * float(v.std(ddof=1)) / math.sqrt(k)
    return Interval(mean, mean - half, mean + half, "t", k, level)


@functools.lru_cache(maxsize=32)
def _indices(name: str, n: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, n, zlib.crc32(name.encode("utf-8"))])
    out = rng.integers(0, n, size=(resamples, n))  # (resamples, n)
    out.setflags(write=False)
    return out


def resample_indices(sizes: Mapping[str, int], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, np.ndarray]:
    """Per eval set, ``resamples`` draws of its ``n`` sample indices with replacement: (resamples, n), from
    ``numpy.random.default_rng([seed, n, crc32(set name)])`` — the same for every entry on the same sets."""
    if resamples < 2:
        raise UnlearnkitError(f"a bootstrap needs at least 2 resamples (default {RESAMPLES}), got {resamples}")
    for name, n in sizes.items():
        if int(n) < 1:
            raise UnlearnkitError(f"eval set {name!r} has no samples to resample: evaluate it first")
    return {name: _indices(name, int(n), int(resamples), int(seed)) for name, n in sizes.items()}


def percentile_interval(value: float, replicates, level: float = LEVEL) -> Interval | None:
    """The (1−level)/2 and (1+level)/2 quantiles of the replicates around ``value``; None when a replicate
    is not finite (the metric is undefined on some resample: no interval rather than a wrong one)."""
    r = np.asarray(replicates, dtype=np.float64).ravel()  # (resamples,)
    if r.size < 2 or not np.isfinite(r).all() or not math.isfinite(value):
        return None
    a = _check_level(level)
    lo, hi = np.quantile(r, [(1.0 - a) / 2.0, (1.0 + a) / 2.0])
    return Interval(float(value), float(lo), float(hi), "bootstrap", int(r.size), a)


def bootstrap(statistic: Statistic, sizes: Mapping[str, int], value: float, resamples: int = RESAMPLES,
              seed: int = SEED, level: float = LEVEL) -> tuple[Interval | None, np.ndarray]:
    """(interval, replicates): ``statistic`` evaluated on :func:`resample_indices` of ``sizes``; ``value`` is
    the metric on the samples as they are (the number shown). The statistic must reproduce ``value`` on the
    samples as they are (indices 0..n−1, to 1e-9): one that does not computes another metric, and the result
    is (None, empty) — no interval rather than the interval of something else."""
    identity = {name: np.arange(int(n))[None, :] for name, n in sizes.items()}
    again = np.asarray(statistic(identity), dtype=np.float64).ravel()
    if again.shape != (1,) or not np.isclose(again[0], value, rtol=1e-9, atol=1e-9):
        return None, np.empty(0)
    idx = resample_indices(sizes, resamples, seed)
    reps = np.asarray(statistic(idx), dtype=np.float64)
    if reps.shape != (resamples,):
        raise UnlearnkitError(f"a bootstrap statistic must return one value per resample ({resamples},), got shape "
                              f"{reps.shape}")
    return percentile_interval(value, reps, level), reps


def paired_difference(replicates_a, replicates_b, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of a_b − b_b over paired replicates (same resampled indices)."""
    a = np.asarray(replicates_a, dtype=np.float64).ravel()
    b = np.asarray(replicates_b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise UnlearnkitError(f"paired replicates must have the same length ≥ 2, got {a.size} and {b.size}")
    lv = _check_level(level)
    lo, hi = np.quantile(a - b, [(1.0 - lv) / 2.0, (1.0 + lv) / 2.0])
    return float(lo), float(hi)


def overlap(a: Interval, b: Interval) -> bool:
    """Whether [a.lo, a.hi] and [b.lo, b.hi] share a point."""
    return a.lo <= b.hi and b.lo <= a.hi


def inside_noise(a: Interval | None, b: Interval | None, replicates_a=None, replicates_b=None,
                 level: float = LEVEL) -> bool | None:
    """Whether the difference between two numbers lies inside the noise: with paired replicates of both
    (the same eval samples and the same resampled indices), their difference's percentile interval contains
    0; otherwise their intervals overlap. None when either has no interval (nothing can be said)."""
    if replicates_a is not None and replicates_b is not None:
        lo, hi = paired_difference(replicates_a, replicates_b, level)
        return lo <= 0.0 <= hi
    if a is None or b is None:
        return None
    return overlap(a, b)
