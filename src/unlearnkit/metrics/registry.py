"""The metric registry: every per-set metric a task evaluates, by name (docs/metrics.md, "Adding a metric").

A :class:`Metric` says how its per-sample values are computed (``fn`` of the named per-sample ``inputs`` an
evaluation provides for an eval set, or the values of another metric it aggregates differently: ``of``),
the eval sets (roles) it applies to, how its per-sample values aggregate (the mean unless ``aggregate``
says otherwise) and which direction is better. A task computes the metrics of a role by iterating
:func:`metrics_on`; the aggregates ``<role>.<key>`` are recomputed from per-sample values, for bootstrap
intervals too, through :func:`metric_at`. Tasks register their metrics where they define them
(``tasks/<task>_metrics.py``); a new metric is its function, one :func:`register_metric` call and a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from unlearnkit.errors import UnlearnkitError
from unlearnkit.registry import Registry

Aggregator = Callable[[Any], Any]  # per-sample values (samples,) or (resamples, samples) → number or (resamples,)


@dataclass(frozen=True)
class Metric:
    """One registered per-set metric.

    ``higher_is_better`` is its direction on a retain or utility set; ``reversed_on_forget`` flips it on the
    forget set (knowledge there should go down). ``key`` names it in the results (``<role>.<key>`` and the
    per-sample column; default: ``name``): two metrics may share a key on disjoint roles.
    """

    name: str
    roles: tuple[str, ...]
    higher_is_better: bool | None
    fn: Callable[..., Any] | None = None  # keyword arguments: the inputs named in ``inputs`` → per-sample values
    inputs: tuple[str, ...] = ()
    reversed_on_forget: bool = False
    key: str = ""
    of: str | None = None  # aggregate the per-sample values of this key instead (``fn`` is None)
    aggregate: Aggregator | None = None  # None: the mean over the samples
    forget_aggregate: Aggregator | None = None  # on the forget set (default: ``aggregate``)
    summary: str = ""

    @property
    def column(self) -> str:
        """Its name in the results: the per-sample column and the ``<role>.<column>`` aggregate."""
        return self.key or self.name

    @property
    def source(self) -> str:
        """The per-sample values its aggregate reads."""
        return self.of or self.column

    def direction(self, role: str) -> bool | None:
        """Higher is better on ``role`` (None: undirected)."""
        if self.higher_is_better is None:
            return None
        return self.higher_is_better != (role == "forget" and self.reversed_on_forget)

    def aggregator(self, role: str) -> Aggregator | None:
        """The aggregate function on ``role`` (None: the mean)."""
        return (self.forget_aggregate or self.aggregate) if role == "forget" else self.aggregate

    def values(self, inputs: Mapping[str, Any]) -> Any:
        """Per-sample values from ``inputs`` (name → value; only the names in :attr:`inputs` are read)."""
        return self.fn(**{name: inputs[name] for name in self.inputs})


METRICS: Registry[Metric] = Registry("metric")


def register_metric(m: Metric) -> Metric:
    """Add ``m`` (after every metric registered before it: the order of the per-sample columns and aggregates)."""
    _check(m)
    METRICS.add(m.name, m)
    return m


@contextmanager
def registered(m: Metric) -> Iterator[Metric]:
    """``m`` registered inside the ``with`` block only (a test's or a session's own metric)."""
    _check(m)
    with METRICS.added(m.name, m):
        yield m


def _check(m: Metric) -> None:
    if (m.fn is None) == (m.of is None):
        raise ValueError(f"metric {m.name!r} needs exactly one of fn (per-sample values) or of (another's values)")
    if not m.roles:
        raise ValueError(f"metric {m.name!r} applies to no eval set (roles)")
    clash = [o.name for o in METRICS.in_order() if o.column == m.column and set(o.roles) & set(m.roles)]
    if clash:
        raise ValueError(f"metric {m.name!r} names its results {m.column!r} on a role metric {clash[0]!r} already does")


def metric(name: str) -> Metric:
    """The registered metric ``name`` (an unknown name: one line with the close matches)."""
    return METRICS.get(name)


def metrics_on(role: str) -> list[Metric]:
    """The metrics registered for eval set ``role``, in registration order."""
    return [m for m in METRICS.in_order() if role in m.roles]


def metric_at(role: str, column: str) -> Metric | None:
    """The metric whose results on ``role`` are named ``column`` (None: not a registered metric)."""
    return next((m for m in metrics_on(role) if m.column == column), None)


class LazyInputs(Mapping):
    """Per-sample inputs of one eval set, each computed on first use from its thunk (name → () → value)."""

    def __init__(self, role: str, thunks: Mapping[str, Callable[[], Any]]) -> None:
        self.role, self._thunks, self._values = role, dict(thunks), {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._thunks:
            raise UnlearnkitError(f"a metric takes the input {name!r}, which eval set {self.role!r} does not provide: "
                                  f"use one of {', '.join(self._thunks)}")
        if name not in self._values:
            self._values[name] = self._thunks[name]()
        return self._values[name]

    def __iter__(self):
        return iter(self._thunks)

    def __len__(self) -> int:
        return len(self._thunks)
