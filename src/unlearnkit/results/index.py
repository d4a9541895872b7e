"""The run index: one SQLite database (``$UNLEARNKIT_HOME/index.sqlite``, WAL mode) that answers
"which runs, which entries, which numbers" without opening files by hand.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``):

    runs     name, kind, path (relative to the home), created, updated, config (JSON), parent
    entries  run, entry, grp, method, seed, params_hash, hash, status (done | failed), error,
             model (fingerprint), per_sample (path relative to the run), provenance (JSON), updated
    metrics  run, entry, eval_set, name, value, n, higher_is_better (1 / 0 / NULL)

The result files in the run directories are the source of truth; the index is written right after
them and can be rebuilt from them (:func:`unlearnkit.results.store.reindex`). Writers take SQLite's
write lock (``BEGIN IMMEDIATE``) with a generous busy timeout, so several processes writing at
once all succeed. An index from an older schema is migrated on open; one from a newer unlearnkit
is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import home

SCHEMA_VERSION = 2

SCHEMA_V1 = """
CREATE TABLE runs (name TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, created REAL NOT NULL,
                   updated REAL NOT NULL, config TEXT);
CREATE TABLE entries (run TEXT NOT NULL, entry TEXT NOT NULL, method TEXT, seed INTEGER, params_hash TEXT,
                      hash TEXT, status TEXT NOT NULL, error TEXT, model TEXT, per_sample TEXT, provenance TEXT,
                      updated REAL NOT NULL, PRIMARY KEY (run, entry));
CREATE TABLE metrics (run TEXT NOT NULL, entry TEXT NOT NULL, name TEXT NOT NULL, value REAL, n INTEGER,
                      higher_is_better INTEGER, PRIMARY KEY (run, entry, name));
"""

# version v → the statements that take an index from v to v + 1
MIGRATIONS: dict[int, str] = {
    1: """
