"""CRU — keep the non-fragile layers of θ_u, the rest from θ_o (seed: "On the Fragility of Latent
Knowledge: Layer-wise Influence under Unlearning in LLMs"; docs/methods.md).

Post-hoc: θ_u comes from the ``base`` method. On a validation half of the benchmark (alternating
subjects, :mod:`unlearnkit.data.halves`), each parameter group (embedding, every transformer layer,
head) is patched alone into θ_o (:mod:`unlearnkit.models.patching`) and scored by FQ and MU; groups
are ranked by rank(FQ) + rank(MU) (rank 1 = best; values equal after rounding MU to 3 and ln p to 2
decimals are ties and share the average rank; order among equal sums: higher FQ, then higher MU);
the top-k are taken from θ_u and the rest from θ_o, with k chosen on the validation half by the same
rank-sum over k = 0..K (or fixed with ``k``). k = K gives θ_u, k = 0 gives θ_o. The selection
functions here also serve ``unlearnkit layers --cru``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from unlearnkit.config import Seed, StrictModel
from unlearnkit.data.halves import HalfSource
from unlearnkit.engine.cache import state_fingerprint
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.posthoc import PostHoc, PostHocContext
from unlearnkit.models.layers import locate_layers
from unlearnkit.models.patching import patched, patched_copy, transformer_layers
from unlearnkit.tasks.tofu_eval import compare_to_reference, evaluate

SUMMARY_KEYS = {
    "fq": "fq", "fq_log_p": "fq_log_p", "mu": "mu", "forget_es_exact": "forget.es_exact",
    "forget_es_perturb": "forget.es_perturb", "retain_es_exact": "retain.es_exact", "privleak": "privleak",
    "mem": "mem", "agg": "agg",
}


def summarise(res) -> dict[str, float]:
    return {k: res.get(v) for k, v in SUMMARY_KEYS.items()}


def sweep_config(eval_cfg):
    """The evaluation settings of patching sweeps. Their summary (FQ, MU, ES, PrivLeak from Min-K%, …) uses
    no GradNorm MIA, whose per-sample backward passes are about half of a SmolLM2 evaluation, so sweeps skip it."""
    return eval_cfg.model_copy(update={"mia_gradnorm": False})


def evaluate_in_memory(model, tok, source, eval_cfg, ref_res):
    res = evaluate(model, tok, source, sweep_config(eval_cfg), model_id="mem-" + state_fingerprint(model))
    return compare_to_reference(res, ref_res)


def reference_in_memory(reference, tok, source, eval_cfg):
    """θ_r's evaluation on ``source``, compared with itself: the reference of every sweep evaluation."""
    res = evaluate(reference, tok, source, sweep_config(eval_cfg), model_id="mem-" + state_fingerprint(reference))
    return compare_to_reference(res, res)


def layer_sweep(original, unlearned, tok, source, eval_cfg, ref_res, units: list[str],
                say: Callable[[str], None] = lambda s: None) -> dict[str, dict[str, float]]:
    """Metrics of θ_o with each unit (group) taken from θ_u."""
    lm = locate_layers(original)
    out = {}
    for u in units:
        t0 = time.perf_counter()
        with patched(original, unlearned, [u], lm) as m:
            out[u] = summarise(evaluate_in_memory(m, tok, source, eval_cfg, ref_res))
        say(f"  θ_o ← θ_u[{u}]: MU {out[u]['mu']:.4f}  FQ(ln p) {out[u]['fq_log_p']:.3f}  "
            f"forget ES {out[u]['forget_es_exact']:.3f}  ({time.perf_counter() - t0:.1f}s)")
    return out


# Values equal after rounding to these steps are ties when ranking (numerical noise, e.g. from patching a norm
# weight that barely moved, must not decide a rank): MU to 1e-3, FQ to 0.01 in ln p.
MU_TIE, FQ_TIE = 1e-3, 1e-2


def _ranks(values: list[float], tie: float = 0.0) -> np.ndarray:
    """Rank 1 = largest; values equal after rounding to ``tie`` share the average rank."""
    from scipy.stats import rankdata

    return rankdata([-(round(v / tie) if tie else v) for v in values], method="average")


