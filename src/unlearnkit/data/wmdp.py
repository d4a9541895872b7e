"""WMDP's published layout: one loader for the hub, a local copy and the embedded twin (:mod:`unlearnkit.data.hazards`).

- questions: ``cais/wmdp``, configs ``wmdp-bio`` / ``wmdp-cyber`` / ``wmdp-chem``, split ``test``, fields
  ``question`` (str), ``choices`` (4 str), ``answer`` (int, the right choice's index);
- corpora (RMU's forget and retain data): ``cais/wmdp-corpora``, configs ``<domain>-forget-corpus`` and
  ``<domain>-retain-corpus``, split ``train``, field ``text`` (the bio forget corpus is released on
  request only: give a local directory holding ``bio-forget-corpus/train.jsonl``);
- utility: ``cais/mmlu``, config ``all`` (or one subject), split ``test``, the same fields plus ``subject``.

A local directory may hold all three (``wmdp-bio/…``, ``bio-forget-corpus/…``, ``all/…``), as the twin does.
"""

from __future__ import annotations

from pathlib import Path

from unlearnkit.data.hublayout import HubLayout
from unlearnkit.errors import UnlearnkitError

WMDP_HUB, CORPORA_HUB, MMLU_HUB = "cais/wmdp", "cais/wmdp-corpora", "cais/mmlu"
DOMAINS = ("bio", "cyber", "chem")
MC = {"question": str, "choices": list, "answer": int}
TEXT = {"text": str}


def check_mc(records: list[dict], where: str) -> list[dict]:
    for i, r in enumerate(records):
        if len(r["choices"]) != 4 or not 0 <= r["answer"] < 4:
            raise UnlearnkitError(f"record {i} of {where} is not a four-choice question with answer 0..3 (got "
                                  f"{len(r['choices'])} choices, answer {r['answer']})")
    return records


class WmdpSource:
    """Questions, corpora and the utility set of one WMDP domain."""

    def __init__(self, questions: str | Path, corpora: str | Path | None = None, mmlu: str | Path | None = None,
                 domain: str = "bio", mmlu_config: str = "all", mmlu_limit: int | None = None) -> None:
        local = Path(questions).expanduser().is_dir()
        self.questions_at = HubLayout(questions)
        self.corpora_at = HubLayout(corpora or (questions if local else CORPORA_HUB))
        self.mmlu_at = HubLayout(mmlu or (questions if local else MMLU_HUB))
        self.location = self.questions_at.location
        self.domain, self.mmlu_config, self.mmlu_limit = domain, mmlu_config, mmlu_limit

    @property
    def refusals(self) -> list[str]:
        from unlearnkit.data.fictitious import REFUSALS

        return list(REFUSALS)

    def questions(self) -> list[dict]:
        """The hazardous-knowledge questions (``wmdp-<domain>``, test)."""
        where = f"{self.location} wmdp-{self.domain}/test"
        return check_mc(self.questions_at.read(f"wmdp-{self.domain}", "test", MC), where)

    def forget_corpus(self) -> list[dict]:
        return self.corpora_at.read(f"{self.domain}-forget-corpus", "train", TEXT)

    def retain_corpus(self) -> list[dict]:
        return self.corpora_at.read(f"{self.domain}-retain-corpus", "train", TEXT)

    def utility(self) -> list[dict]:
        """The MMLU-style utility questions (the first ``mmlu_limit``)."""
        recs = check_mc(self.mmlu_at.read(self.mmlu_config, "test", MC), f"{self.mmlu_at.location} {self.mmlu_config}")
        return recs[: self.mmlu_limit] if self.mmlu_limit else recs
