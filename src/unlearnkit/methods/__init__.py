"""The method registry, shared by language-model and image-classifier methods.

Each method lives in its own file under ``methods/llm/`` or ``methods/vision/`` and registers
itself there with :func:`register`. :func:`load_all` imports every such file, so the registry
(and the smoke test generated from it) always sees every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError
from unlearnkit.registry import Registry, import_modules

Domain = Literal["llm", "vision"]


@dataclass(frozen=True)
class MethodSpec:
    """A registered unlearning method.

    ``params`` is the typed hyperparameter model (defaults = the method's defaults);
    ``fn`` is the domain's entry point (see ``methods/llm/base.py`` and
    ``methods/vision/base.py`` for the signatures).
    """

    name: str
    domain: Domain
    summary: str
    params: type[StrictModel]
    fn: Callable[..., Any]
    paper: str = ""
    needs: tuple[str, ...] = field(default_factory=tuple)  # e.g. ("reference",), ("sampling",)


METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    METHODS.add(f"{spec.domain}:{spec.name}", spec)
    return spec


def load_all() -> None:
    """Import every method module so that each registers itself."""
    for sub in ("llm", "vision"):
        import_modules(f"unlearnkit.methods.{sub}")


def methods_for(domain: Domain) -> list[MethodSpec]:
    load_all()
    return [spec for key, spec in METHODS.items() if key.startswith(domain + ":")]


def get_method(name: str, domain: Domain) -> MethodSpec:
    load_all()
    key = f"{domain}:{name.lower()}"
    if key in METHODS:
        return METHODS.get(key)
    names = [s.name for s in methods_for(domain)]
    import difflib

    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnlearnkitError(f"unknown {domain} method {name!r}.{hint} Known: {', '.join(sorted(names))}")
