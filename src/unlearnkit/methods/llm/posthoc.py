"""Post-hoc language-model methods: they edit an unlearned model θ_u (made by another method)
instead of training one — e.g. CRU, which keeps only some of θ_u's layers.

A post-hoc method registers a :class:`PostHoc` as ``MethodSpec.fn``. Its params name the
``base`` method that makes θ_u (any registered training method, with the ``+<retain>`` naming
rule) and the base's hyperparameters; ``apply(ctx, params)`` returns the edited model and a
JSON-serialisable report. ``unlearnkit run`` makes θ_u with the base method (or reuses that
entry's saved θ_u when the run has it with the same hyperparameters) and then applies the
method; the registry smoke test drives every post-hoc method through this same path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from unlearnkit.data.tofu import QASource


@dataclass
class PostHocContext:
    """What a post-hoc method receives. ``original`` and ``unlearned`` must not be modified."""

    original: torch.nn.Module  # θ_o
    unlearned: torch.nn.Module  # θ_u from the base method
    tokenizer: Any
    source: QASource  # the benchmark data (evaluation splits included)
    forget: str  # forget split name
    reference: torch.nn.Module  # θ_r, retrained without the forget split (for FQ)
    eval_config: Any  # unlearnkit.engine.evaluate.EvalConfig
    say: Callable[[str], None] = field(default=lambda s: None)


@dataclass(frozen=True)
class PostHoc:
    """The entry point of a post-hoc method stored in ``MethodSpec.fn``."""

    apply: Callable[[PostHocContext, Any], tuple[torch.nn.Module, dict]]
    smoke: dict[str, Any] = field(default_factory=dict)  # params for the registry smoke test (keep it fast)


def is_post_hoc(spec) -> bool:
    return isinstance(spec.fn, PostHoc)
