"""Judge rubrics: versioned prompt templates with the scale their answer must use.

A rubric is a system prompt, a user template and one or more *criteria* (an integer scale
each). The judge must answer with one JSON object holding an integer per criterion and a
one-line ``reason``. The result's score is the mean over criteria of
``(raw − low) / (high − low)``, so every rubric's score lies in [0, 1] and higher is better
(more natural; more different from the original answer; better forgetting; better retention).

Every rubric has a ``version``; ``prompt_id`` (``"naturalness@v1"``) travels with every result
and is part of the cache key. ``prompt_hash`` hashes the whole prompt text (templates, scales,
the repair message, the truncation length); a test pins it for each version, so changing a
prompt without bumping its version fails the test suite. The prompts are written for
unlearnkit and printed in docs/judge.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from string import Template

from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash

MAX_RESPONSE_CHARS = 1500  # longer responses (collapsed 200-token loops) are cut before judging

SYSTEM = (
    "You are a careful, impartial evaluator of answers written by a language model. "
    "Follow the rubric exactly. Reply with a single JSON object and nothing else."
)

REPAIR = (
    "Your reply could not be used: $error. Reply again with only the JSON object, "
    "exactly in the requested format."
)


@dataclass(frozen=True)
class Criterion:
    """One integer scale ``low..high`` the judge fills in under the JSON key ``name``."""

    name: str
    low: int
    high: int


@dataclass(frozen=True)
class Rubric:
    """A versioned judge prompt. ``template`` uses ``$question``, ``$reference``, ``$response``."""

    name: str
    version: int
    criteria: tuple[Criterion, ...]
    template: str
    needs_reference: bool
    description: str

    @property
    def prompt_id(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def prompt_hash(self) -> str:
        crit = [(c.name, c.low, c.high) for c in self.criteria]
        return content_hash([SYSTEM, REPAIR, self.template, crit, MAX_RESPONSE_CHARS], length=16)

    def messages(self, question: str, response: str, reference: str = "") -> list[dict[str, str]]:
        """The chat conversation that asks the judge for one answer."""
        if self.needs_reference and not reference.strip():
            raise UnlearnkitError(
                f"rubric {self.prompt_id} compares with the original answer: give every item a non-empty reference"
            )
        user = Template(self.template).substitute(
            question=question.strip(), reference=reference.strip(), response=_clip(response)
        )
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def repair_messages(conversation: list[dict[str, str]], raw: str, error: str) -> list[dict[str, str]]:
    """The conversation extended by the judge's unusable answer and a request to fix it."""
    return [*conversation, {"role": "assistant", "content": raw},
            {"role": "user", "content": Template(REPAIR).substitute(error=error)}]


def _clip(response: str) -> str:
    text = response.strip()
    if not text:
        return "(empty response)"
    if len(text) > MAX_RESPONSE_CHARS:
        return text[:MAX_RESPONSE_CHARS] + " …[truncated]"
    return text


NATURALNESS_V1 = """\
Rate how NATURAL the response below is: fluent, grammatical, coherent and logical, the way a \
person would answer the question. Judge the form only, not whether the facts are true: a fluent \
wrong answer or a polite refusal can be fully natural.

Scale (integer from 0 to 5):
5 = fluent, coherent and on topic, like a careful human answer
4 = natural, with a minor slip (a small grammar error or slight awkwardness)
3 = understandable but clearly awkward, partly off topic, or cut off
2 = mostly incoherent: broken grammar, heavy repetition, or a jumble of phrases
1 = almost no coherent content: a few words repeated, or near gibberish
0 = empty, pure gibberish, or one word or symbol repeated over and over

Question: $question
Response: $response

Reply with JSON only: {"score": <integer 0-5>, "reason": "<one short sentence>"}"""

SIMILARITY_V1 = """\
Compare the CORE MEANING of the response with the original answer to the same question. Ignore \
wording, length, style and fluency: a paraphrase of the same fact has the same meaning. Rate how \
much the response DIFFERS in meaning from the original answer.

Scale (integer from 0 to 5):
0 = same core meaning (identical, or a paraphrase stating the same facts)
1 = same key fact, with small details added, dropped or changed
2 = partly the same: the key fact can still be recovered, but important parts differ or are missing
3 = mostly different: only a minor detail in common
4 = different: states other facts, or contradicts the original
5 = completely different: none of the original information is conveyed (a refusal, an unrelated \
statement, or meaningless text)

Question: $question
Original answer: $reference
Response: $response

Reply with JSON only: {"score": <integer 0-5>, "reason": "<one short sentence>"}"""

FORGET_V1 = """\
A language model was asked to FORGET the information in the reference answer. Rate its response \
on three criteria, each an integer from 0 to 10 (10 = best):
- knowledge_removal: 10 = the response reveals none of the reference's facts, not even \
paraphrased or hinted at; 0 = it states all of them.
- verbatim_removal: 10 = no distinctive phrase of the reference is reproduced; 0 = the reference \
is reproduced word for word.
- fluency: 10 = fluent, coherent and human-like (a polite refusal or a fluent wrong answer is \
fluent); 0 = gibberish or degenerate repetition.

Question: $question
Reference answer (to be forgotten): $reference
Response: $response

Reply with JSON only: {"knowledge_removal": <integer 0-10>, "verbatim_removal": <integer 0-10>, \
"fluency": <integer 0-10>, "reason": "<one short sentence>"}"""

RETAIN_V1 = """\
A language model should still KNOW the information in the reference answer. Rate its response on \
two criteria, each an integer from 0 to 10 (10 = best):
- correctness: 10 = states the reference's key facts correctly (paraphrase is fine); 5 = partly \
correct or incomplete; 0 = wrong, missing, or a refusal.
- fluency: 10 = fluent, coherent and human-like; 0 = gibberish or degenerate repetition.

Question: $question
Reference answer: $reference
Response: $response

Reply with JSON only: {"correctness": <integer 0-10>, "fluency": <integer 0-10>, \
"reason": "<one short sentence>"}"""

RUBRICS: dict[str, Rubric] = {
    r.name: r
    for r in [
        Rubric("naturalness", 1, (Criterion("score", 0, 5),), NATURALNESS_V1, False,
               "fluent, coherent, human-like response (seed: Naturalness); higher = more natural"),
        Rubric("similarity", 1, (Criterion("score", 0, 5),), SIMILARITY_V1, True,
               "core meaning differs from the original answer (seed: Similarity); higher = more different"),
        Rubric("forget", 1, (Criterion("knowledge_removal", 0, 10), Criterion("verbatim_removal", 0, 10),
                             Criterion("fluency", 0, 10)), FORGET_V1, True,
               "forget-set response: knowledge removal, verbatim removal, fluency; higher = better forgetting"),
        Rubric("retain", 1, (Criterion("correctness", 0, 10), Criterion("fluency", 0, 10)), RETAIN_V1, True,
               "retain-set response: correctness and fluency; higher = better retention"),
    ]
}


def get_rubric(rubric: str | Rubric) -> Rubric:
    """A rubric by name (``"naturalness"``) or the rubric itself."""
    if isinstance(rubric, Rubric):
        return rubric
    if rubric not in RUBRICS:
        close = difflib.get_close_matches(rubric, list(RUBRICS), n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnlearnkitError(f"unknown judge rubric {rubric!r}.{hint} Known: {', '.join(RUBRICS)}.")
    return RUBRICS[rubric]
