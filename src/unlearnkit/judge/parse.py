"""Parse and validate a judge's answer: one JSON object, an integer per criterion, a reason.

Rules (golden tests in tests/test_judge_parse.py):

- the answer is the first JSON object in the text that decodes (code fences and words around
  it are allowed: ``Sure! {"score": 4, "reason": "fine"}`` parses);
- each criterion's value must be an integer within its scale; ``4``, ``4.0`` and ``"4"`` are 4,
  while ``4.5``, ``true``, ``null`` and ``7`` on a 0–5 scale are errors;
- ``reason`` must be a non-empty string; whitespace runs (newlines too) become one space;
- keys beyond the criteria and ``reason`` are ignored.

Anything else raises :class:`AnswerError` with a short message, which the judge loop sends back
to the judge (one repair turn per retry) and finally records with the raw text — an unusable
answer is *missing*, never a score of 0.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from unlearnkit.judge.rubrics import Rubric

_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


class AnswerError(ValueError):
    """The judge's text is not a valid answer for the rubric (message is sent back to it)."""


@dataclass(frozen=True)
class ParsedAnswer:
    criteria: dict[str, int]  # raw integer per criterion, on the rubric's scale
    reason: str
    score: float  # mean over criteria of (raw − low) / (high − low), in [0, 1]


def extract_json_object(text: str) -> dict:
    """The first ``{...}`` in ``text`` that decodes as a JSON object."""
    cleaned = _FENCE.sub(" ", text)
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", cleaned):
        try:
            obj, _ = decoder.raw_decode(cleaned, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise AnswerError("no JSON object found")


def _integer(value, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or value is None:
        raise AnswerError(f'"{key}" must be an integer from {low} to {high}, got {json.dumps(value)}')
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise AnswerError(f'"{key}" must be an integer from {low} to {high}, got {json.dumps(value)}') from None
    if not isinstance(value, int | float) or not math.isfinite(value) or float(value) != int(value):
        raise AnswerError(f'"{key}" must be an integer from {low} to {high}, got {json.dumps(value)}')
    if not low <= int(value) <= high:
        raise AnswerError(f'"{key}" must be an integer from {low} to {high}, got {int(value)}')
    return int(value)


def normalise(raw: dict[str, int], rubric: Rubric) -> float:
    """Mean over criteria of ``(raw − low) / (high − low)``: 0 worst, 1 best."""
    parts = [(raw[c.name] - c.low) / (c.high - c.low) for c in rubric.criteria]
    return sum(parts) / len(parts)


def parse_answer(text: str, rubric: Rubric) -> ParsedAnswer:
    """Validate the judge's ``text`` against ``rubric`` (raises :class:`AnswerError`)."""
    obj = extract_json_object(text)
    missing = [c.name for c in rubric.criteria if c.name not in obj] + (["reason"] if "reason" not in obj else [])
    if missing:
        raise AnswerError(f"the JSON object lacks {', '.join(json.dumps(k) for k in missing)}")
    raw = {c.name: _integer(obj[c.name], c.name, c.low, c.high) for c in rubric.criteria}
    reason = obj["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise AnswerError('"reason" must be a non-empty one-line string')
    return ParsedAnswer(raw, " ".join(reason.split()), normalise(raw, rubric))
