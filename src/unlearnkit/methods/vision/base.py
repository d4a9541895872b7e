"""The image-classifier method interface, and plain helper functions methods compose.

**Entry point.** Every vision method registers a :class:`~unlearnkit.methods.MethodSpec` with
``domain="vision"`` whose ``fn`` has the signature::

    fn(ctx: VisionContext, params: <its StrictModel>) -> torch.nn.Module   # θ_u

- ``ctx.original`` is θ_o. A method must not modify it: start from ``clone(ctx.original)``.
- ``ctx.forget`` (D_f) and ``ctx.unlearn`` (D_un = D \\ D_f) are :class:`TensorLoader` s of
  images in [0, 1] with labels in the model's label space. That is all the data a method gets:
  **the target concept D_t is never handed over**.
- ``ctx.n_hidden_target_classes`` is side information some methods may use (TARF's
  "known number of target classes"): how many label-space classes of D_un belong to the target,
  never which.
- ``ctx.oracle_retain`` (the true retaining data D_r) is set only for methods that declare
  ``needs=("oracle_retain",)`` — that is Retrain, the gold reference, which by definition is
  trained on D_r.
- ``ctx.log`` is a dict a method may fill with diagnostics (TARF's identified classes); the
  runner stores it in the results.

The returned model must have θ_o's architecture and label space. This module registers
nothing (``load_all`` imports it like every method file).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.engine.vision import ClassifierRecipe, TensorLoader


@dataclass
class VisionContext:
    original: torch.nn.Module  # θ_o — read only
    forget: TensorLoader  # D_f
    unlearn: TensorLoader  # D_un = D \ D_f
    num_classes: int
    seed: int
    make_model: Callable[[], torch.nn.Module]  # fresh random init of θ_o's architecture
    train_recipe: ClassifierRecipe  # the recipe θ_o was trained with
    n_hidden_target_classes: int | None = None  # side information: a count, never the classes
    oracle_retain: TensorLoader | None = None  # D_r, only for needs=("oracle_retain",)
    log: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.unlearn.dev


class SGDParams(StrictModel):
    """Optimiser settings shared by the fine-tuning style methods (SGD + momentum)."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)


def clone(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in training mode (θ_o itself stays untouched)."""
    m = copy.deepcopy(model)
    m.train()
    return m


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode with gradients off (teacher / reference)."""
    m = copy.deepcopy(model)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def sgd(params, p: SGDParams, lr: float | None = None) -> torch.optim.SGD:
    return torch.optim.SGD([q for q in params if q.requires_grad], lr=p.lr if lr is None else lr,
                           momentum=p.momentum, weight_decay=p.weight_decay)


def cycle(loader: TensorLoader) -> Iterator:
    """Endless batches from ``loader`` (a new shuffled epoch each pass)."""
    return itertools.chain.from_iterable(itertools.repeat(loader))


def random_other_labels(labels: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """For each label y a uniformly random label ≠ y (seeded)."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, labels.shape, generator=g).to(labels.device)
    return (labels + shift) % num_classes


def concat(a: TensorLoader, b: TensorLoader, seed: int | None = None) -> TensorLoader:
    """One loader over the samples of ``a`` and ``b`` (settings of ``a``, its shard included)."""
    return a.like(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]),
                  seed=a.seed if seed is None else seed, drop_last=False)


def mean_ce(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
