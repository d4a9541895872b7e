"""The in-context relearning attack ``incontext``: question–answer pairs of other forget records before the question.

Protocol: record i of every role is asked with ``k`` examples drawn from ``target.forget_train`` placed before its
question. A forget record is eligible unless its question is the asked record's question, or its question or answer
contains the asked record's answer (so an example never equals — or gives away — what is asked). The examples are
``random.Random(f"{seed}/{i}").sample`` of the eligible records (all of them when fewer than ``k`` are eligible),
kept in ``forget_train`` order, so the same seed and index give the same prompt. The prompt is one plain block per
example, then the question::

    Question: <example question>
    Answer: <example answer>

    Question: <example question>
    Answer: <example answer>

    <the asked question>

(blocks separated by one blank line; the model's own prompt format is applied around the whole text). Sources: Lynch
et al. 2024, "Eight Methods to Evaluate Robust Unlearning in LLMs" (arXiv:2402.16835), test in-context relearning;
Łucki et al. 2024, "An Adversarial Perspective on Machine Unlearning for AI Safety" (arXiv:2409.18025).
Knobs: :class:`InContextParams`.
"""

from __future__ import annotations

import random

from pydantic import Field

from unlearnkit.attacks import AttackSpec, AttackTarget, register
from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError


class InContextParams(StrictModel):
    k: int = Field(3, ge=1, description="question–answer examples of other forget records placed before the question")


def eligible(pool: list[dict], record: dict) -> list[dict]:
    """The records of ``pool`` that may be shown before ``record``: not its question, and neither question nor
    answer containing its answer."""
    answer = str(record.get("answer", "")).strip()

    def leaks(r: dict) -> bool:
        return bool(answer) and (answer in str(r.get("question", "")) or answer in str(r.get("answer", "")))

    return [r for r in pool if r.get("question") != record.get("question") and not leaks(r)]


def incontext_question(pool: list[dict], i: int, record: dict, k: int, seed: int) -> str:
    """The question record ``i`` is asked with: up to ``k`` eligible examples of ``pool``, then its question."""
    cands = eligible(pool, record)
    picked = sorted(random.Random(f"{seed}/{i}").sample(range(len(cands)), min(k, len(cands))))
    blocks = [f"Question: {cands[j]['question']}\nAnswer: {cands[j]['answer']}" for j in picked]
    return "\n\n".join([*blocks, record["question"]])


def _apply(target: AttackTarget, params: InContextParams) -> AttackTarget:
    pool = [r for r in target.forget_train if "question" in r and "answer" in r]
    if not pool:
        raise UnlearnkitError("the incontext attack needs question–answer forget records to show as examples: pass "
                              "AttackTarget(forget_train=[...])")
    asked = {role: [incontext_question(pool, i, r, params.k, target.seed) for i, r in enumerate(recs)]
             for role, recs in target.sets.items()}
    return target.with_questions(lambda role, recs: lambda i, r: asked[role][i])


register(AttackSpec(
    name="incontext", kind="prompt", apply=_apply, params=InContextParams,
    summary="k question–answer pairs of other forget records placed before the question (in-context relearning)",
    source="Lynch et al. 2024 (arXiv:2402.16835); Łucki et al. 2024 (arXiv:2409.18025)",
))
