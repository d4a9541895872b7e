"""What an evaluation is configured by (every task's): the forget split, batch sizes, generation length,
MIA settings and the metric convention (docs/metrics.md).

The pieces of an evaluation live beside this: the pass cache (:mod:`unlearnkit.engine.cache`), the result
type and its aggregates (:mod:`unlearnkit.engine.result`), membership inference
(:mod:`unlearnkit.engine.mia`); a task defines its metrics (e.g. :mod:`unlearnkit.tasks.tofu_eval`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from unlearnkit.config import StrictModel


class MetricsConfig(StrictModel):
    """How metrics are defined where published implementations differ (docs/metrics.md)."""

    convention: Literal["unlearnkit", "openunlearning"] = Field(
        "unlearnkit", description="unlearnkit: our exact definitions; openunlearning: ES/EM/Min-K/Min-K++ without the "
        "EOS position and ES = 1/n when the last token is wrong, as OpenUnlearning computes them")


class EvalConfig(StrictModel):
    forget: str = Field("forget10", description="the forget split evaluated (the task's names; TOFU: forget01, "
                        "forget05, forget10)")
    batch_size: int = Field(64, ge=1, description="sequences per teacher-forced batch")
    generation_batch_size: int = Field(64, ge=1)
    max_new_tokens: int = Field(200, ge=1, description="greedy generation length cap for ROUGE-L (TOFU: 200)")
    min_k: float = Field(0.4, gt=0, le=1, description="fraction k of Min-K% / Min-K%++")
    truncate: bool = Field(False, description="cut answers that do not fit the model's context (else an error)")
    cache: bool = True
    mia_gradnorm: bool = Field(True, description="the GradNorm MIA (one backward pass per member and non-member)")
    gradnorm_p: Literal[1, 2, "inf"] = Field(2, description="the p of GradNorm's ‖∇θ NLL‖_p")
    metrics: MetricsConfig = MetricsConfig()
