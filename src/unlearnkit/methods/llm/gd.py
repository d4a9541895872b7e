"""GD — gradient difference: GA on the forget set + NLL on the retain set (Liu et al., 2022; TOFU)."""

from __future__ import annotations

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import LMObjective, LMParams
from unlearnkit.methods.llm.ga import ga_forget


class GDParams(LMParams):
    pass


register(MethodSpec(
    name="gd", domain="llm", params=GDParams,
    summary="gradient difference: GA forget term + NLL on retain data",
    fn=LMObjective(forget=ga_forget, default_retain="nll"),
    paper="Liu et al. 2022, Continual Learning and Private Unlearning; Maini et al. 2024, TOFU (arXiv:2401.06121)",
))
