"""The one results API: every evaluation, unlearning entry, calibration, study and vision entry is
written through :class:`Run`.

A run is a directory (its layout: :mod:`unlearnkit.results.layout`) plus rows in the run index
(:mod:`unlearnkit.results.index`). An **entry** is one unit of work of a run (a method × seed, a
scenario × method × seed, a pool model …) identified by its name and by the **hash of everything
that determines it** (method, hyperparameters, seed, the fingerprints of the models and data it
used, the evaluation settings). :meth:`Run.status` compares that hash with the stored one, so a
rerun reuses exactly the entries whose inputs did not change, recomputes the others, and never
mixes results of different configurations.

Writing an entry: per-sample values first, then ``results.json`` (atomically, last — its presence
means "done"), then the index row. A crash at any point leaves either the old entry or the new one.

In a job of several processes (torchrun, accelerate launch) only the main process writes: every
writing method is :func:`main_process_writes` — all processes arrive, the main one writes, all get
its return value — so every process reads the same files at the same point of the recipe.

Longer than 400 lines: :class:`Run` is the whole write protocol (status, write order, failures, the index rows,
nested runs), kept in one class so that no writer can bypass part of it; the output-directory and reindex helpers
beside it are the only other writers of run files.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from unlearnkit.engine import distributed as dist
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import (
    atomic_file,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    content_hash,
    ensure_dir,
    home,
    lock_path,
    locked,
    read_json_or_none,
    read_jsonl,
)
from unlearnkit.results.index import MetricRow, RunIndex
from unlearnkit.results.layout import NESTED_GROUPS, RunLayout, check_run_name, runs_root

Status = Literal["done", "failed", "changed", "missing"]


def main_process_writes(fn):
    """Every write of the results layer: in a job of several processes the main process writes (after all
    arrived) and the others receive its return value (:func:`unlearnkit.engine.distributed.on_main`)."""

    @functools.wraps(fn)
    def write(*args, **kwargs):
        return dist.on_main(lambda: fn(*args, **kwargs))

    return write


@dataclass(frozen=True)
class EntryInfo:
    """Identity of an entry: its name, and the hash of everything that determines its result."""

    name: str
    hash: str
    method: str | None = None
    seed: int | None = None
    params_hash: str | None = None
    group: str = ""
    model: str | None = None  # fingerprint of the evaluated model, when there is one
    inputs: dict | None = None  # what ``hash`` was computed from (to say what changed)

    def with_model(self, fingerprint: str | None) -> EntryInfo:
        return EntryInfo(**{**asdict(self), "model": fingerprint})


@dataclass
class Metric:
    value: float | None
    n: int | None = None
    higher_is_better: bool | None = None

    @classmethod
    def of(cls, v: Any) -> Metric:
        if isinstance(v, Metric):
            return v
        if isinstance(v, Mapping):
            return cls(_num(v.get("value")), v.get("n"), v.get("higher_is_better"))
        if hasattr(v, "value") and hasattr(v, "higher_is_better"):  # metrics.Aggregate
            return cls(_num(v.value), getattr(v, "n", None), v.higher_is_better)
        return cls(_num(v))


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if f != f else f


@dataclass
class EntryRecord:
    """What ``results.json`` holds."""

    entry: dict
    aggregates: dict[str, dict]
    provenance: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    per_sample: str | None = None

    def value(self, name: str) -> float | None:
        a = self.aggregates.get(name)
        return None if a is None else a.get("value")


class Run:
    """One run: its directory, its entries, and its rows in the index."""

    def __init__(self, layout: RunLayout, kind: str, name: str, parent: str | None = None) -> None:
        self.layout, self.kind, self.name, self.parent = layout, kind, name, parent

    # ----------------------------------------------------------------------------------------
    # opening

    @classmethod
    def open(cls, kind: str, name: str, config: dict | None = None, inputs: dict | None = None) -> Run:
        """Create (or reopen) run ``name`` of ``kind`` under ``$UNLEARNKIT_HOME/runs``."""
        layout = RunLayout.named(name)
        existing = read_json_or_none(layout.run_file)
        if existing and existing.get("kind") not in (None, kind):
            raise UnlearnkitError(f"run {name!r} already exists as a {existing['kind']!r} run: choose another name= "
                                  f"for this {kind} run")
        run = cls(layout, kind, name)
        run._register(config, inputs)
        return run

    @classmethod
    def open_at(cls, directory: Path | str, kind: str, config: dict | None = None, force: bool = False) -> Run:
        """A run in an explicit output directory (``--out DIR``). DIR must be new, empty, or a finished
        output of the same kind (then it is resumed); with ``force`` an existing one is moved aside
        to ``DIR.old-<time>`` first. Nothing in DIR is ever deleted."""
        d = Path(directory).expanduser().absolute()
        prepare_output_dir(d, kind, force)
        run = cls(RunLayout(d), kind, output_name(d))
        run._register(config, None)
        return run

    def child(self, kind: str, setting: str, config: dict | None = None, group: str = "calibration") -> Run:
        """A run nested in this one's directory under ``<group>/<setting>/`` (a calibration setting, an attack
        setting of a finished run)."""
        layout = self.layout.nested(group, setting)
        run = Run(layout, kind, f"{self.name}~{setting}", parent=self.name)
        run._register(config, None)
        return run

    @main_process_writes
    def _register(self, config: dict | None, inputs: dict | None) -> None:
        if not self.layout.run_file.is_file():
            write_run_file(self.layout.root, self.name, self.kind, self.parent)
        if config is not None:
            atomic_write_json(self.layout.config, config)
        if inputs is not None:
            atomic_write_json(self.layout.inputs, inputs)
        with RunIndex() as ix:
            ix.upsert_run(self.name, self.kind, self.layout.root.relative_to(home()).as_posix()
                          if self.layout.root.is_relative_to(home()) else str(self.layout.root), config, self.parent)

    @classmethod
    def find(cls, ref: str) -> Run:
        """A run by name or unique name prefix (indexed; a run directory not yet indexed is indexed now)."""
        with RunIndex() as ix:
            if ix.run(ref) is None and (runs_root() / ref).is_dir() and "/" not in ref:
                reindex_run(runs_root() / check_run_name(ref))
            row = ix.resolve(ref)
        return cls(RunLayout(row.directory), row.kind, row.name, row.parent)

    @classmethod
    def at(cls, directory: Path | str) -> Run:
        """The run in ``directory`` (a path printed by a recipe)."""
        d = Path(directory).expanduser()
        meta = read_json_or_none(d / "run.json")
        if not meta:
            raise UnlearnkitError(f"{str(d)!r} is not a finished unlearnkit run directory (no run.json): run the "
                                  "benchmark first, or name the run (`unlearnkit runs ls` lists them)")
        return cls(RunLayout(d), meta["kind"], meta["name"], meta.get("parent"))

    @classmethod
    def resolve(cls, ref: str) -> Run:
        """A run given as a directory path or as a name / unique prefix."""
        if "/" in ref or Path(ref).expanduser().is_dir() and (Path(ref).expanduser() / "run.json").is_file():
            return cls.at(ref)
        return cls.find(ref)

    # ----------------------------------------------------------------------------------------
    # entries

    def config(self) -> dict:
        cfg = read_json_or_none(self.layout.config)
        if cfg is None:
            raise UnlearnkitError(f"run {self.name!r} has no readable config.json: rerun the command that made it")
        return cfg

    def inputs(self) -> dict:
        from unlearnkit.io import from_home_relative

        raw = read_json_or_none(self.layout.inputs) or {}
        return {k: (from_home_relative(v) if isinstance(v, str) else v) for k, v in raw.items()}

    def record(self, entry: str) -> EntryRecord | None:
        """The entry's ``results.json`` (``None`` when missing or unreadable)."""
        data = read_json_or_none(self.layout.result_file(entry))
        if not isinstance(data, dict) or "aggregates" not in data:
            return None
        return EntryRecord(entry=data.get("entry", {}), aggregates=data["aggregates"],
                           provenance=data.get("provenance", {}), extra=data.get("extra", {}),
                           per_sample=data.get("per_sample"))

    def failure(self, entry: str) -> dict | None:
        return read_json_or_none(self.layout.failed_file(entry))

    def status(self, entry: EntryInfo) -> Status:
        rec = self.record(entry.name)
        if rec is not None:
            return "done" if rec.entry.get("hash") == entry.hash else "changed"
        fail = self.failure(entry.name)
        if fail is not None:
            return "failed" if fail.get("hash") == entry.hash else "changed"
        return "missing"

    def changed_inputs(self, entry: EntryInfo) -> str:
        """Which inputs of ``entry`` differ from those it was computed with (for the "recomputing" message)."""
        old = (self.record(entry.name) or EntryRecord({}, {})).entry.get("inputs") or \
            ((self.failure(entry.name) or {}).get("entry") or {}).get("inputs") or {}
        new = entry.inputs or {}
        keys = sorted(_diff_keys(old, new))
        return ", ".join(keys[:6]) + (" …" if len(keys) > 6 else "") if keys else "hash differs"

    @main_process_writes
    def write_log(self, entry: str, log: dict) -> Path:
        path = self.layout.log(entry)
        atomic_write_json(path, _jsonable(log))
        return path

    def read_log(self, entry: str) -> dict | None:
        return read_json_or_none(self.layout.log(entry))

    @contextlib.contextmanager
    def lock(self, entry: str) -> Iterator[None]:
        """Held while an entry is computed: a second process waits, then finds it done."""
        with locked(lock_path("runs", f"{content_hash(str(self.layout.root))}-{entry}")):
            yield

    @main_process_writes
    def write(self, entry: EntryInfo, aggregates: Mapping[str, Any], *, per_sample_rows: list[dict] | None = None,
              per_sample_arrays: Mapping[str, np.ndarray] | None = None, provenance: dict | None = None,
              extra: dict | None = None) -> EntryRecord:
        """Write a finished entry: per-sample values, then results.json (last), then the index."""
        ensure_dir(self.layout.results(entry.name))
        per_sample = None
        if per_sample_rows is not None:
            atomic_write_jsonl(self.layout.per_sample(entry.name, ".jsonl"), per_sample_rows)
            per_sample = "per_sample.jsonl"
        if per_sample_arrays is not None:
            with atomic_file(self.layout.per_sample(entry.name, ".npz")) as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, **per_sample_arrays)
            per_sample = "per_sample.npz"
        metrics = {k: Metric.of(v) for k, v in aggregates.items()}
        rec = EntryRecord(entry=asdict(entry), aggregates={k: asdict(m) for k, m in metrics.items()},
                          provenance=provenance or {}, extra=_jsonable(extra or {}), per_sample=per_sample)
        atomic_write_json(self.layout.result_file(entry.name), _jsonable(asdict(rec)))
        with contextlib.suppress(FileNotFoundError):
            self.layout.failed_file(entry.name).unlink()
        self._index(entry, "done", None, per_sample, provenance, metrics)
        return rec

    @main_process_writes
    def add_metrics(self, entry: str, metrics: Mapping[str, Any], extra: dict | None = None,
                    files: Mapping[str, list[dict]] | None = None) -> EntryRecord:
        """Add metrics computed later (e.g. judge scores) to a finished entry: its files first (JSON lines
        beside its results), then results.json with the merged aggregates, then the index. The entry's hash
        is unchanged — what it measured did not change, only what is known about it."""
        rec = self.record(entry)
        if rec is None:
            raise UnlearnkitError(f"entry {entry!r} of run {self.name!r} is not finished: run it before adding metrics")
        for name, rows in (files or {}).items():
            atomic_write_jsonl(self.layout.results(entry) / check_run_name(name, "file name"), rows)
        merged = {**rec.aggregates, **{k: asdict(Metric.of(v)) for k, v in metrics.items()}}
        rec = EntryRecord(entry=rec.entry, aggregates=merged, provenance=rec.provenance,
                          extra={**rec.extra, **_jsonable(extra or {})}, per_sample=rec.per_sample)
        atomic_write_json(self.layout.result_file(entry), _jsonable(asdict(rec)))
        e = rec.entry
        info = EntryInfo(name=entry, hash=e.get("hash", ""), method=e.get("method"), seed=e.get("seed"),
                         params_hash=e.get("params_hash"), group=e.get("group", ""), model=e.get("model"))
        self._index(info, "done", None, rec.per_sample, rec.provenance,
                    {k: Metric.of(v) for k, v in merged.items()})
        return rec

    @main_process_writes
    def write_failed(self, entry: EntryInfo, error: str) -> None:
        atomic_write_json(self.layout.failed_file(entry.name), {"error": error, "hash": entry.hash,
                                                               "entry": asdict(entry)})
        with contextlib.suppress(FileNotFoundError):
            self.layout.result_file(entry.name).unlink()
        self._index(entry, "failed", error, None, None, {})

    def _index(self, entry: EntryInfo, status: str, error: str | None, per_sample: str | None,
               provenance: dict | None, metrics: Mapping[str, Metric]) -> None:
        rows = [MetricRow(k, m.value, m.n, m.higher_is_better, k.split(".", 1)[0] if "." in k else "")
                for k, m in metrics.items()]
        with RunIndex() as ix:
            ix.upsert_entry(self.name, entry.name, status=status, grp=entry.group, method=entry.method,
                            seed=entry.seed, params_hash=entry.params_hash, hash=entry.hash, error=error,
                            model=entry.model, per_sample=f"results/{entry.name}/{per_sample}" if per_sample else None,
                            provenance=provenance, metrics=rows)

    def per_sample_rows(self, entry: str) -> list[dict]:
        return read_jsonl(self.layout.per_sample(entry, ".jsonl"))

    def per_sample_arrays(self, entry: str) -> dict[str, np.ndarray]:
        with np.load(self.layout.per_sample(entry, ".npz"), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    # ----------------------------------------------------------------------------------------
    # run-level files

    @main_process_writes
    def write_json(self, name: str, obj: Any) -> Path:
        path = self.layout.file(name)
        atomic_write_json(path, _jsonable(obj))
        return path

    @main_process_writes
    def write_arrays(self, name: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """A run-level ``.npz`` of named arrays (e.g. ``intervals.npz``: bootstrap replicates), atomically."""
        path = self.layout.file(name)
        with atomic_file(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @main_process_writes
    def write_text(self, name: str, text: str) -> Path:
        path = self.layout.file(name)
        atomic_write_text(path, text)
        return path

    @main_process_writes
    def write_summary(self, tables: list[dict], text: str, **extra: Any) -> None:
        """The run's tables as data (row → entries, column → metric; :mod:`unlearnkit.results.tables`
        renders them) and as text (``table.md``)."""
        atomic_write_json(self.layout.summary, _jsonable({"tables": tables, **extra}))
        atomic_write_text(self.layout.table, text + "\n")

    def summary(self) -> dict:
        return read_json_or_none(self.layout.summary) or {}

    def metrics(self) -> dict[str, dict[str, MetricRow]]:
        with RunIndex() as ix:
            return ix.metrics(self.name)

    def children(self) -> list[Run]:
        with RunIndex() as ix:
            return [Run(RunLayout(r.directory), r.kind, r.name, r.parent) for r in ix.runs() if r.parent == self.name]


@main_process_writes
def write_run_file(directory: Path, name: str, kind: str, parent: str | None = None) -> None:
    """``run.json``: what makes a directory an unlearnkit run of ``kind`` (and indexable)."""
    ensure_dir(directory)
    atomic_write_json(directory / "run.json", {"name": name, "kind": kind, "parent": parent,
                                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def output_name(directory: Path) -> str:
    """Index name of a run in an explicit output directory: its base name + a hash of its path."""
    d = Path(directory).expanduser().absolute()
    return f"{check_run_name(d.name, 'output directory name')}@{content_hash(str(d), 8)}"


@main_process_writes
def prepare_output_dir(d: Path, kind: str, force: bool = False) -> None:
    """Refuse to write into a non-empty directory that is not an unlearnkit output of ``kind``."""
    if d.exists() and not d.is_dir():
        raise UnlearnkitError(f"--out {str(d)!r} is a file: give a directory path")
    if not d.exists() or not any(d.iterdir()):
        return
    meta = read_json_or_none(d / "run.json")
    if not meta or meta.get("kind") != kind:
        what = f"a {meta['kind']!r} output" if meta else "not an unlearnkit output"
        raise UnlearnkitError(f"--out {str(d)!r} is not empty and is {what}: choose a new or empty directory "
                              f"(nothing in it was touched)")
    if force:
        aside = d.with_name(f"{d.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        d.rename(aside)
        from unlearnkit.io import warn

        warn(f"--force: the previous output was moved to {aside}")


# ---------------------------------------------------------------------------------------------
# rebuilding the index from the files


@main_process_writes
def reindex_run(root: Path, parent: str | None = None) -> int:
    """(Re)index one run directory and its nested runs from their files; returns the entry count."""
    meta = read_json_or_none(root / "run.json")
    if not meta:
        return 0
    run = Run(RunLayout(root), meta["kind"], meta["name"], meta.get("parent", parent))
    with RunIndex() as ix:
        ix.upsert_run(run.name, run.kind, root.relative_to(home()).as_posix(), read_json_or_none(run.layout.config),
                      run.parent)
    n = 0
    for name in run.layout.entries():
        rec, fail = run.record(name), run.failure(name)
        if rec is not None:
            e = rec.entry
            info = EntryInfo(name=name, hash=e.get("hash", ""), method=e.get("method"), seed=e.get("seed"),
                             params_hash=e.get("params_hash"), group=e.get("group", ""), model=e.get("model"))
            run._index(info, "done", None, rec.per_sample, rec.provenance,
                       {k: Metric.of(v) for k, v in rec.aggregates.items()})
            n += 1
        elif fail is not None:
            info = EntryInfo(name=name, hash=fail.get("hash", ""), **{k: v for k, v in fail.get("entry", {}).items()
                                                                        if k in ("method", "seed", "group")})
            run._index(info, "failed", fail.get("error"), None, None, {})
            n += 1
    for group in NESTED_GROUPS:
        if (root / group).is_dir():
            for sub in sorted((root / group).iterdir()):
                n += reindex_run(sub, run.name)
    return n


@main_process_writes
def reindex() -> int:
    """Rebuild the index from every run directory under the home; returns the number of runs."""
    root = runs_root()
    count = 0
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and (d / "run.json").is_file():
            reindex_run(d)
            count += 1
    return count


def _diff_keys(old: Any, new: Any, prefix: str = "") -> set[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: set[str] = set()
        for k in set(old) | set(new):
            out |= _diff_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return set() if old == new else {prefix.rstrip(".")}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # tensors, arrays
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj
