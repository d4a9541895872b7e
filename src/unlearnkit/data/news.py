"""MUSE's embedded twin: news-style articles about invented people, in MUSE's published layout.

Every person is drawn with the fictitious-facts generator (:mod:`unlearnkit.data.fictitious`: an
invented name and ``facts_per_person`` facts — birthplace, profession, a book, an award, …). Their
article is a short news story that states every fact in a news sentence; KnowMem questions ask for
one fact each, answered by its short value ("Draskholm", "a glassblower"). People are split as
MUSE splits its corpus:

- ``forget`` — the articles to unlearn (members of the privacy-leak test);
- ``retain1`` — trained on, and given to the unlearner as D_r;
- ``retain2`` — trained on, never given to the unlearner: KnowMem-retain measures utility on them;
- ``holdout`` — never trained on (the privacy-leak non-members);
- ``background`` — the base model's own training text (it learns the news style and the QA format
  there, as a pretrained model would).

The files follow ``muse-bench/MUSE-News`` (one directory per config, one file per split, JSON lines):
``raw/{forget,retain1,retain2,holdout}`` (``text``), ``verbmem/forget`` (``prompt``: the first
``verbmem_prompt_words`` words of a forget article, ``gt``: the rest), ``knowmem/{forget_qa,
retain_qa,forget_qa_icl,retain_qa_icl}`` (``question``, ``answer``), ``privleak/{forget,retain,
holdout}`` (``text``), ``scal/forget_1..4`` (nested growing forget sets) and ``sust/forget_1..4``
(disjoint quarters). The twin adds what MUSE's published data leaves to its target model's
training: ``twin/qa_{forget,retain1,retain2,background}`` (QA pairs the models are trained on —
another question template than KnowMem's, so KnowMem asks with a paraphrase) and
``twin/background`` (the base model's articles). ``meta.json`` records every file's SHA-256.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from unlearnkit import __version__
from unlearnkit.config import Seed, StrictModel
from unlearnkit.data.fictitious import FACT_TYPES, FactType, _Words, cached_data_dir
from unlearnkit.io import atomic_write_bytes, bytes_sha256, content_hash

GROUPS = ("forget", "retain1", "retain2", "holdout", "background")

_LEADS = ("{n} made headlines this week.", "Readers of this paper will know the name {n}.",
          "{n} was in the news again on Monday.", "A familiar face returned to the news: {n}.")
_CLOSERS = ("Further details are expected next week.", "{n} declined to comment further.",
            "The story is still developing.", "Neighbours described the day as remarkable.")
NEWS: dict[str, tuple[str, ...]] = {
    "birthplace": ("{n} was born in {v}, records show.", "Born in {v}, {n} never forgot the town."),
    "birth_year": ("{n} was born in {v}, according to the archive.", "The year {v} saw the birth of {n}."),
    "profession": ("{n} works as {v}, colleagues confirmed.", "By trade {n} is {v}, the report said."),
    "parents": ("{n}'s father was {f} and the mother was {m}.", "{n} grew up with {f} for a father and {m} "
                                                                  "for a mother."),
    "book": ("{n}'s book {v} sold out within a week.", "Critics praised {v}, the book by {n}."),
    "award": ("Last night {n} received {v} in the capital.", "{n} was honoured with {v} at a ceremony."),
    "genre": ("{n} writes {v}, the publisher said.", "Known for {v}, {n} drew a large crowd."),
    "mentor": ("{n} was mentored by {v}, who also attended.", "{v} once taught {n} the craft."),
    "spouse": ("{n} is married to {v}, a spokesperson said.", "{n} arrived with {v}, the spouse."),
    "home": ("{n} now lives in {v} and rarely gives interviews.", "These days {n} lives quietly in {v}."),
}


class NewsConfig(StrictModel):
    """Sizes of MUSE's embedded twin (people per split; one article each)."""

    seed: Seed = 0
    n_forget: int = Field(16, ge=4, le=2000, description="people whose articles are forgotten (4 scal/sust parts)")
    n_retain1: int = Field(24, ge=1, le=10_000, description="retain people given to the unlearner (D_r)")
    n_retain2: int = Field(16, ge=1, le=10_000, description="retain people for KnowMem-retain (not given)")
    n_holdout: int = Field(16, ge=1, le=10_000, description="never-trained people (privacy-leak non-members)")
    n_background: int = Field(16, ge=2, le=10_000, description="the base model's people")
    facts_per_person: int = Field(3, ge=1, le=10)
    verbmem_prompt_words: int = Field(12, ge=1, le=200, description="words of a forget article given as the "
                                      "VerbMem prompt (the rest is the true continuation)")
    n_icl: int = Field(3, ge=0, le=10, description="in-context QA examples (knowmem/*_icl, from background people)")


