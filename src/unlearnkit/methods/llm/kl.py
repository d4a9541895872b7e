"""KL — GA on the forget set + KL(π_θo ‖ π_θ) per answer token on the retain set (TOFU baseline)."""

from __future__ import annotations

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import LMObjective, LMParams
from unlearnkit.methods.llm.ga import ga_forget


class KLParams(LMParams):
    pass


register(MethodSpec(
    name="kl", domain="llm", params=KLParams,
    summary="GA forget term + KL to the original model on retain data",
    fn=LMObjective(forget=ga_forget, default_retain="kl"),
    paper="Maini et al. 2024, TOFU: A Task of Fictitious Unlearning for LLMs (arXiv:2401.06121)",
    needs=("reference",),
))
