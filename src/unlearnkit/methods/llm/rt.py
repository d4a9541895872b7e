"""RT — retain tuning, post-hoc: fine-tune an unlearned model θ_u on the retain data for k steps.

The seed's CRU tables ("On the Fragility of Latent Knowledge") compare CRU with "+RT": the
unlearned model of the column's base method, further trained with the plain supervised loss
(mean answer-token NLL) on D_r. Like CRU, RT edits the θ_u that its ``base`` method made (any
training method, ``+<retain>`` naming rule included; ``unlearnkit run`` reuses that entry's
saved θ_u when the run has it with the same hyperparameters), so a run lists ``rt@npo`` with
``method_params: {rt@npo: {base: npo}}`` next to ``npo`` to get the "+RT" row of the NPO column.

Training: a copy of θ_u (θ_u itself is left untouched) trained with the shared loop (AdamW, the
run's device and precision) for exactly ``steps`` optimiser steps over shuffled retain batches
(passes repeat when k exceeds one epoch), constant learning rate, gradient clipping at
``max_grad_norm``. The retain set is the forget split's complement (retain90 for forget10). The
defaults are sized like the embedded benchmark's unlearning runs (25 steps of batch 8 at lr 2e-4,
the same optimiser budget as the base run); the seed does not state its RT budget.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pydantic import Field

from unlearnkit.config import Precision, StrictModel
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.posthoc import PostHoc, PostHocContext


class RTParams(StrictModel):
    base: str = Field("ga", description="method that makes θ_u (any training method, e.g. npo+kl)")
    base_params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters of the base method "
                                        "(on top of the run's defaults)")
    steps: int = Field(25, ge=1, description="k: optimiser steps of retain tuning")
    lr: float = Field(2e-4, gt=0, description="learning rate of retain tuning")
    batch_size: int = Field(8, ge=1, description="retain examples per step")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    precision: Precision = Field("auto", description="training precision (as every method's)")


def rt_apply(ctx: PostHocContext, params: RTParams):
    """θ_u fine-tuned on the retain split for ``params.steps`` steps; report: steps, NLL at the first and last step."""
    import torch

    from unlearnkit.data.tofu import RETAIN_OF
    from unlearnkit.engine.data import encode_records, make_loader, sft_loss
    from unlearnkit.engine.train import train_loop

    retain = ctx.source.split(RETAIN_OF[ctx.forget])
    model = copy.deepcopy(ctx.unlearned).requires_grad_(True)
    loader = make_loader(encode_records(ctx.tokenizer, retain), params.batch_size, ctx.tokenizer.pad_token_id,
                         shuffle=True, seed=params.seed)
    torch.manual_seed(params.seed)
    ctx.say(f"rt: {params.steps} steps of retain tuning on {RETAIN_OF[ctx.forget]} ({len(retain)} records)")
    log = train_loop(model, loader, sft_loss, lr=params.lr, epochs=math.ceil(params.steps / len(loader)),
                     weight_decay=params.weight_decay, max_grad_norm=params.max_grad_norm, schedule="constant",
                     desc="rt", max_steps=params.steps, precision=params.precision)
    model.eval()
    return model, {"steps": len(log.steps), "retain_split": RETAIN_OF[ctx.forget], "wall_time": log.wall_time,
                   "retain_nll_first": log.steps[0]["loss"], "retain_nll_last": log.steps[-1]["loss"]}


register(MethodSpec(
    name="rt", domain="llm", params=RTParams,
    summary="post-hoc retain tuning: fine-tune θ_u on the retain data for k steps (the seed's +RT rows)",
    fn=PostHoc(apply=rt_apply, smoke={"steps": 2, "batch_size": 4}),
    paper="baseline of Zhu et al., On the Fragility of Latent Knowledge (the seed's CRU tables, \"+RT\")",
    needs=("post-hoc", "retain data"),
))