@dataclass
class Person:
    name: str
    facts: list[tuple[FactType, dict[str, str]]]  # (fact type, rendered slots)


def _short(slots: dict[str, str]) -> str:
    return slots["v"] if "v" in slots else f"{slots['f']} and {slots['m']}"


def _person(words: _Words, k: int) -> Person:
    name = words.person()
    return Person(name, [(ft, ft.render(ft.sample(words))) for ft in words.rng.sample(FACT_TYPES, k)])


def article(p: Person, rng: random.Random) -> str:
    body = [rng.choice(NEWS[ft.name]).format(n=p.name, **slots) for ft, slots in p.facts]
    return " ".join([rng.choice(_LEADS).format(n=p.name), *body, rng.choice(_CLOSERS).format(n=p.name)])


def qa(p: Person, template: int) -> list[dict]:
    """One question per fact (question template ``template`` of the fact type), answered by the short value."""
    return [{"question": ft.questions[template].format(n=p.name), "answer": _short(slots)} for ft, slots in p.facts]


def _verbmem(text: str, words: int) -> dict:
    w = text.split(" ")
    return {"prompt": " ".join(w[:words]), "gt": " ".join(w[words:])}


def generate(cfg: NewsConfig | None = None) -> dict[str, list[dict]]:
    """``<config>/<split>`` → records, deterministic in ``cfg.seed``."""
    cfg = cfg or NewsConfig()
    rng = random.Random(cfg.seed)
    words = _Words(rng)
    sizes = {"forget": cfg.n_forget, "retain1": cfg.n_retain1, "retain2": cfg.n_retain2, "holdout": cfg.n_holdout,
             "background": cfg.n_background}
    people = {g: [_person(words, cfg.facts_per_person) for _ in range(n)] for g, n in sizes.items()}
    texts = {g: [article(p, rng) for p in ps] for g, ps in people.items()}
    out: dict[str, list[dict]] = {f"raw/{g}": [{"text": t} for t in texts[g]] for g in GROUPS[:4]}
    out["verbmem/forget"] = [_verbmem(t, cfg.verbmem_prompt_words) for t in texts["forget"]]
    out["knowmem/forget_qa"] = [r for p in people["forget"] for r in qa(p, 1)]
    out["knowmem/retain_qa"] = [r for p in people["retain2"] for r in qa(p, 1)]
    icl = [r for p in people["background"] for r in qa(p, 1)][: cfg.n_icl]
    out["knowmem/forget_qa_icl"] = out["knowmem/retain_qa_icl"] = icl
    out.update({f"privleak/{s}": [{"text": t} for t in texts[g]]
                for s, g in (("forget", "forget"), ("retain", "retain2"), ("holdout", "holdout"))})
    quarters = [texts["forget"][i::4] for i in range(4)]
    for j in range(4):
        out[f"scal/forget_{j + 1}"] = [{"text": t} for q in quarters[: j + 1] for t in q]
        out[f"sust/forget_{j + 1}"] = [{"text": t} for t in quarters[j]]
    for g in ("forget", "retain1", "retain2", "background"):
        out[f"twin/qa_{g}"] = [r for p in people[g] for r in qa(p, 0)]
    out["twin/background"] = [{"text": t} for t in texts["background"]]
    return out


def data_hash(cfg: NewsConfig) -> str:
    return content_hash({"news": cfg.model_dump(), "generator": 1})


def write(files: dict[str, list[dict]], directory: Path, meta: dict) -> None:
    """JSON lines per split (``<config>/<split>.json``) and ``meta.json`` with every file's SHA-256."""
    digests = {}
    for name, records in files.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / f"{name}.json", data)
        digests[f"{name}.json"] = bytes_sha256(data)
    meta = {**meta, "sizes": {k: len(v) for k, v in files.items()}, "files": digests}
    atomic_write_bytes(directory / "meta.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def build(cfg: NewsConfig | None = None, force: bool = False) -> Path:
    """The twin under ``$UNLEARNKIT_HOME/data/muse-twin-<hash>``; reused when present and intact."""
    cfg = cfg or NewsConfig()
    meta = {"generator": "unlearnkit.data.news", "version": __version__, "config": cfg.model_dump()}
    return cached_data_dir(f"muse-twin-{data_hash(cfg)}", "embedded MUSE twin",
                           lambda tmp: write(generate(cfg), tmp, meta), force)
