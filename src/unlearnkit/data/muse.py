"""MUSE's published layout (``muse-bench/MUSE-News``, ``muse-bench/MUSE-Books``): one loader for the hub,
a local copy, and the embedded twin (:mod:`unlearnkit.data.news`, written in the same layout).

Configs and fields, as published: ``raw`` (splits ``forget``, ``retain1``, ``retain2``, ``holdout``;
field ``text``), ``verbmem`` (``forget``: ``prompt``, ``gt``), ``knowmem`` (``forget_qa``,
``retain_qa`` — ``retain2_qa`` in early revisions — and their ``*_icl`` few-shot examples:
``question``, ``answer``), ``privleak`` (``forget``, ``retain`` — ``retain2`` early —, ``holdout``:
``text``), ``scal`` and ``sust`` (``forget_1`` … ``forget_4``: ``text``).
"""

from __future__ import annotations

from pathlib import Path

from unlearnkit.data.hublayout import HubLayout
from unlearnkit.errors import UnlearnkitError

MUSE_HUB = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
FORGET_SPLITS = ("forget", "scal1", "scal2", "scal3", "scal4")
TEXT = {"text": str}
QA = {"question": str, "answer": str}
VERB = {"prompt": str, "gt": str}


class MuseSource:
    """The MUSE corpus at ``location`` (hub name or directory in the published layout)."""

    def __init__(self, location: str | Path) -> None:
        self.layout = HubLayout(location)
        self.location = self.layout.location

    @property
    def is_twin(self) -> bool:
        return self.layout.path is not None and (self.layout.path / "twin").is_dir()

    @property
    def refusals(self) -> list[str]:
        from unlearnkit.data.fictitious import REFUSALS

        return list(REFUSALS)

    def _first(self, config: str, splits: tuple[str, ...], fields: dict) -> list[dict]:
        for s in splits[:-1]:
            if self.layout.has(config, s):
                return self.layout.read(config, s, fields)
        return self.layout.read(config, splits[-1], fields)

    def raw(self, split: str) -> list[dict]:
        if split not in ("forget", "retain1", "retain2", "holdout"):
            raise UnlearnkitError(f"MUSE raw has no split {split!r}: forget, retain1, retain2, holdout")
        return self.layout.read("raw", split, TEXT)

    def forget(self, name: str) -> list[dict]:
        """The forget corpus of a run: ``forget`` (raw), or ``scalK`` (scalability: scal/forget_K, K = 1..4)."""
        if name == "forget":
            return self.raw("forget")
        if name in FORGET_SPLITS:
            return self.layout.read("scal", f"forget_{name[-1]}", TEXT)
        raise UnlearnkitError(f"MUSE has no forget split {name!r}: use one of {', '.join(FORGET_SPLITS)}")

    def sust(self, k: int) -> list[dict]:
        """Sustainability request k (1..4): sust/forget_k, disjoint from the others."""
        return self.layout.read("sust", f"forget_{k}", TEXT)

    def verbmem(self) -> list[dict]:
        return self.layout.read("verbmem", "forget", VERB)

    def knowmem(self, which: str) -> list[dict]:
        if which == "forget":
            return self.layout.read("knowmem", "forget_qa", QA)
        return self._first("knowmem", ("retain_qa", "retain2_qa"), QA)

    def knowmem_icl(self, which: str) -> list[dict]:
        if which == "forget":
            return self.layout.read("knowmem", "forget_qa_icl", QA)
        return self._first("knowmem", ("retain_qa_icl", "retain2_qa_icl"), QA)

    def privleak(self, split: str) -> list[dict]:
        if split == "retain":
            return self._first("privleak", ("retain", "retain2"), TEXT)
        return self.layout.read("privleak", split, TEXT)

    def twin(self, name: str) -> list[dict]:
        """Twin-only training files (``twin/qa_<group>``, ``twin/background``)."""
        if not self.is_twin:
            raise UnlearnkitError(f"{self.location} is not the embedded MUSE twin (no twin/ directory)")
        return self.layout.read("twin", name, QA if name.startswith("qa_") else TEXT)