ALTER TABLE runs ADD COLUMN parent TEXT;
ALTER TABLE entries ADD COLUMN grp TEXT NOT NULL DEFAULT '';
ALTER TABLE metrics ADD COLUMN eval_set TEXT NOT NULL DEFAULT '';
UPDATE metrics SET eval_set = substr(name, 1, instr(name, '.') - 1) WHERE instr(name, '.') > 0;
CREATE INDEX IF NOT EXISTS metrics_by_entry ON metrics (run, entry);
""",
}


@dataclass(frozen=True)
class RunRow:
    name: str
    kind: str
    path: str
    created: float
    updated: float
    done: int = 0
    failed: int = 0
    parent: str | None = None

    @property
    def directory(self) -> Path:
        return home() / self.path


@dataclass(frozen=True)
class MetricRow:
    name: str
    value: float | None
    n: int | None
    higher_is_better: bool | None
    eval_set: str = ""


@dataclass(frozen=True)
class EntryRow:
    run: str
    entry: str
    grp: str
    method: str | None
    seed: int | None
    params_hash: str | None
    hash: str | None
    status: str
    error: str | None
    model: str | None
    per_sample: str | None


def index_path() -> Path:
    return home() / "index.sqlite"


class RunIndex:
    """Connection to the run index of the current home (opened per use; cheap)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or index_path()
        self._conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 120000")
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._migrate()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._write() as c:
            v = self.version()
            if v == 0 and not c.execute("SELECT name FROM sqlite_master WHERE name='runs'").fetchone():
                for stmt in _statements(SCHEMA_V1):
                    c.execute(stmt)
                v = 1
            if v > SCHEMA_VERSION:
                raise UnlearnkitError(f"the run index {self.path} has schema version {v}, newer than this unlearnkit "
                                      f"understands ({SCHEMA_VERSION}): upgrade unlearnkit or use another UNLEARNKIT_HOME")
            while v < SCHEMA_VERSION:
                for stmt in _statements(MIGRATIONS[v]):
                    c.execute(stmt)
                v += 1
            c.execute(f"PRAGMA user_version = {v}")

    # ----------------------------------------------------------------------------------------
    # writing

    def upsert_run(self, name: str, kind: str, path: str, config: dict | None, parent: str | None = None) -> None:
        now = time.time()
        with self._write() as c:
            c.execute("INSERT INTO runs (name, kind, path, created, updated, config, parent) VALUES (?,?,?,?,?,?,?) "
                      "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, path=excluded.path, "
                      "updated=excluded.updated, config=excluded.config, parent=excluded.parent",
                      (name, kind, path, now, now, _dump(config), parent))

    def upsert_entry(self, run: str, entry: str, *, status: str, grp: str = "", method: str | None = None,
                     seed: int | None = None, params_hash: str | None = None, hash: str | None = None,
                     error: str | None = None, model: str | None = None, per_sample: str | None = None,
                     provenance: dict | None = None, metrics: Sequence[MetricRow] = ()) -> None:
        """Replace the entry's row and all its metrics in one transaction."""
        now = time.time()
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO entries (run, entry, grp, method, seed, params_hash, hash, status, error, "
                      "model, per_sample, provenance, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (run, entry, grp, method, seed, params_hash, hash, status, error, model, per_sample,
                       _dump(provenance), now))
            c.execute("DELETE FROM metrics WHERE run=? AND entry=?", (run, entry))
            c.executemany("INSERT INTO metrics (run, entry, eval_set, name, value, n, higher_is_better) "
                          "VALUES (?,?,?,?,?,?,?)",
                          [(run, entry, m.eval_set, m.name, m.value, m.n, _tri(m.higher_is_better)) for m in metrics])
            c.execute("UPDATE runs SET updated=? WHERE name=?", (now, run))

    def delete_run(self, name: str) -> None:
        with self._write() as c:
            for table, col in (("metrics", "run"), ("entries", "run"), ("runs", "name")):
                c.execute(f"DELETE FROM {table} WHERE {col}=?", (name,))  # noqa: S608 - fixed names

    # ----------------------------------------------------------------------------------------
    # reading

    def runs(self) -> list[RunRow]:
        """Every run, newest first, with its count of finished and failed entries."""
        rows = self._conn.execute(
            "SELECT r.name, r.kind, r.path, r.created, r.updated, "
            "COALESCE(SUM(e.status='done'), 0), COALESCE(SUM(e.status='failed'), 0), r.parent "
            "FROM runs r LEFT JOIN entries e ON e.run = r.name GROUP BY r.name ORDER BY r.updated DESC, r.name"
        ).fetchall()
        return [RunRow(*r) for r in rows]

    def run(self, name: str) -> RunRow | None:
        return next((r for r in self.runs() if r.name == name), None)

    def resolve(self, ref: str) -> RunRow:
        """A run by its exact name or a unique prefix of it."""
        runs = self.runs()
        exact = [r for r in runs if r.name == ref]
        if exact:
            return exact[0]
        hits = [r for r in runs if r.name.startswith(ref)]
        top = [r for r in hits if r.parent is None]  # a run's nested runs share its prefix: the run itself wins
        if len(hits) == 1 or len(top) == 1:
            return hits[0] if len(hits) == 1 else top[0]
        if not hits:
            known = ", ".join(r.name for r in runs[:8]) or "none yet"
            raise UnlearnkitError(f"no run named {ref!r} (or starting with it) in {home()}: `unlearnkit runs ls` lists "
                                  f"them (newest: {known})")
        raise UnlearnkitError(f"run prefix {ref!r} is ambiguous ({', '.join(r.name for r in hits[:6])}): "
                              "give more characters")

    def config(self, name: str) -> dict | None:
        row = self._conn.execute("SELECT config FROM runs WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def entries(self, run: str) -> list[EntryRow]:
        rows = self._conn.execute(
            "SELECT run, entry, grp, method, seed, params_hash, hash, status, error, model, per_sample "
            "FROM entries WHERE run=? ORDER BY entry", (run,)).fetchall()
        return [EntryRow(*r) for r in rows]

    def metrics(self, run: str) -> dict[str, dict[str, MetricRow]]:
        """entry → metric name → value (finished entries only)."""
        rows = self._conn.execute(
            "SELECT m.entry, m.name, m.value, m.n, m.higher_is_better, m.eval_set FROM metrics m "
            "JOIN entries e ON e.run = m.run AND e.entry = m.entry WHERE m.run=? AND e.status='done'", (run,)).fetchall()
        out: dict[str, dict[str, MetricRow]] = {}
        for entry, name, value, n, hib, eval_set in rows:
            out.setdefault(entry, {})[name] = MetricRow(name, value, n, None if hib is None else bool(hib), eval_set)
        return out


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _dump(obj) -> str | None:
    return None if obj is None else json.dumps(obj, default=str, sort_keys=True)


def _tri(v: bool | None) -> int | None:
    return None if v is None else int(bool(v))
