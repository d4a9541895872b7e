"""Image sets with a two-level label hierarchy (fine class → superclass).

:class:`ImageSet` is the in-memory form every image data set takes here (the embedded
synthetic set, CIFAR-10, CIFAR-100, Fashion-MNIST): uint8 tensors ``(N, C, H, W)`` — C = 3 for
RGB, C = 1 for grey images (kept single-channel; the classifiers take C from ``len(mean)``) —
with fine and coarse labels, class names and the fine → superclass map.

The **embedded synthetic set** (:func:`synthetic`) is generated offline, deterministically
from a seed. Each image is

    x = 0.5 + a_s · P_S  +  a_c · Q_c  +  a_n · N  + ε        (then rolled by a random shift)

- ``P_S``: the superclass pattern, a smooth random colour field (a random ``4×4×3`` grid,
  bilinearly upsampled) shared by every fine class of superclass ``S``;
- ``Q_c``: the fine class's own smooth pattern (finer, ``6×6×3`` grid), smaller amplitude;
- ``N``: per-sample smooth nuisance (a fresh ``4×4×3`` field) and ``ε`` pixel noise;
- per-sample random contrast (``a_s``, ``a_c`` scaled by U(0.75, 1.25)) and a circular shift
  of up to ``max_shift`` pixels.

Classes of one superclass therefore share most of their visual structure (``P_S``) and differ
by a weaker component (``Q_c``): a network's representations of siblings are entangled, which
is what makes the mismatch scenarios of docs/vision.md non-trivial (a reference trained without
fine class ``c`` still recognises ``c`` as its superclass; ascent on some siblings disturbs
the others). The nuisance terms make the test set harder than the training set, so trained
models show the train/test confidence gap that MIA-efficacy relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.config import Seed, StrictModel
from unlearnkit.errors import UnlearnkitError

_GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]


@dataclass
class ImageSet:
    """A labelled image set with a fine → superclass hierarchy, held in memory."""

    name: str
    train_x: torch.Tensor  # (N, C, H, W) uint8, C = 3 (RGB) or 1 (grey)
    train_fine: torch.Tensor  # (N,) int64
    test_x: torch.Tensor  # (M, C, H, W) uint8
    test_fine: torch.Tensor  # (M,) int64
    class_names: list[str]
    superclass_names: list[str]
    fine_to_coarse: list[int]  # fine class id → superclass id
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # per-channel (C values), in [0, 1] pixel space
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    info: dict = field(default_factory=dict)

    @property
    def train_coarse(self) -> torch.Tensor:
        return torch.as_tensor(self.fine_to_coarse, dtype=torch.long)[self.train_fine]

    @property
    def test_coarse(self) -> torch.Tensor:
        return torch.as_tensor(self.fine_to_coarse, dtype=torch.long)[self.test_fine]

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    def classes_of(self, superclass: int) -> list[int]:
        return [c for c, s in enumerate(self.fine_to_coarse) if s == superclass]

    def class_id(self, name: str | int) -> int:
        return _lookup(name, self.class_names, "class", self.name)

    def superclass_id(self, name: str | int) -> int:
        return _lookup(name, self.superclass_names, "superclass", self.name)

    def check(self) -> None:
        """Shape and label sanity; raises UnlearnkitError on a malformed set."""
        for split, x, y in (("train", self.train_x, self.train_fine), ("test", self.test_x, self.test_fine)):
            if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
                raise UnlearnkitError(f"{self.name} {split} images must be uint8 (N, C, H, W) with C = 1 or 3; "
                                      f"got {tuple(x.shape)} {x.dtype}")
            if x.shape[1:] != self.train_x.shape[1:]:
                raise UnlearnkitError(f"{self.name}: test images are {tuple(x.shape[1:])}, train images "
                                      f"{tuple(self.train_x.shape[1:])}")
            if len(x) != len(y):
                raise UnlearnkitError(f"{self.name} {split}: {len(x)} images but {len(y)} labels")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise UnlearnkitError(f"{self.name} {split}: labels outside 0..{len(self.class_names) - 1}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise UnlearnkitError(f"{self.name}: mean/std need one value per channel ({self.channels})")
        if len(self.fine_to_coarse) != len(self.class_names):
            raise UnlearnkitError(f"{self.name}: fine_to_coarse has {len(self.fine_to_coarse)} entries for {len(self.class_names)} classes")


def _lookup(name: str | int, names: list[str], kind: str, dataset: str) -> int:
    if isinstance(name, bool):
        raise UnlearnkitError(f"{kind} {name!r} is not a {kind} name or index")
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        i = int(name)
        if 0 <= i < len(names):
            return i
        raise UnlearnkitError(f"{kind} index {i} does not exist in {dataset} (valid: 0..{len(names) - 1})")
    if name in names:
        return names.index(name)
    import difflib

    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise UnlearnkitError(f"{kind} {name!r} does not exist in {dataset}.{hint} Known: {shown}")


class SyntheticConfig(StrictModel):
    """The embedded hierarchical image set (see module docstring)."""

    seed: Seed = 0
    n_superclasses: int = Field(4, ge=2, le=20)
    classes_per_superclass: int = Field(4, ge=2, le=10)
    image_size: int = Field(16, ge=8, le=64)
    train_per_class: int = Field(200, ge=2)
    test_per_class: int = Field(60, ge=2)
    superclass_strength: float = Field(0.20, ge=0, description="amplitude a_s of the shared superclass pattern")
    superclass_colour: float = Field(0.12, ge=0, description="amplitude of the superclass's own colour cast")
    class_strength: float = Field(0.09, ge=0, description="amplitude a_c of the fine class's own pattern")
    confusion: float = Field(1.0, ge=0, le=1, description="max share u of another superclass's pattern mixed in")
    nuisance_strength: float = Field(0.15, ge=0, description="amplitude of the per-sample smooth nuisance")
    pixel_noise: float = Field(0.08, ge=0)
    max_shift: int = Field(2, ge=0)


def _smooth_field(g: torch.Generator, n: int, grid: int, size: int) -> torch.Tensor:
    """``n`` smooth random colour fields ``(n, 3, size, size)`` with unit-ish scale."""
    base = torch.randn(n, 3, grid, grid, generator=g)
    return F.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)


def _orthogonal(fields: torch.Tensor) -> torch.Tensor:
    """Orthogonalise the fields (QR over the flattened fields), keeping their average norm."""
    flat = fields.flatten(1)  # (n, D)
    q, _ = torch.linalg.qr(flat.T)  # (D, n) orthonormal columns
    scale = flat.norm(dim=1).mean()
    return (q.T * scale).view_as(fields)


def _colours(g: torch.Generator, n: int) -> torch.Tensor:
    """``n`` unit colour directions, greedily spread (best of 64 random candidates each)."""
    out: list[torch.Tensor] = []
    for _ in range(n):
        cand = F.normalize(torch.randn(64, 3, generator=g), dim=1)
        if out:
            sim = (cand @ torch.stack(out).T).max(dim=1).values
            out.append(cand[int(sim.argmin())])
        else:
            out.append(cand[0])
    return torch.stack(out).view(n, 3)


def synthetic(cfg: SyntheticConfig | None = None) -> ImageSet:
    """Generate the embedded hierarchical image set (deterministic from ``cfg.seed``)."""
    cfg = cfg or SyntheticConfig()
    g = torch.Generator().manual_seed(cfg.seed)
    S, K, H = cfg.n_superclasses, cfg.classes_per_superclass, cfg.image_size
    n_cls = S * K
    sup_pat = _orthogonal(_smooth_field(g, S, 4, H))  # (S, 3, H, W), mutually orthogonal
    cls_pat = _smooth_field(g, n_cls, 6, H)  # (C, 3, H, W)
    cls_pat = cls_pat - cls_pat.mean(dim=(2, 3), keepdim=True)  # texture only: no colour shift of its own
    colour = _colours(g, S)  # (S, 3) unit vectors, spread apart
    fine_to_coarse = [c // K for c in range(n_cls)]

    def make(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n_cls).repeat_interleave(per_class)
        n = len(y)
        s = torch.as_tensor(fine_to_coarse)[y]
        a_s = cfg.superclass_strength * (0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
        a_c = cfg.class_strength * (0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
        x = 0.5 + a_s * sup_pat[s] + cfg.superclass_colour * colour[s][:, :, None, None] + a_c * cls_pat[y]
        other = (s + torch.randint(1, S, (n,), generator=g)) % S  # a random other superclass
        u = cfg.confusion * torch.rand(n, 1, 1, 1, generator=g)
        x = x + u * (a_s * sup_pat[other] + cfg.superclass_colour * colour[other][:, :, None, None])
        x = x + cfg.nuisance_strength * _smooth_field(g, n, 4, H)
        x = x + cfg.pixel_noise * torch.randn(n, 3, H, H, generator=g)
        if cfg.max_shift:
            shifts = torch.randint(-cfg.max_shift, cfg.max_shift + 1, (n, 2), generator=g)
            x = torch.stack([torch.roll(xi, (int(dy), int(dx)), dims=(1, 2)) for xi, (dy, dx) in zip(x, shifts, strict=True)])
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        perm = torch.randperm(n, generator=g)
        return x[perm], y[perm]

    train_x, train_y = make(cfg.train_per_class)
    test_x, test_y = make(cfg.test_per_class)
    sup_names = [_GREEK[i] if i < len(_GREEK) else f"super{i}" for i in range(S)]
    class_names = [f"{sup_names[c // K]}-{c % K}" for c in range(n_cls)]
    xf = train_x.float() / 255
    mean = tuple(float(v) for v in xf.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in xf.std(dim=(0, 2, 3)))
    ds = ImageSet("synthetic", train_x, train_y, test_x, test_y, class_names, sup_names, fine_to_coarse,
                  mean=mean, std=std, info={"config": cfg.model_dump()})
    ds.check()
    return ds
