"""``unlearnkit report RUN [RUN…] [-o FILE]`` and ``unlearnkit run … report=true``: the self-contained HTML
report of one run (default ``<run dir>/report.html``) or of several runs side by side
(:mod:`unlearnkit.results.report`).

Importing this module imports every module that registers a report section
(:mod:`unlearnkit.results.sections`), so every report written through it has every analysis's figures."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.analysis import (  # noqa: F401 - each registers its report section
    attacks_report,
    calibration,
    continual,
    layers,
    reliability_report,
    track,
)
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash, home
from unlearnkit.judge import report as judge_report  # noqa: F401 - registers its report section
from unlearnkit.results import vision_report  # noqa: F401 - registers its report section
from unlearnkit.results.report import write_report
from unlearnkit.results.store import Run


@dataclass
class Report:
    path: Path
    runs: list[str]
    seconds: float
    size: int  # bytes


def report(refs: list[str], out: str | None = None) -> Report:
    """Resolve the runs (names, unique prefixes or directories) and write their report."""
    if not refs:
        raise UnlearnkitError("name at least one run (`unlearnkit runs ls` lists them)")
    runs: list[Run] = []
    for ref in refs:
        run = Run.resolve(ref)
        if all(r.layout.root != run.layout.root for r in runs):
            runs.append(run)
    target = output_path(out) if out is not None else None
    if target is None and len(runs) > 1:
        target = home() / "reports" / f"report-{len(runs)}-runs-{content_hash([r.name for r in runs], 10)}.html"
    t0 = time.perf_counter()
    path = write_report(runs, target)
    return Report(path, [r.name for r in runs], time.perf_counter() - t0, path.stat().st_size)


def report_run(run: Run) -> Report:
    """The report of one run in its directory (what ``report=true`` writes at the end of a run)."""
    return report([str(run.layout.root)])


def output_path(out: str) -> Path:
    """``-o FILE``: a file path in an existing, writable directory (never a directory itself)."""
    if not out.strip():
        raise UnlearnkitError("-o was given an empty path: name the HTML file to write, e.g. -o report.html")
    p = Path(out).expanduser().absolute()
    if p.is_dir():
        raise UnlearnkitError(f"-o {out!r} is a directory: give a file path, e.g. -o {Path(out) / 'report.html'}")
    if p.parent.exists() and not p.parent.is_dir():
        raise UnlearnkitError(f"-o {out!r}: {str(p.parent)!r} is not a directory: choose another path")
    if not p.parent.is_dir():
        raise UnlearnkitError(f"-o {out!r}: the directory {str(p.parent)!r} does not exist: create it or choose "
                              "another path")
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UnlearnkitError(f"-o {out!r}: cannot write there (permission denied): choose another path")
    return p
