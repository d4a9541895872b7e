"""The run-directory layout, declared once.

Every recipe, analysis and command finds the files of a run through :class:`RunLayout`; nothing
else builds paths inside a run directory. A run lives in ``$UNLEARNKIT_HOME/runs/<name>``::

    run.json                 kind, name, creation time (what `unlearnkit runs` needs to index it)
    config.json              the full validated config of the latest invocation
    inputs.json              data / model paths the run used (inside the home: "$UNLEARNKIT_HOME/...")
    results/<entry>/         results.json (aggregates, entry identity and hash, provenance; written
                             last, so its presence means "done"), per_sample.jsonl or per_sample.npz,
                             failed.json for an entry that failed, extra files of the entry
    models/<entry>/          θ_u (safetensors + tokenizer), or models/<entry>.sha256 (save_models=false)
    logs/<entry>.json        training log of the entry
    summary.json, table.md   the run's tables (row → entries, columns → metrics) and their text
    calibration/<setting>/   calibrated entries (a nested run layout: results/<entry>/ …)
    attacks/<setting>/       attacked entries (`unlearnkit attack`; a nested run layout)
    trackers/                experiment-tracker logs (tracker=tensorboard|wandb|mlflow), one session per entry
    report.html              the run's self-contained HTML report (`unlearnkit report`, report=true)
    <files>                  run-level artefacts (curves, plots): :meth:`RunLayout.file`

An entry name is a single path component (``ga__s0``, ``all_matched__ft__s1``); run names too
(:func:`check_run_name`; a config's ``name`` field is checked by its type, :data:`RunName`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import home

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]{0,127}$")


def check_run_name(name: str, what: str = "run name") -> str:
    """A run (or entry) name must be one safe path component: it can never point outside the home."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise UnlearnkitError(f"{what} {name!r} is not allowed: use one path component of letters, digits and "
                              "'._+@=-' (at most 128 characters, not starting with '.' or containing '..')")
    return name


def _valid_run_name(name: str) -> str:
    try:
        return check_run_name(name)
    except UnlearnkitError as e:
        raise ValueError(str(e)) from None


RunName = Annotated[str, AfterValidator(_valid_run_name)]  # a config's ``name`` field: check_run_name at validation


def runs_root() -> Path:
    return home() / "runs"


def entry_name(method: str, seed: int, group: str = "") -> str:
    """A file-system-safe entry name: ``npo+kl`` seed 3 → ``npo_plus_kl__s3``; ``kl@TS=2`` →
    ``kl_at_TS-2__s0``; with a group (vision scenario): ``all_matched__ft__s0``."""
    safe = method.replace("+", "_plus_").replace("@", "_at_").replace("=", "-")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", safe)
    return f"{group}__{safe}__s{seed}" if group else f"{safe}__s{seed}"


NESTED_GROUPS = ("calibration", "attacks")  # the folders of a run that hold nested runs


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory."""

    root: Path

    @classmethod
    def named(cls, name: str) -> RunLayout:
        return cls(runs_root() / check_run_name(name))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def table(self) -> Path:
        return self.root / "table.md"

    def results(self, entry: str) -> Path:
        return self.root / "results" / check_run_name(entry, "entry name")

    def result_file(self, entry: str) -> Path:
        return self.results(entry) / "results.json"

    def failed_file(self, entry: str) -> Path:
        return self.results(entry) / "failed.json"

    def per_sample(self, entry: str, suffix: str = ".jsonl") -> Path:
        return self.results(entry) / f"per_sample{suffix}"

    def model(self, entry: str) -> Path:
        return self.root / "models" / check_run_name(entry, "entry name")

    def model_digest(self, entry: str) -> Path:
        return self.root / "models" / f"{check_run_name(entry, 'entry name')}.sha256"

    def log(self, entry: str) -> Path:
        return self.root / "logs" / f"{check_run_name(entry, 'entry name')}.json"

    def calibration(self, setting: str) -> RunLayout:
        return self.nested("calibration", setting)

    def nested(self, group: str, setting: str) -> RunLayout:
        """A nested run: ``<group>/<setting>/`` (group: one of :data:`NESTED_GROUPS`)."""
        if group not in NESTED_GROUPS:
            raise ValueError(f"unknown nested-run group {group!r}")
        return RunLayout(self.root / group / check_run_name(setting, f"{group} setting"))

    @property
    def trackers(self) -> Path:
        return self.root / "trackers"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def file(self, name: str) -> Path:
        """A run-level artefact (``continual.json``, ``curves.png`` …)."""
        return self.root / check_run_name(name, "file name")

    def entries(self) -> list[str]:
        """Entry names that have a results directory (finished or not)."""
        d = self.root / "results"
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []
