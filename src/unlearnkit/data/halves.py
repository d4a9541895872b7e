"""Validation / test halves of a benchmark, and subject blocks of a split.

Subjects of each evaluation set alternate between the halves (embedded data: records are grouped
by the subject name in the question, from the generator's meta.json; TOFU layout: blocks of 20
records per author when the split size is a multiple of 20; otherwise single records alternate).
Used by CRU (select on validation, report on test) and by continual unlearning (requests are
contiguous groups of whole subjects).
"""

from __future__ import annotations

from unlearnkit.data.tofu import QASource
from unlearnkit.errors import UnlearnkitError


def subject_names(source: QASource) -> list[str] | None:
    if source.path is None or not (source.path / "meta.json").is_file():
        return None
    from unlearnkit.io import read_json

    subj = read_json(source.path / "meta.json").get("subjects", {})
    names = {n for v in subj.values() for n in v}
    return sorted(names, key=len, reverse=True) or None


def subject_blocks(records: list[dict], names: list[str] | None) -> list[list[int]]:
    """Record indices grouped by subject, in first-appearance order."""
    if names:
        blocks: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            who = next((n for n in names if n in r["question"]), f"#{i}")
            blocks.setdefault(who, []).append(i)
        return list(blocks.values())
    size = 20 if len(records) % 20 == 0 and len(records) >= 40 else 1  # TOFU: 20 QA pairs per author
    return [list(range(s, min(s + size, len(records)))) for s in range(0, len(records), size)]


class HalfSource:
    """One half (0 = validation, 1 = test) of every split of a :class:`QASource`, by alternating subjects."""

    def __init__(self, source: QASource, part: int) -> None:
        self.source, self.part = source, part
        self.location = f"{source.location}#half{part}"
        self._names = subject_names(source)

    @property
    def refusals(self) -> list[str]:
        return self.source.refusals

    def split(self, name: str, fields: tuple[str, ...] | None = None) -> list[dict]:
        recs = self.source.split(name, fields)
        blocks = subject_blocks(recs, self._names)
        if len(blocks) < 2:
            raise UnlearnkitError(f"split {name!r} has one subject: it cannot be halved into validation and test")
        return [recs[i] for j, b in enumerate(blocks) if j % 2 == self.part for i in b]
