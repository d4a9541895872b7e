"""Load fictitious-facts data in TOFU's layout: the embedded set, a local copy, or the hub.

One loader serves all three. A *source* is

- a local directory holding ``<split>.json`` files (JSON lines, one record per line; the
  layout of https://huggingface.co/datasets/locuslab/TOFU and of the embedded benchmark), or
- a hub name (``locuslab/TOFU``), read with ``datasets.load_dataset(name, split_name)``.

Records are checked on load: a missing field or a wrong type is a one-line error that names
the split, the record and the fix.
"""

from __future__ import annotations

import difflib
import json
from functools import cached_property
from pathlib import Path

from unlearnkit.errors import UnlearnkitError

FORGET_SPLITS = ("forget01", "forget05", "forget10")
RETAIN_OF = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
HOLDOUT_OF = {"forget01": "holdout01", "forget05": "holdout05", "forget10": "holdout10"}
EVAL_SPLITS = (
    *(f"{f}_perturbed" for f in FORGET_SPLITS), "retain_perturbed",
    "real_authors_perturbed", "world_facts_perturbed",
)
SPLITS = (
    "full", *FORGET_SPLITS, *RETAIN_OF.values(), *HOLDOUT_OF.values(), *EVAL_SPLITS,
    "real_authors", "world_facts",
)
BASE_FIELDS = ("question", "answer")
EVAL_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
HUB_NAME = "locuslab/TOFU"


def check_split_name(split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    if split not in allowed:
        close = difflib.get_close_matches(split, allowed, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnlearnkitError(f"unknown split {split!r}.{hint} Valid splits: {', '.join(allowed)}")
    return split


def required_fields(split: str) -> tuple[str, ...]:
    return EVAL_FIELDS if split.endswith("_perturbed") else BASE_FIELDS


def validate_records(records: list[dict], split: str, fields: tuple[str, ...] | None = None) -> list[dict]:
    """Check every record has the fields this split needs, with the right types."""
    if not records:
        raise UnlearnkitError(f"split {split!r} is empty: regenerate the data or choose another split")
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise UnlearnkitError(f"record {i} of split {split!r} is a {type(r).__name__}, not an object: each line "
                                  "of the split file must be one JSON object with the TOFU fields")
        for f in fields or required_fields(split):
            if f not in r or r[f] is None:
                raise UnlearnkitError(
                    f"record {i} of split {split!r} has no field {f!r}: every record needs "
                    f"{', '.join(fields or required_fields(split))} (TOFU format)"
                )
            v = r[f]
            if f == "perturbed_answer":
                if not (isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
                    raise UnlearnkitError(
                        f"record {i} of split {split!r}: 'perturbed_answer' must be a non-empty list of strings"
                    )
            elif not isinstance(v, str):
                raise UnlearnkitError(f"record {i} of split {split!r}: field {f!r} must be a string, got {type(v).__name__}")
    return records


class QASource:
    """A data set in TOFU layout, from a local directory or the hub."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        p = Path(location).expanduser()
        if p.is_dir():
            self.path: Path | None = p
        elif str(location) == HUB_NAME or (not p.exists() and "/" in str(location) and not str(location).startswith((".", "/", "~"))):
            self.path = None  # hub name
        else:
            raise UnlearnkitError(
                f"TOFU data directory {str(location)!r} does not exist: pass a directory with "
                f"<split>.json files, the hub name {HUB_NAME!r}, or build the embedded set with `unlearnkit data build`"
            )
        self._cache: dict[str, list[dict]] = {}

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def _read_local(self, split: str) -> list[dict]:
        assert self.path is not None
        for name in (f"{split}.json", f"{split}.jsonl"):
            f = self.path / name
            if f.is_file():
                try:
                    text = f.read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as e:
                    raise UnlearnkitError(f"{f} cannot be read as UTF-8 text ({type(e).__name__}): is it a data file?") from None
                if text.startswith("["):  # a JSON array is accepted too
                    try:
                        return json.loads(text)
                    except json.JSONDecodeError as e:
                        raise UnlearnkitError(f"{f} is not valid JSON ({e.msg} at line {e.lineno}): is the file "
                                              "truncated? regenerate or re-download it") from None
                out = []
                for ln, line in enumerate(text.splitlines(), 1):
                    if line.strip():
                        try:
                            out.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            raise UnlearnkitError(f"{f}:{ln} is not valid JSON ({e.msg}); each line must be one record") from None
                return out
        raise UnlearnkitError(
            f"split {split!r} not found in {str(self.path)!r} (expected {split}.json, one JSON record per line)"
        )

    def _read_hub(self, split: str) -> list[dict]:  # pragma: no cover - needs network
        try:
            import datasets

            ds = datasets.load_dataset(self.location, split)
        except Exception as e:
            raise UnlearnkitError(
                f"cannot load {self.location!r} split {split!r} from the hub ({type(e).__name__}); "
                "download it and pass the local directory instead"
            ) from None
        part = ds["train"] if "train" in ds else ds[list(ds)[0]]
        return [dict(r) for r in part]

    def split(self, name: str, fields: tuple[str, ...] | None = None) -> list[dict]:
        check_split_name(name)
        if name not in self._cache:
            recs = self._read_local(name) if self.is_local else self._read_hub(name)
            self._cache[name] = recs
        return validate_records(self._cache[name], name, fields)

    @cached_property
    def refusals(self) -> list[str]:
        """Refusal answers for refusal-based methods (``idontknow.jsonl`` or the built-in list)."""
        if self.path is not None and (self.path / "idontknow.jsonl").is_file():
            lines = (self.path / "idontknow.jsonl").read_text(encoding="utf-8").splitlines()
            out = [ln.strip() for ln in lines if ln.strip()]
            if out:
                return out
        from unlearnkit.data.fictitious import REFUSALS

        return list(REFUSALS)
