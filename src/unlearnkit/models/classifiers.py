"""Image classifiers: a small fast CNN (CPU default), CIFAR-style ResNet-18 and WideResNet-50.

Every classifier takes images in **[0, 1] pixel space** ``(batch, 3, H, W)`` and normalises
them itself (per-channel mean/std of the data set), so attacks and perturbations (Boundary
Shrink's FGSM, ε in pixel units) work on the pixels a user would see.

- ``cnn``: three 3×3 conv–BN–ReLU blocks (width w, 2w, 4w; 2×2 max-pool after the first two),
  global average pool, linear head. ~25 k parameters at w = 16; fast enough for the CPU default.
- ``resnet18``: torchvision's ResNet-18 with the CIFAR stem (3×3 conv, stride 1, no max-pool),
  as used throughout the CIFAR unlearning literature (SalUn, ℓ1-sparse, TARF).
- ``wrn50``: torchvision's Wide ResNet-50-2 with the same CIFAR stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError

Arch = Literal["cnn", "resnet18", "wrn50"]


class ModelConfig(StrictModel):
    arch: Arch = "cnn"
    width: int = Field(16, ge=2, description="base width of the cnn (ignored by the ResNets)")


class Classifier(nn.Module):
    """``normalise → net``; inputs in [0, 1], outputs logits ``(batch, num_classes)``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1] → (B, C)
        return self.net((x - self.mean) / self.std)


def small_cnn(num_classes: int, width: int = 16) -> nn.Module:
    w = width
    layers: list[nn.Module] = []
    cin = 3
    for i, c in enumerate((w, 2 * w, 4 * w)):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes)]
    return nn.Sequential(*layers)


def _cifar_stem(net: nn.Module) -> nn.Module:
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def build_classifier(cfg: ModelConfig, num_classes: int, mean: Sequence[float], std: Sequence[float],
                     seed: int | None = None) -> Classifier:
    """A freshly initialised classifier (initialisation seeded when ``seed`` is given)."""
    if num_classes < 2:
        raise UnlearnkitError(f"a classifier needs at least 2 classes (got {num_classes})")
    if seed is not None:
        torch.manual_seed(seed)
    if cfg.arch == "cnn":
        net = small_cnn(num_classes, cfg.width)
    elif cfg.arch == "resnet18":
        from torchvision.models import resnet18

        net = _cifar_stem(resnet18(num_classes=num_classes))
    elif cfg.arch == "wrn50":
        from torchvision.models import wide_resnet50_2

        net = _cifar_stem(wide_resnet50_2(num_classes=num_classes))
    else:  # pragma: no cover - pydantic rejects other values
        raise UnlearnkitError(f"unknown model {cfg.arch!r}; use cnn, resnet18 or wrn50")
    return Classifier(net, mean, std, num_classes)
