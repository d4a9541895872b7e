"""The result of an evaluation (:class:`EvalResult`: per-sample values and aggregates named
``<set>.<metric>``) and its aggregates recomputed from per-sample values: the reported number, or one
replicate per bootstrap resample (:func:`bootstrap_statistic`, docs/metrics.md "Intervals")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from unlearnkit import metrics as M
from unlearnkit.metrics.registry import metric_at


@dataclass
class EvalResult:
    """Per-sample values and aggregates of one model on one forget setting."""

    forget: str
    per_sample: dict[str, dict[str, list]] = field(default_factory=dict)  # role → metric → values
    aggregates: dict[str, M.Aggregate] = field(default_factory=dict)  # "role.metric" → Aggregate
    generations: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> float:
        return self.aggregates[key].value

    def get(self, key: str, default: float | None = None) -> float | None:
        a = self.aggregates.get(key)
        return a.value if a is not None else default

    def add(self, key: str, value: float, n: int, hib: bool | None) -> None:
        self.aggregates[key] = M.Aggregate(value=float(value), n=int(n), higher_is_better=hib, name=key)

    def to_json(self) -> dict:
        return {
            "forget": self.forget,
            "aggregates": {k: {"value": a.value, "n": a.n, "higher_is_better": a.higher_is_better}
                           for k, a in self.aggregates.items()},
            "notes": self.notes,
        }

    def per_sample_rows(self) -> list[dict]:
        rows = []
        for role, metrics in self.per_sample.items():
            n = len(next(iter(metrics.values()))) if metrics else 0
            for i in range(n):
                row = {"role": role, "index": i}
                row.update({k: v[i] for k, v in metrics.items()})
                if role in self.generations:
                    row["generation"] = self.generations[role][i]
                rows.append(row)
        return rows

    @classmethod
    def from_json(cls, agg: dict, rows: list[dict]) -> EvalResult:
        res = cls(forget=agg["forget"], notes=agg.get("notes", {}))
        for k, a in agg["aggregates"].items():
            res.add(k, a["value"], a["n"], a["higher_is_better"])
        for row in rows:
            role = row["role"]
            ps = res.per_sample.setdefault(role, {})
            for k, v in row.items():
                if k in ("role", "index"):
                    continue
                if k == "generation":
                    res.generations.setdefault(role, []).append(v)
                else:
                    ps.setdefault(k, []).append(v)
        return res



def sample_mean(values: Any) -> float | np.ndarray:
    """The mean over the samples (the last axis): a float, or one mean per bootstrap resample."""
    m = np.mean(np.asarray(values, dtype=np.float64), axis=-1)
    return float(m) if np.ndim(m) == 0 else m


def set_aggregate(key: str) -> tuple[str, str, Callable[[Any], Any]]:
    """(eval set, per-sample value, aggregate function) of the per-set aggregate ``key`` = "<set>.<metric>": as the
    registered metric of that set aggregates (:mod:`unlearnkit.metrics.registry`), else the mean of its values."""
    role, name = key.split(".", 1)
    m = metric_at(role, name)
    if m is None:
        return role, name, sample_mean
    return role, m.source, m.aggregator(role) or sample_mean


def aggregate_of(key: str, per_sample: dict[str, dict[str, Any]]) -> float | np.ndarray:
    """Aggregate ``key`` of per-sample values (set → metric → (samples,) or (resamples, samples)): the number
    the evaluation reports, or one replicate per bootstrap resample."""
    role, src, fn = set_aggregate(key)
    return fn(per_sample[role][src])


class SampleArrays:
    """The per-sample values of an :class:`EvalResult` as float arrays (converted once, on first use); a value
    that is missing, not numeric or NaN somewhere is absent (its aggregate gets no interval)."""

    def __init__(self, res: EvalResult) -> None:
        self.per_sample, self._arrays = res.per_sample, {}

    def array(self, role: str, name: str) -> np.ndarray | None:
        if (role, name) not in self._arrays:
            v = self.per_sample.get(role, {}).get(name)
            try:
                a = None if v is None else np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                a = None
            ok = a is not None and a.ndim == 1 and a.size > 0 and not np.isnan(a).any()
            self._arrays[(role, name)] = a if ok else None
        return self._arrays[(role, name)]

    def has(self, *pairs: tuple[str, str]) -> bool:
        return all(self.array(role, name) is not None for role, name in pairs)

    def sizes(self, pairs) -> dict[str, int]:
        return {role: int(self.array(role, name).size) for role, name in pairs}

    def resampled(self, idx, pairs) -> dict[str, dict[str, np.ndarray]]:
        """set → value → (resamples, n): the values at the resampled indices of their set."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for role, name in pairs:
            out.setdefault(role, {})[name] = self.array(role, name)[idx[role]]
        return out


def bootstrap_statistic(key: str, res: EvalResult, ref: EvalResult | None, members: str = "forget",
                        nonmembers: str = "holdout") -> tuple[dict[str, int], Callable] | None:
    """(eval-set sizes, statistic) recomputing aggregate ``key`` of ``res`` on resampled eval samples with the
    functions the evaluation uses (the statistic gets ``idx``: set → (resamples, n) indices; θ_r's per-sample
    values are resampled with the same indices: paired); None when ``key`` cannot be recomputed from the
    stored per-sample values (then it gets no interval). The MIA AUCs, PrivLeak and every ``<set>.<metric>``
    aggregate; a task adds its composites (:meth:`unlearnkit.tasks.base.Task.statistic`)."""
    ps, rs = SampleArrays(res), SampleArrays(ref) if ref is not None else None
    attack = "min_k" if key == "privleak" else key[len("mia.auc_"):] if key.startswith("mia.auc_") else None
    if attack is not None:
        pairs = [(members, f"mia_{attack}"), (nonmembers, f"mia_{attack}")]

        def auc(src: SampleArrays, idx) -> Any:
            r = src.resampled(idx, pairs)
            return M.mia_auc(r[members][f"mia_{attack}"], r[nonmembers][f"mia_{attack}"])

        if not ps.has(*pairs) or (key == "privleak" and not (rs is not None and rs.has(*pairs))):
            return None
        return ps.sizes(pairs), ((lambda idx: M.privleak(auc(ps, idx), auc(rs, idx))) if key == "privleak"
                                 else (lambda idx: auc(ps, idx)))
    if "." in key and ps.has(set_aggregate(key)[:2]):
        role, src, fn = set_aggregate(key)
        return ps.sizes([(role, src)]), lambda idx: fn(ps.resampled(idx, [(role, src)])[role][src])
    return None
