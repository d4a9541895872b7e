"""Read a split of a data set published on the Hugging Face hub with configs (``load_dataset(name, config,
split=…)``), from the hub or from a local directory in the same layout.

A local directory holds one sub-directory per config and, in it, the split as

- ``<split>.json`` / ``<split>.jsonl`` (JSON lines, or one JSON array), or
- ``<split>-00000-of-0000N.parquet`` … (the hub's own parquet shards, read in order), or
- ``<split>/*.parquet`` (the hub's converted-parquet layout).

So ``hf download muse-bench/MUSE-News --repo-type dataset --local-dir D`` gives a directory this
reads, and so does a test-written copy. Records are checked: a missing field is a one-line error
naming the file, the record and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

from unlearnkit.errors import UnlearnkitError


def is_local(location: str) -> bool:
    p = Path(location).expanduser()
    if p.is_dir():
        return True
    if p.exists() or str(location).startswith((".", "/", "~")) or "/" not in str(location):
        raise UnlearnkitError(f"data directory {location!r} does not exist: pass a directory in the published layout "
                              "(<config>/<split>.json or .parquet files) or a hub name org/name")
    return False


def _read_json(f: Path) -> list[dict]:
    try:
        text = f.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UnlearnkitError(f"{f} cannot be read as UTF-8 text ({type(e).__name__}): is it a data file?") from None
    try:
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise UnlearnkitError(f"{f} is not valid JSON ({e.msg} at line {e.lineno}): is the file truncated? "
                              "re-download or regenerate it") from None


def _read_parquet(files: list[Path]) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with `datasets`
        raise UnlearnkitError("reading parquet files needs pyarrow: pip install pyarrow") from None
    out: list[dict] = []
    for f in files:
        try:
            out += pq.read_table(f).to_pylist()
        except Exception as e:  # pyarrow raises its own error types on damaged files
            raise UnlearnkitError(f"{f} is not a readable parquet file ({type(e).__name__}): re-download it") from None
    return out


def read_local(root: Path, config: str, split: str) -> list[dict]:
    d = root / config
    for name in (f"{split}.json", f"{split}.jsonl"):
        if (d / name).is_file():
            return _read_json(d / name)
    shards = sorted(d.glob(f"{split}-*.parquet")) or sorted((d / split).glob("*.parquet"))
    if shards:
        return _read_parquet(shards)
    raise UnlearnkitError(f"split {config}/{split} not found in {str(root)!r}: expected {config}/{split}.json (JSON lines) "
                          f"or {config}/{split}-00000-of-00001.parquet, as the published data set lays it out")


def read_hub(name: str, config: str, split: str) -> list[dict]:  # pragma: no cover - needs network
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:
        raise UnlearnkitError(f"cannot load {name!r} config {config!r} split {split!r} from the hub "
                              f"({type(e).__name__}); download it and pass the local directory instead") from None
    return [dict(r) for r in ds]


def check_records(records: list, where: str, fields: dict[str, type]) -> list[dict]:
    """Every record an object with ``fields`` of the given types (list: a non-empty list of strings)."""
    if not records:
        raise UnlearnkitError(f"{where} is empty: re-download or regenerate the data")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise UnlearnkitError(f"record {i} of {where} is a {type(r).__name__}, not an object with "
                                  f"{', '.join(fields)}")
        for f, t in fields.items():
            v = r.get(f)
            ok = (isinstance(v, list) and v and all(isinstance(x, str) for x in v)) if t is list else \
                (isinstance(v, t) and not isinstance(v, bool))
            if not ok:
                raise UnlearnkitError(f"record {i} of {where} has no valid field {f!r} ({t.__name__}): every record "
                                      f"needs {', '.join(fields)} as the published layout has them")
    return records


class HubLayout:
    """Splits of one published data set (``name`` on the hub, or a local directory in its layout), cached."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.path: Path | None = Path(location).expanduser() if is_local(str(location)) else None
        self._cache: dict[tuple[str, str], list[dict]] = {}

    def read(self, config: str, split: str, fields: dict[str, type]) -> list[dict]:
        key = (config, split)
        if key not in self._cache:
            self._cache[key] = (read_local(self.path, config, split) if self.path is not None
                                else read_hub(self.location, config, split))
        return check_records(self._cache[key], f"{self.location} {config}/{split}", fields)

    def has(self, config: str, split: str) -> bool:
        if self.path is None:
            return True
        d = self.path / config
        return any((d / n).is_file() for n in (f"{split}.json", f"{split}.jsonl")) or \
            bool(list(d.glob(f"{split}-*.parquet"))) or (d / split).is_dir()
