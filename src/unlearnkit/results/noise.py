"""The interval a table cell shows and which cells of a column lie inside the noise of the best.

A column of a table spec with ``"ci": true`` prints ``value ± half-width`` (docs/metrics.md, "Intervals and
noise"): a row of several seeds gets the t-interval of their values; a row of one entry gets the bootstrap
interval stored in the row (``"ci": {metric: [lo, hi]}``, computed by :mod:`unlearnkit.results.intervals`
when the run's table was written; the spec's ``"intervals"`` holds the settings). Specs written before
intervals existed have neither, and render as they always did.

Comparisons (``unlearnkit runs compare``, the HTML report) mark, per column with a direction, the best method
row and every other method row whose difference to it lies inside the noise
(:func:`unlearnkit.metrics.intervals.inside_noise`): paired bootstrap replicates when both cells have them on
the same eval samples (same ``pairing`` key), else overlapping intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.intervals import RESAMPLES, Interval, inside_noise, t_interval

REFERENCE_LABELS = {"original", "retrain", "original θ_o", "retrain (ref.)"}  # rows that never compete
REPLICATES_FILE = "intervals.npz"  # <entry>|<metric> → (resamples,) bootstrap replicates
BEST, TIE = "*", "~"
TIE_LEGEND = (f"{TIE} the difference to that best lies inside the noise (paired bootstrap of the difference on the "
              "same eval samples, else overlapping 95 % intervals; docs/metrics.md)")
LEGEND = f"{BEST} best method row of its column; {TIE_LEGEND}"
INTERVAL_NOTE = ("x ± h: h = half-width of the 95 % interval — t over the row's seeds; one seed: percentile bootstrap "
                 "of the eval samples (1000 resamples, paired with Retrain); docs/metrics.md")
HTML_LEGEND = f"green: best method row of its column; {TIE_LEGEND}"


def is_reference(label: str) -> bool:
    return label.split(": ", 1)[-1].lower() in REFERENCE_LABELS


def cell_interval(vals: list[float], col: Mapping, spec_row: Mapping | None = None,
                  meta: Mapping | None = None) -> Interval | None:
    """The interval of a cell of a ``ci`` column: t over the row's k ≥ 2 seed values, or the row's stored
    bootstrap interval around its one value; None otherwise (the cell prints as before)."""
    if not col.get("ci") or not vals:
        return None
    if len(vals) > 1:
        return t_interval(vals)
    lohi = (spec_row or {}).get("ci", {}).get(col["metric"])
    if not lohi:
        return None
    return Interval(float(vals[0]), float(lohi[0]), float(lohi[1]), "bootstrap",
                    int((meta or {}).get("resamples", RESAMPLES)), float((meta or {}).get("level", 0.95)))


@dataclass(frozen=True)
class Spread:
    """What a cell knows about its noise: its interval and, for a one-entry row, its bootstrap replicates;
    replicates of cells with the same ``pairing`` key were drawn on the same resampled eval samples."""

    interval: Interval | None
    replicates: np.ndarray | None = None
    pairing: str | None = None


def within_noise(a: Spread, b: Spread) -> bool | None:
    """Whether a − b lies inside the noise (None: nothing can be said, no interval)."""
    paired = (a.replicates is not None and b.replicates is not None and a.pairing is not None
              and a.pairing == b.pairing and a.replicates.shape == b.replicates.shape)
    return inside_noise(a.interval, b.interval, a.replicates if paired else None, b.replicates if paired else None)


def best_of(values: Mapping[int, float], higher_is_better: bool | None) -> set[int]:
    """Rows holding a column's best value (ties all); none without a direction or with fewer than two rows."""
    if higher_is_better is None or len(values) < 2:
        return set()
    best = max(values.values()) if higher_is_better else min(values.values())
    return {i for i, v in values.items() if v == best}


def ties_with_best(best: set[int], spreads: Mapping[int, Spread | None]) -> set[int]:
    """Rows (other than the best) whose difference to the best row (the first, when several share the value)
    lies inside the noise."""
    if not best or spreads.get(min(best)) is None:
        return set()
    b = spreads[min(best)]
    return {i for i, s in spreads.items() if i not in best and s is not None and within_noise(s, b)}


class Replicates:
    """A run's bootstrap replicates (``intervals.npz``), read on first use; missing file → none."""

    def __init__(self, path: Path) -> None:
        self.path, self._data = path, None

    def get(self, entry: str, metric: str) -> np.ndarray | None:
        if self._data is None:
            self._data = read_replicates(self.path)
        return self._data.get(f"{entry}|{metric}")


def read_replicates(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if not k.startswith("__")}
    except (OSError, ValueError) as e:
        raise UnlearnkitError(f"{path} is not a readable replicates file ({e}): rerun the run's command to "
                              "rewrite it") from None
