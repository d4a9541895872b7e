"""Image classifiers: a small fast CNN (CPU default), a CIFAR ResNet-20, ResNet-18 and WideResNet-50.

Every classifier takes images in **[0, 1] pixel space** ``(batch, C, H, W)`` and normalises
them itself (per-channel mean/std of the data set), so attacks and perturbations (Boundary
Shrink's FGSM, ε in pixel units) work on the pixels a user would see. The number of input
channels C is the length of the data set's ``mean`` (3 for RGB; 1 for grey images such as
Fashion-MNIST, which are kept single-channel rather than replicated: a third of the memory and
of the first layer's work, and nothing learnable is lost). Any image size works (global pooling).

- ``cnn``: three 3×3 conv–BN–ReLU blocks (width w, 2w, 4w; 2×2 max-pool after the first two),
  global average pool, linear head. ~25 k parameters at w = 16; fast enough for the CPU default.
- ``cnn_flat``: the same three blocks (2×2 max-pool after the first two), then a 3×3 adaptive
  max-pool and a linear head on the *flattened* 3×3×4w map instead of global pooling, so the
  head knows where a feature is (sleeves or not, heel or toe). The Fashion-MNIST preset's model:
  as fast as ``cnn`` (the cost is the first block at full resolution) and more accurate on real
  garments (see docs/vision.md). ~30 k parameters at w = 16.
- ``resnet20``: He et al.'s CIFAR ResNet-20 (3×3 stem of 16 channels, three stages of three
  basic blocks at 16/32/64 channels, stride 2 between stages, 1×1-conv projection shortcuts,
  global pool, linear head; ~0.27 M parameters). ``width`` scales the stage widths (16 = the
  original); :func:`cifar_resnet` builds any depth 6n + 2.
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

Arch = Literal["cnn", "cnn_flat", "resnet20", "resnet18", "wrn50"]


class ModelConfig(StrictModel):
    arch: Arch = "cnn"
    width: int = Field(16, ge=2, description="base width of the cnn and resnet20 (ignored by resnet18/wrn50)")


class Classifier(nn.Module):
    """``normalise → net``; inputs in [0, 1], outputs logits ``(batch, num_classes)``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        if len(mean) != len(std) or len(mean) not in (1, 3):
            raise UnlearnkitError(f"mean/std must give 1 (grey) or 3 (RGB) channels, got {len(mean)} and {len(std)}")
        c = len(mean)
        self.in_channels = c
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) in [0, 1] → (B, num_classes)
        return self.net((x - self.mean) / self.std)


def small_cnn(num_classes: int, width: int = 16, in_channels: int = 3) -> nn.Module:
    w = width
    layers: list[nn.Module] = []
    cin = in_channels
    for i, c in enumerate((w, 2 * w, 4 * w)):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """conv3×3–BN–ReLU–conv3×3–BN, plus the input (1×1-conv–BN projection when the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def cifar_resnet(num_classes: int, depth: int = 20, width: int = 16, in_channels: int = 3) -> nn.Module:
    """He et al.'s CIFAR ResNet-(6n+2): stem, stages of n blocks at width w, 2w, 4w, pool, linear."""
    n = (depth - 2) // 6
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                               nn.ReLU(inplace=True)]
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for b in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage and b == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def flat_cnn(num_classes: int, width: int = 16, in_channels: int = 3) -> nn.Module:
    w = width
    layers: list[nn.Module] = []
    cin = in_channels
    for i, c in enumerate((w, 2 * w, 4 * w)):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2) if i < 2 else nn.AdaptiveMaxPool2d(3)]
        cin = c
    layers += [nn.Flatten(), nn.Linear(4 * w * 9, num_classes)]
    return nn.Sequential(*layers)


def _cifar_stem(net: nn.Module, in_channels: int = 3) -> nn.Module:
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def build_classifier(cfg: ModelConfig, num_classes: int, mean: Sequence[float], std: Sequence[float],
                     seed: int | None = None) -> Classifier:
    """A freshly initialised classifier (initialisation seeded when ``seed`` is given)."""
    if num_classes < 2:
        raise UnlearnkitError(f"a classifier needs at least 2 classes (got {num_classes})")
    if seed is not None:
        torch.manual_seed(seed)
    cin = len(mean)
    if cfg.arch == "cnn":
        net = small_cnn(num_classes, cfg.width, cin)
    elif cfg.arch == "cnn_flat":
        net = flat_cnn(num_classes, cfg.width, cin)
    elif cfg.arch == "resnet20":
        net = cifar_resnet(num_classes, 20, cfg.width, cin)
    elif cfg.arch == "resnet18":
        from torchvision.models import resnet18

        net = _cifar_stem(resnet18(num_classes=num_classes), cin)
    elif cfg.arch == "wrn50":
        from torchvision.models import wide_resnet50_2

        net = _cifar_stem(wide_resnet50_2(num_classes=num_classes), cin)
    else:  # pragma: no cover - pydantic rejects other values
        raise UnlearnkitError(f"unknown model {cfg.arch!r}; use cnn, cnn_flat, resnet20, resnet18 or wrn50")
    return Classifier(net, mean, std, num_classes)
