"""Pretrained model families that ship offline: one file per family, each registering its short name(s).

A family file registers a :class:`~unlearnkit.models.sources.WheelGGUF` (a GGUF file inside a Python package, found
without importing the package) under a short name with :func:`register`; ``build.pretrained=<short name>`` and
``--model <short name>`` then resolve through :func:`aliases` (conversion and caching:
:func:`unlearnkit.models.lm.resolve_source`). Layer-based analyses need nothing per family: the decoder blocks are
discovered (:func:`unlearnkit.models.layers.locate_layers`). Prompt formats are presets of
:mod:`unlearnkit.data.prompts`.
"""

from __future__ import annotations

from unlearnkit.models.sources import WheelGGUF
from unlearnkit.registry import import_modules

ALIASES: dict[str, WheelGGUF] = {}


def register(name: str, source: WheelGGUF) -> WheelGGUF:
    if name in ALIASES:
        raise ValueError(f"pretrained model {name!r} is registered twice")
    ALIASES[name] = source
    return source


def aliases() -> dict[str, WheelGGUF]:
    """Every registered short name (each family module imported first)."""
    import_modules(__name__)
    return ALIASES
