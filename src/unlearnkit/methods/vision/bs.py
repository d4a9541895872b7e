"""BS (Boundary Shrink): relabel each forgetting sample with its nearest wrong class, found by an
FGSM step on the frozen original model, and fine-tune on D_f with those labels.

Chen et al., "Boundary Unlearning", CVPR 2023. For x ∈ D_f: x' = clip(x + ε·sign ∇_x CE(θ_o(x), y),
0, 1) in [0, 1] pixel space (ε = 0.1), y' = argmax θ_o(x'); train CE(f(x), y') on D_f
(lr ≈ 1e-5, 10 epochs). If the step does not leave the class (y' = y), we take the most likely
class other than y at x' (``exclude_true``), so the target is always a neighbouring class. The
neighbour labels are computed once from θ_o (frozen), which is what "from the frozen θ_o" means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.engine.train import train_loop
from unlearnkit.engine.vision import ce_loss, sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, frozen_copy


class BSParams(SGDParams):
    lr: float = Field(1e-5, gt=0)
    epsilon: float = Field(0.1, gt=0, le=1, description="FGSM step in [0, 1] pixel units")
    exclude_true: bool = Field(True, description="if the FGSM step keeps the true class, use the next most likely")


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """One signed-gradient step that increases CE, clipped to [0, 1]. ``model`` is not changed."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + epsilon * grad.sign()).clamp(0.0, 1.0).detach()


@torch.no_grad()
def _neighbour(logits: torch.Tensor, y: torch.Tensor, exclude_true: bool) -> torch.Tensor:
    if exclude_true:
        logits = logits.clone()
        logits[torch.arange(len(y)), y] = float("-inf")
    return logits.argmax(1)


def neighbour_labels(original: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, epsilon: float,
                     exclude_true: bool = True, batch_size: int = 256) -> torch.Tensor:
    """y' = argmax θ_o(FGSM(x)) for every sample (θ_o frozen, eval mode)."""
    teacher = frozen_copy(original)
    out = []
    for i in range(0, len(labels), batch_size):
        x = images[i:i + batch_size].float() / 255.0 if images.dtype == torch.uint8 else images[i:i + batch_size]
        y = labels[i:i + batch_size]
        with torch.enable_grad():
            x_adv = fgsm(teacher, x, y, epsilon)
        with torch.no_grad():
            out.append(_neighbour(teacher(x_adv), y, exclude_true))
    return torch.cat(out)


def bs(ctx: VisionContext, p: BSParams) -> torch.nn.Module:
    model = clone(ctx.original).to(ctx.device)
    y_new = neighbour_labels(ctx.original, ctx.forget.images, ctx.forget.labels, p.epsilon, p.exclude_true)
    ctx.log["neighbour_changed_fraction"] = float((y_new != ctx.forget.labels).float().mean())
    train_loop(model, ctx.forget.with_labels(y_new), ce_loss, lr=p.lr, epochs=p.epochs, max_grad_norm=None,
               desc="bs", optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    return model


SPEC = register(MethodSpec(
    name="bs", domain="vision", summary="Boundary Shrink: FGSM neighbour labels on D_f (frozen θ_o)", params=BSParams,
    fn=bs, paper="Chen et al., Boundary Unlearning, CVPR 2023",
))
