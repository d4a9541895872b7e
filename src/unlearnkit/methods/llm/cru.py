"""CRU — keep the non-fragile layers of θ_u, the rest from θ_o (seed: "On the Fragility of Latent
Knowledge: Layer-wise Influence under Unlearning in LLMs"; SPEC §3).

Post-hoc: θ_u comes from the ``base`` method. On a validation half of the benchmark (alternating
subjects), each parameter group (embedding, every transformer layer, head) is patched alone into
θ_o and scored by FQ and MU; groups are ranked by rank(FQ) + rank(MU); the top-k are taken from
θ_u and the rest from θ_o, with k chosen on the validation half by the same rank-sum over
k = 0..K (or fixed with ``k``). k = K gives θ_u, k = 0 gives θ_o. See
``unlearnkit.analysis.layers`` for the details and ``unlearnkit layers --cru`` for the analysis.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.posthoc import PostHoc, PostHocContext


class CRUParams(StrictModel):
    base: str = Field("ga", description="method that makes θ_u (any training method, e.g. npo+kl)")
    base_params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters of the base method "
                                        "(on top of the run's defaults)")
    k: int | None = Field(None, ge=0, description="groups kept from θ_u; None = chosen on the validation half")
    units: Literal["groups", "layers"] = Field(
        "groups", description="candidates: all groups (embedding, layers, head) or transformer layers only")
    seed: int = 0


def cru_apply(ctx: PostHocContext, params: CRUParams):
    from unlearnkit.analysis.groups import locate_layers
    from unlearnkit.analysis.layers import HalfSource, cru, patched_copy, transformer_layers
    from unlearnkit.engine.evaluate import compare_to_reference, evaluate, state_fingerprint

    lm = locate_layers(ctx.original)
    units = lm.groups() if params.units == "groups" else transformer_layers(lm)
    val = HalfSource(ctx.source, 0)
    ref = evaluate(ctx.reference, ctx.tokenizer, val, ctx.eval_config,
                   model_id="mem-" + state_fingerprint(ctx.reference))
    compare_to_reference(ref, ref)
    groups, report = cru(ctx.original, ctx.unlearned, ctx.tokenizer, val, ctx.eval_config, ref, units, params.k, ctx.say)
    return patched_copy(ctx.original, ctx.unlearned, groups, lm), report


register(MethodSpec(
    name="cru", domain="llm", params=CRUParams,
    summary="post-hoc: keep the top-k layers of θ_u (rank(FQ)+rank(MU) on validation), the rest from θ_o",
    fn=PostHoc(apply=cru_apply, smoke={"units": "layers", "k": 1}),
    paper="Zhu et al., On the Fragility of Latent Knowledge: Layer-wise Influence under Unlearning in LLMs",
    needs=("post-hoc", "reference model", "validation split"),
))
