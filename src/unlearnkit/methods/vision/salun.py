"""SalUn (saliency unlearning): random-label unlearning restricted to the weights most salient
for the forgetting data.

Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both
Image Classification and Generation", ICLR 2024.

1. Saliency: g = ∇_θ CE(D_f) at θ_o (eval mode, summed over D_f); the mask selects exactly the
   top ``mask_fraction`` (default 50 %) of |g| over **all** trainable weights (one global ranking;
   k = round(fraction × #weights), ties broken by position).
2. RL on the salient weights only: CE on D_f with random labels ≠ y jointly with CE on D_un.
3. Hard constraint: the non-salient ("masked-out") weights stay **bit-identical** to θ_o. Their
   gradients are zeroed (so momentum buffers never build up) and, after every optimiser step,
   they are copied back from θ_o — weight decay and momentum cannot move them.
"""

from __future__ import annotations

import torch
from pydantic import Field

from unlearnkit.engine.train import train_loop
from unlearnkit.engine.vision import ce_loss, sgd_factory
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, concat, random_other_labels, trainable


class SalUnParams(SGDParams):
    mask_fraction: float = Field(0.5, gt=0, le=1, description="fraction of weights (top |grad|) that may change")


def saliency_mask(grads: list[torch.Tensor], fraction: float) -> list[torch.Tensor]:
    """Boolean masks (True = salient, may change) selecting exactly the top ``fraction`` of |grad|
    over all tensors together."""
    if not 0 < fraction <= 1:
        raise UnlearnkitError(f"salun: mask_fraction must be in (0, 1] (got {fraction})")
    flat = torch.cat([g.detach().abs().reshape(-1) for g in grads])
    k = max(1, min(flat.numel(), round(fraction * flat.numel())))
    top = torch.topk(flat, k, sorted=False).indices
    sel = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    sel[top] = True
    out, offset = [], 0
    for g in grads:
        out.append(sel[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return out


def forget_gradient(model: torch.nn.Module, params: list[torch.nn.Parameter], loader) -> list[torch.Tensor]:
    """∇_θ Σ_{D_f} CE in eval mode (BatchNorm statistics untouched), over the whole of D_f on every
    rank (the unsharded loader), so every process derives the same mask."""
    was = model.training
    model.eval()
    total = [torch.zeros_like(q) for q in params]
    for x, y in loader.unsharded():
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
        for t, g in zip(total, torch.autograd.grad(loss, params), strict=True):
            t.add_(g)
    model.train(was)
    return total


def salun(ctx: VisionContext, p: SalUnParams) -> torch.nn.Module:
    return salun_with_mask(ctx, p)[0]


def salun_with_mask(ctx: VisionContext, p: SalUnParams) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """SalUn, also returning the saliency mask by parameter name (True = allowed to change)."""
    model = clone(ctx.original).to(ctx.device)
    params = trainable(model)
    masks = saliency_mask(forget_gradient(model, params, ctx.forget), p.mask_fraction)
    originals = [q.detach().clone() for q in params]
    hooks = [q.register_hook(lambda g, m=m: g * m) for q, m in zip(params, masks, strict=True)]

    @torch.no_grad()
    def restore() -> None:  # the hard constraint: masked-out weights back to θ_o exactly
        for q, m, o in zip(params, masks, originals, strict=True):
            q.copy_(torch.where(m, q, o))

    relabelled = ctx.forget.with_labels(random_other_labels(ctx.forget.labels, ctx.num_classes, ctx.seed))
    try:
        train_loop(model, concat(ctx.unlearn, relabelled), ce_loss, lr=p.lr, epochs=p.epochs, max_grad_norm=None,
                   desc="salun", params=params, after_step=restore,
                   optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    finally:
        for h in hooks:
            h.remove()
    restore()
    ctx.log["salient_fraction"] = float(sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks))
    names = [n for n, q in model.named_parameters() if q.requires_grad]
    return model, dict(zip(names, masks, strict=True))


SPEC = register(MethodSpec(
    name="salun", domain="vision", summary="RL on the top-|grad| salient weights; the rest stay exactly at θ_o",
    params=SalUnParams, fn=salun,
    paper="Fan et al., SalUn: Gradient-based Weight Saliency, ICLR 2024",
))
