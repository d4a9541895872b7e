"""SCRUB: teacher–student unlearning that alternates maximisation on D_f and minimisation on D_un.

Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023. The student starts at
θ_o, the teacher is θ_o frozen. Epoch e = 0..epochs−1:

- if e < msteps: a **max-step** pass over D_f minimising −KL(teacher ‖ student) (push the
  student away from the teacher on the forgetting data);
- every epoch: a **min-step** pass over D_un minimising γ·CE(student, y) + α·KL(teacher ‖ student)
  (stay close to the teacher and accurate on the remaining data).

KL is the distillation KL at temperature T (= 4): KL(softmax(t/T) ‖ softmax(s/T))·T².
Defaults follow the authors' CIFAR settings (msteps 2, γ 0.99, α 0.001, lr 5e-4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from unlearnkit.engine.train import Pass, TrainLog, train_loop
from unlearnkit.engine.vision import autocast, sgd_factory
from unlearnkit.methods import MethodSpec, register
from unlearnkit.methods.vision.base import SGDParams, VisionContext, clone, frozen_copy


class SCRUBParams(SGDParams):
    epochs: int = Field(3, ge=1)
    msteps: int = Field(2, ge=0, description="epochs that start with a max-step on D_f")
    lr: float = Field(5e-4, gt=0)
    temperature: float = Field(4.0, gt=0)
    gamma: float = Field(0.99, ge=0, description="weight of CE in the min-step")
    alpha: float = Field(0.001, ge=0, description="weight of KL in the min-step")

    @model_validator(mode="after")
    def _msteps(self) -> SCRUBParams:
        if self.msteps > self.epochs:
            raise ValueError(f"msteps ({self.msteps}) cannot exceed epochs ({self.epochs})")
        return self


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)) · T², mean over the batch."""
    log_s = F.log_softmax(student_logits / T, dim=1)
    p_t = F.softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_s, p_t, reduction="batchmean") * T * T


def scrub_schedule(epochs: int, msteps: int) -> list[str]:
    """The sequence of passes: ['max', 'min'] for each of the first ``msteps`` epochs, then 'min'."""
    out: list[str] = []
    for e in range(epochs):
        if e < msteps:
            out.append("max")
        out.append("min")
    return out


def scrub(ctx: VisionContext, p: SCRUBParams) -> torch.nn.Module:
    student = clone(ctx.original).to(ctx.device)
    teacher = frozen_copy(ctx.original).to(ctx.device)

    def loss(kind: str):
        def fn(model, batch):
            x, y = batch
            with autocast():
                s = model(x)
                with torch.no_grad():
                    t = teacher(x)
                kl = distill_kl(s, t, p.temperature)
                if kind == "max":
                    return -kl, {"kl": float(kl.detach())}
                return p.gamma * F.cross_entropy(s, y) + p.alpha * kl, {"kl": float(kl.detach())}
        return fn

    max_pass, min_pass = Pass(ctx.forget, loss("max"), "max"), Pass(ctx.unlearn, loss("min"), "min")
    log = train_loop(student, None, None, passes=lambda e: [max_pass, min_pass] if e < p.msteps else [min_pass],
                     lr=p.lr, epochs=p.epochs, max_grad_norm=None, desc="scrub",
                     optimizer_factory=sgd_factory(p.lr, p.momentum, p.weight_decay))
    ctx.log["passes"] = pass_summary(log)
    return student.eval()


def pass_summary(log: TrainLog) -> list[dict]:
    """Consecutive steps of one pass → ``{"pass", "batches", "last_loss"}`` (the schedule as run)."""
    out: list[dict] = []
    for rec in log.steps:
        if out and out[-1]["pass"] == rec["pass"] and out[-1]["epoch"] == rec["epoch"]:
            out[-1]["batches"] += 1
            out[-1]["last_loss"] = rec["loss"]
        else:
            out.append({"pass": rec["pass"], "epoch": rec["epoch"], "batches": 1, "last_loss": rec["loss"]})
    return [{k: v for k, v in d.items() if k != "epoch"} for d in out]


SPEC = register(MethodSpec(
    name="scrub", domain="vision", summary="teacher-student max-steps on D_f / min-steps on D_un (KL, T=4)",
    params=SCRUBParams, fn=scrub, paper="Kurmanji et al., Towards Unbounded Machine Unlearning, NeurIPS 2023",
))
