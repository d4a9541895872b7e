"""RMU — representation misdirection for unlearning (Li et al., 2024, WMDP).

Forget term (minimised): on the forget answer tokens, the mean squared error between the hidden
state h_θ^ℓ (output of decoder layer ℓ) and c·u, u a fixed random unit vector:

    L_forget = mean over answer tokens and hidden dims of (h_θ^ℓ − c·u)²

Default retain term ``act`` (RMU's own): the same MSE between h_θ^ℓ and θ_o's h^ℓ on the retain
answer tokens. Only the MLPs of layers ℓ−2..ℓ train (``trainable``); every other weight stays at
θ_o. ``rmu+nll`` / ``rmu+kl`` swap in a shared retain term.

Choices where the paper leaves details open (as in the WMDP code): u is drawn uniform on [0, 1)^d
then normalised (``torch.rand``, seeded by ``seed``, fixed for the run); ℓ indexes decoder layers
from 0 and the hidden state is that layer's output; the forward pass stops at layer ℓ (later
layers and the LM head are never computed for the RMU terms). The MSE runs over answer tokens
(labels ≠ −100) as in open-unlearning's QA port, averaged over all answer tokens of the batch.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from unlearnkit.data.prompts import IGNORE
from unlearnkit.engine.precision import upcast
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, RetainTerm
from unlearnkit.models.layers import decoder_layers


class _Stop(Exception):
    """Raised by the capture hook to end the forward pass once layer ℓ has run."""


def layer_index(model, params) -> int:
    """ℓ: ``params.layer`` checked against the model, or the middle layer (n // 2) when unset."""
    n = len(decoder_layers(model))
    if params.layer is None:
        return n // 2
    if not 0 <= params.layer < n:
        raise UnlearnkitError(f"RMU layer {params.layer} is out of range: the model has {n} transformer layers, "
                              f"use layer=0..{n - 1}")
    return params.layer


def hidden_at(model, batch, layer: int) -> torch.Tensor:
    """Output of decoder layer ``layer`` (B, T, d); the forward pass stops right after it."""
    captured: list[torch.Tensor] = []

    def hook(module, args, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _Stop

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def activation_mse(h: torch.Tensor, target: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over answer tokens (labels ≠ −100) and hidden dims of (h − target)²; target broadcasts."""
    mask = (labels != IGNORE).to(h.dtype).unsqueeze(-1)  # (B, T, 1)
    sq = (upcast(h) - upcast(target)) ** 2  # (B, T, d)
    return (sq * mask).sum() / (mask.sum() * h.shape[-1]).clamp_min(1.0)


def rmu_direction(hidden_size: int, seed: int) -> torch.Tensor:
    """u: uniform [0, 1)^d, normalised to unit length (as in the WMDP code), fixed by ``seed``."""
    u = torch.rand(hidden_size, generator=torch.Generator().manual_seed(seed))
    return u / u.norm()


def rmu_setup(model, tokenizer, params, state, forget_records) -> None:
    state["rmu_layer"] = layer_index(model, params)
    state["rmu_u"] = rmu_direction(model.config.hidden_size, params.seed)


def rmu_forget(inp: ForgetInputs) -> tuple[torch.Tensor, dict[str, float]]:
    layer = inp.state.get("rmu_layer", None)
    if layer is None:
        layer = layer_index(inp.model, inp.params)
    u = inp.state.get("rmu_u")
    h = hidden_at(inp.model, inp.batch, layer)
    if u is None:
        u = rmu_direction(h.shape[-1], inp.params.seed)
    loss = activation_mse(h, inp.params.steering_coeff * u.to(h.device), inp.batch["labels"])
    return loss, {"h_norm": float(upcast(h.detach()).norm(dim=-1).mean())}


def rmu_retain(model, reference, batch, params, state) -> torch.Tensor:
    """MSE between h_θ^ℓ and θ_o's h^ℓ on the retain answer tokens."""
    layer = state.get("rmu_layer", None)
    if layer is None:
        layer = layer_index(model, params)
    with torch.no_grad():
        ref_h = hidden_at(reference, batch, layer)
    return activation_mse(hidden_at(model, batch, layer), ref_h, batch["labels"])


def rmu_trainable(model, params) -> list[torch.nn.Parameter]:
    """The MLP weights of layers ℓ−2..ℓ (only down_proj with mlp_params="down_proj", as in the WMDP code)."""
    layers = decoder_layers(model)
    ell = layer_index(model, params)
    out = []
    for i in range(max(0, ell - 2), ell + 1):
        mlp = getattr(layers[i], "mlp", None)
        if mlp is None:
            raise UnlearnkitError(f"RMU: layer {i} of {type(model).__name__} has no .mlp module")
        for name, p in mlp.named_parameters():
            if params.mlp_params == "all" or name.startswith("down_proj"):
                out.append(p)
    if not out:
        raise UnlearnkitError("RMU: no MLP parameters matched (mlp_params='down_proj' needs a down_proj layer)")
    return out


class RMUParams(LMParams):
    retain: Literal["none", "nll", "kl", "act"] | None = Field(
        None, description="retain term; None = act (MSE to θ_o's hidden state at layer ℓ on retain data)")
    layer: int | None = Field(None, ge=0, description="ℓ: decoder layer (0-based) whose output is steered; "
                                                      "None = the middle layer (n_layers // 2)")
    steering_coeff: float = Field(20.0, gt=0, description="c: length of the target vector c·u")
    alpha: float = Field(10.0, ge=0, description="weight α of the retain term (tuned on the embedded benchmark)")
    mlp_params: Literal["all", "down_proj"] = Field("all", description="which MLP weights of layers ℓ−2..ℓ train")


register(MethodSpec(
    name="rmu", domain="llm", params=RMUParams,
    summary="steer layer-ℓ hidden states of forget tokens to c·u; match θ_o's on retain data",
    fn=LMObjective(forget=rmu_forget, default_retain="act", setup=rmu_setup, trainable=rmu_trainable,
                   extra_retain={"act": RetainTerm(rmu_retain, needs_reference=True,
                                                   summary="MSE to θ_o's hidden state at layer ℓ")}),
    paper="Li et al. 2024, The WMDP Benchmark: Measuring and Reducing Malicious Use with Unlearning (arXiv:2403.03218)",
    needs=("reference", "hooks"),
))
