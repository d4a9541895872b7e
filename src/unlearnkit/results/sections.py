"""Report sections: what each analysis adds to a run's report page, registered by the module that
writes the analysis's data.

    run directory → RunData (summary, the index's metrics, nested runs)
      → every registered Section, in order: figures (and, optionally, tables and a block under Files)

A :class:`Section` is a name, an order key (its place on the page: lower first), the run files it
reads (globs relative to the run directory; the section is skipped when none matches, and asked for
every run when it names none) and its builders. A module registers its section when it is imported::

    @report_section("g_effect", order=600, reads=("g_effect.json",))
    def g_effect_figures(rd: RunData) -> list[Figure]: ...

The report page (:mod:`unlearnkit.results.report`) knows no analysis: it shows what is registered.
The modules that register live above it (``analysis/``, ``judge/``) or beside it; the report recipe
(:mod:`unlearnkit.recipes.report`) imports them all, so every report it writes has every section.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnkit.io import read_json_or_none
from unlearnkit.registry import Registry
from unlearnkit.results.html import Figure, Table
from unlearnkit.results.index import MetricRow
from unlearnkit.results.noise import REPLICATES_FILE, Replicates
from unlearnkit.results.plots import svg_data_uri
from unlearnkit.results.store import Metric, Run


@dataclass
class RunData:
    """A run as the report sees it: its summary (table specs), its metrics, its nested runs."""

    run: Run
    summary: dict
    metrics: dict[str, dict[str, MetricRow]]
    children: list[RunData] = field(default_factory=list)

    @property
    def values(self) -> dict[str, dict[str, float | None]]:
        return {e: {k: m.value for k, m in ms.items()} for e, ms in self.metrics.items()}

    def higher_is_better(self, metric: str) -> bool | None:
        return next((ms[metric].higher_is_better for ms in self.metrics.values()
                     if metric in ms and ms[metric].higher_is_better is not None), None)

    def file(self, name: str) -> dict | None:
        data = read_json_or_none(self.run.layout.file(name))
        return data if isinstance(data, dict) else None

    @property
    def replicates(self) -> Replicates:
        return Replicates(self.run.layout.file(REPLICATES_FILE))


def load(run: Run) -> RunData:
    """The run's summary and metrics (from the index; from its result files when it is not indexed)."""
    metrics = run.metrics()
    if not metrics:
        metrics = {}
        for e in run.layout.entries():
            rec = run.record(e)
            if rec is not None:
                metrics[e] = {k: MetricRow(k, m.value, m.n, m.higher_is_better)
                              for k, m in ((k, Metric.of(v)) for k, v in rec.aggregates.items())}
    return RunData(run, run.summary(), metrics, [load(c) for c in run.children()])


@dataclass(frozen=True)
class Section:
    """One analysis's part of a run's report.

    ``figures``: the figures the run has data for (empty: none). ``tables``: for a run without a table
    spec in its summary, the tables that replace the generic entries table (the first section that
    returns some wins). ``files``: HTML shown under Files, before the list of links."""

    name: str
    order: int
    figures: Callable[[RunData], list[Figure]]
    reads: tuple[str, ...] = ()
    tables: Callable[[RunData], list[Table]] | None = None
    files: Callable[[RunData], str] | None = None

    def applies(self, rd: RunData) -> bool:
        """Whether the run has one of the files the section reads (always, when it names none)."""
        root = rd.run.layout.root
        return not self.reads or any(next(root.glob(p), None) is not None for p in self.reads)


SECTIONS: Registry[Section] = Registry("report section")


def register(section: Section) -> Section:
    """Add ``section`` to every report from now on (a name registered twice raises)."""
    SECTIONS.add(section.name, section)
    return section


def unregister(name: str) -> Section:
    return SECTIONS.remove(name)


def report_section(name: str, *, order: int, reads: tuple[str, ...] = (),
                   tables: Callable[[RunData], list[Table]] | None = None,
                   files: Callable[[RunData], str] | None = None) -> Callable:
    """Decorator: register the decorated ``RunData → list[Figure]`` function as section ``name``."""
    def deco(figures: Callable[[RunData], list[Figure]]) -> Callable[[RunData], list[Figure]]:
        register(Section(name, order, figures, tuple(reads), tables, files))
        return figures

    return deco


def figure_section(name: str, *, order: int, file: str, needs: str, draw: Callable[[dict], Any], title: str,
                   caption: str | Callable[[dict], str]) -> Callable[[RunData], list[Figure]]:
    """Register section ``name``: one figure ``draw(doc)`` of the run's JSON ``file`` (none when the file lacks a
    non-empty ``needs`` key); ``caption`` may depend on the document. Returns the section's builder."""
    def figures(rd: RunData) -> list[Figure]:
        doc = rd.file(file)
        if not doc or not doc.get(needs):
            return []
        return [svg_figure(draw(doc), title, caption(doc) if callable(caption) else caption)]

    register(Section(name, order, figures, (file,)))
    return figures


def registered() -> list[Section]:
    """The registered sections in page order (order key, then name)."""
    return sorted(SECTIONS.in_order(), key=lambda s: (s.order, s.name))


def applicable(rd: RunData) -> list[Section]:
    return [s for s in registered() if s.applies(rd)]


# ---------------------------------------------------------------------------------------------
# what builders need


def svg_figure(fig, title: str, caption: str) -> Figure:
    """A matplotlib figure (closed here) as a report figure: inline SVG, a title, a caption."""
    return Figure(title, caption, svg_data_uri(fig))


def png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
