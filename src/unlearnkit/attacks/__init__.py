"""Attacks: interventions that try to bring forgotten knowledge back to an unlearned model.

An attack is registered in its own file under ``attacks/`` (the way methods are), with its protocol,
knobs and source in that file's docstring. Two kinds:

- ``weights``: returns another model (fine-tuned on part of the forget set, quantised, …);
- ``prompt``: keeps the weights and rewrites the question each evaluation record is asked with
  (a jailbreak wrapper, the paraphrase, token noise, …).

Every attack is a function ``apply(target, params) -> target`` over an :class:`AttackTarget`: the model,
its tokenizer, the evaluation sets (role → records), the forget records an attacker may train on, a seed,
the training precision and the retain records a benign-relearning attacker may train on. :func:`get_attack` resolves a name; :func:`attack_specs` lists them all
(``unlearnkit ls attacks``). The metric-reliability study (``unlearnkit reliability``) applies its
interventions through this registry, so each intervention has one implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError
from unlearnkit.registry import Registry, import_modules

Question = Callable[[int, dict], str]


def original_question(i: int, r: dict) -> str:
    return r["question"]


@dataclass
class AttackTarget:
    """What an attack sees, and what it returns (a changed copy; the input is never modified in place)."""

    model: Any
    tokenizer: Any
    sets: dict[str, list[dict]]  # role (forget, retain, …) → evaluation records
    forget_train: list[dict] = field(default_factory=list)  # forget records the attacker may train on
    seed: int = 0
    precision: str = "auto"  # training precision of weight attacks that train (as a method's `precision`)
    questions: dict[str, Question] = field(default_factory=dict)  # role → question(i, record); absent: original
    retain_train: list[dict] = field(default_factory=list)  # retain records an attacker may train on (relearn_benign)

    def question(self, role: str) -> Question:
        return self.questions.get(role, original_question)

    def with_model(self, model) -> AttackTarget:
        return replace(self, model=model)

    def with_questions(self, make: Callable[[str, list[dict]], Question]) -> AttackTarget:
        """A copy whose question for each role is ``make(role, records)``."""
        return replace(self, questions={role: make(role, recs) for role, recs in self.sets.items()})


class NoParams(StrictModel):
    """An attack without knobs."""


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack. ``apply(target, params)`` returns the attacked target; ``params`` is the typed
    knob model (defaults = the protocol's defaults)."""

    name: str
    kind: Literal["weights", "prompt"]
    summary: str
    apply: Callable[[AttackTarget, Any], AttackTarget]
    params: type[StrictModel] = NoParams
    source: str = ""


ATTACKS: Registry[AttackSpec] = Registry("attack")


def register(spec: AttackSpec) -> AttackSpec:
    ATTACKS.add(spec.name, spec)
    return spec


def load_all() -> None:
    """Import every attack module so that each registers itself."""
    import_modules(__name__)


def get_attack(name: str) -> AttackSpec:
    load_all()
    return ATTACKS.get(name)


def attack_specs() -> list[AttackSpec]:
    load_all()
    return [spec for _, spec in ATTACKS.items()]


def check_names(names: list[str]) -> list[str]:
    """``names`` if every one is a registered attack; else the one-line error listing the known ones."""
    known = [a.name for a in attack_specs()]
    bad = [n for n in names if n not in known]
    if bad:
        raise UnlearnkitError(f"unknown attack {bad[0]!r}; known: {', '.join(known)}")
    return names


def _valid_names(names: list[str]) -> list[str]:
    try:
        return check_names(names)
    except UnlearnkitError as e:
        raise ValueError(str(e)) from None


# A config field naming attacks of the registry (checked when the config is validated).
AttackNames = Annotated[list[str], AfterValidator(_valid_names)]


def apply_attack(name: str, target: AttackTarget, params: StrictModel | dict | None = None) -> AttackTarget:
    """``target`` under attack ``name`` with ``params`` (a dict is validated by the attack's params model)."""
    spec = get_attack(name)
    if not isinstance(params, StrictModel):
        params = spec.params(**(params or {}))
    return spec.apply(target, params)