def rank_units(sweep: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Units ordered by rank(FQ) + rank(MU) (ascending); ties: higher FQ, then higher MU, then model order."""
    units = list(sweep)
    fq = [sweep[u]["fq_log_p"] for u in units]
    mu = [sweep[u]["mu"] for u in units]
    rf, rm = _ranks(fq, FQ_TIE), _ranks(mu, MU_TIE)
    rows = [{"unit": u, "rank_fq": float(rf[i]), "rank_mu": float(rm[i]), "score": float(rf[i] + rm[i]),
             "fq_log_p": fq[i], "mu": mu[i], "order": i} for i, u in enumerate(units)]
    return sorted(rows, key=lambda r: (r["score"], -r["fq_log_p"], -r["mu"], r["order"]))


def choose_k(candidates: list[dict[str, float]]) -> int:
    """Index k with the best rank(FQ) + rank(MU) among the candidates; ties: higher FQ, then smaller k."""
    rf = _ranks([c["fq_log_p"] for c in candidates], FQ_TIE)
    rm = _ranks([c["mu"] for c in candidates], MU_TIE)
    return min(range(len(candidates)), key=lambda k: (rf[k] + rm[k], -candidates[k]["fq_log_p"], k))


def cru(original, unlearned, tok, val_source, eval_cfg, ref_val, units: list[str] | None = None, k: int | None = None,
        say: Callable[[str], None] = lambda s: None) -> tuple[list[str], dict]:
    """CRU selection on validation: returns (groups kept from θ_u, report)."""
    lm = locate_layers(original)
    units = units or lm.groups()
    if k is not None and not 0 <= k <= len(units):
        raise UnlearnkitError(f"CRU k={k} is out of range: choose 0..{len(units)} (the number of candidate groups)")
    say(f"CRU: patching sweep over {len(units)} groups on the validation half")
    sweep = layer_sweep(original, unlearned, tok, val_source, eval_cfg, ref_val, units, say)
    ranking = rank_units(sweep)
    order = [r["unit"] for r in ranking]
    ks = range(len(units) + 1) if k is None else [k]
    cands = []
    for kk in ks:
        with patched(original, unlearned, order[:kk], lm) as m:
            s = summarise(evaluate_in_memory(m, tok, val_source, eval_cfg, ref_val))
        cands.append({"k": kk, "groups": order[:kk], **s})
        say(f"  k={kk}: MU {s['mu']:.4f}  FQ(ln p) {s['fq_log_p']:.3f}  forget ES {s['forget_es_exact']:.3f}")
    chosen = cands[choose_k(cands)] if k is None else cands[0]
    report = {"units": units, "sweep_validation": sweep, "ranking": ranking, "candidates_validation": cands,
              "k": chosen["k"], "groups_from_unlearned": chosen["groups"],
              "k_chosen_on": "validation" if k is None else "given"}
    return chosen["groups"], report


class CRUParams(StrictModel):
    base: str = Field("ga", description="method that makes θ_u (any training method, e.g. npo+kl)")
    base_params: dict[str, Any] = Field(default_factory=dict, description="hyperparameters of the base method "
                                        "(on top of the run's defaults)")
    k: int | None = Field(None, ge=0, description="groups kept from θ_u; None = chosen on the validation half")
    units: Literal["groups", "layers"] = Field(
        "groups", description="candidates: all groups (embedding, layers, head) or transformer layers only")
    seed: Seed = 0


def cru_apply(ctx: PostHocContext, params: CRUParams):
    lm = locate_layers(ctx.original)
    units = lm.groups() if params.units == "groups" else transformer_layers(lm)
    val = HalfSource(ctx.source, 0)
    ref = reference_in_memory(ctx.reference, ctx.tokenizer, val, ctx.eval_config)
    groups, report = cru(ctx.original, ctx.unlearned, ctx.tokenizer, val, ctx.eval_config, ref, units, params.k, ctx.say)
    return patched_copy(ctx.original, ctx.unlearned, groups, lm), report


register(MethodSpec(
    name="cru", domain="llm", params=CRUParams,
    summary="post-hoc: keep the top-k layers of θ_u (rank(FQ)+rank(MU) on validation), the rest from θ_o",
    fn=PostHoc(apply=cru_apply, smoke={"units": "layers", "k": 1}),
    paper="Zhu et al., On the Fragility of Latent Knowledge: Layer-wise Influence under Unlearning in LLMs",
    needs=("post-hoc", "reference model", "validation split"),
))
