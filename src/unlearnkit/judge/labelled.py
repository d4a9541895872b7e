"""The labelled set: hand-written cases with human-style labels, shipped with the package.

Each line of ``labelled.jsonl`` is a question about an invented person, the original model's
answer, an "unlearned" response and two labels: ``natural`` (fluent and coherent, whatever its
truth) and ``same_meaning`` (the response still conveys the original's key fact). Categories:
unchanged, rephrase, refusal, wrong_fluent, collapse (degenerate, fact gone) and collapse_fact
(degenerate, fact still there). How it was written: docs/judge.md.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from unlearnkit.config import StrictModel, format_validation_error
from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge.base import JudgeItem

Category = Literal["unchanged", "rephrase", "refusal", "wrong_fluent", "collapse", "collapse_fact"]


class LabelledCase(StrictModel):
    id: str
    category: Category
    question: str
    original: str
    response: str
    natural: bool
    same_meaning: bool
    note: str = ""

    def item(self) -> JudgeItem:
        return JudgeItem(id=self.id, question=self.question, response=self.response, reference=self.original)


def load_labelled(path: str | Path | None = None) -> list[LabelledCase]:
    """The shipped labelled set, or a JSONL file of the same layout."""
    if path is None:
        text = resources.files("unlearnkit.judge").joinpath("labelled.jsonl").read_text(encoding="utf-8")
        where = "unlearnkit/judge/labelled.jsonl"
    else:
        p = Path(path)
        if not p.is_file():
            raise UnlearnkitError(f"labelled set {str(p)!r} does not exist (give a JSONL file, one case per line)")
        text, where = p.read_text(encoding="utf-8"), str(p)
    cases = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(LabelledCase.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise UnlearnkitError(f"{where} line {n} is not valid JSON ({e.msg}): fix that line") from None
        except ValidationError as e:
            raise UnlearnkitError(f"{where} line {n}: {format_validation_error(e)}") from None
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise UnlearnkitError(f"{where} repeats case ids: give every case a unique id")
    return cases
