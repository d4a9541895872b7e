"""GA — gradient ascent on the forget set (Jang et al., 2023; TOFU baseline).

Forget term (minimised): mean_i log p_i over the forget answer tokens, i.e. −NLL. No retain term.
"""

from __future__ import annotations

import torch

from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, forget_token_logprobs, masked_mean


def ga_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    """mean_i log π(y_i | x, y_<i) over the selected forget answer tokens (temperature-scaled)."""
    lp, mask = forget_token_logprobs(inp)
    loss = masked_mean(lp, mask)
    return loss, {"forget_nll": float(-loss.detach())}


class GAParams(LMParams):
    pass


register(MethodSpec(
    name="ga", domain="llm", params=GAParams,
    summary="gradient ascent: minimise the log-likelihood of the forget answers",
    fn=LMObjective(forget=ga_forget, default_retain="none"),
    paper="Jang et al. 2023, Knowledge Unlearning for Mitigating Privacy Risks in LMs (arXiv:2210.01504)",
))
