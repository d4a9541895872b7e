"""Training and evaluation of image classifiers.

- :class:`TensorLoader`: seeded mini-batches from in-memory uint8 images, yielded as float
  images in [0, 1] on the run's device (optional CIFAR augmentation: 4-px padded random crop and
  horizontal flip), sharded across processes when several run. Much faster than a per-sample
  ``DataLoader`` for small images.
- :func:`train_classifier`: supervised training (SGD + momentum, cosine schedule) through the
  shared :func:`unlearnkit.engine.train.train_loop`.
- :func:`predict` / :func:`scenario_metrics`: one forward pass over the train and test images,
  then the pure metric functions of :mod:`unlearnkit.metrics.vision`.

Device and precision are decided in one place, :func:`accelerator` (``accelerate``: the GPU
when there is one, bf16 autocast where supported, fp32 on CPU). Every method that trains does
so through ``train_loop`` (device placement, mixed precision, DDP across processes); frozen
teachers and one-shot updates use :func:`device` and :func:`autocast` from here. Under several
processes only the main process (:func:`is_main_process`) may write files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.data.images import ImageSet
from unlearnkit.data.scenarios import Scenario
from unlearnkit.engine.train import TrainLog, make_accelerator, train_loop
from unlearnkit.metrics import vision as M

_ACC = None


def accelerator():
    global _ACC
    if _ACC is None:
        _ACC = make_accelerator()
    return _ACC


def device() -> torch.device:
    return accelerator().device


def autocast() -> AbstractContextManager:
    return accelerator().autocast()


class ClassifierRecipe(StrictModel):
    """How θ_o and θ_r are trained from scratch (the same recipe for both)."""

    epochs: int = Field(20, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(128, ge=1)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)


class TensorLoader:
    """Seeded mini-batches ``(x (B, C, H, W) float in [0, 1], y (B,) int64)`` on ``device``.

    Each pass over the loader is a new epoch with a new (seeded) order.

    **Several processes** (``torchrun``/``accelerate launch``; rank and world size W from
    accelerate's state or ``torch.distributed``, or given as ``rank``/``world_size``): every rank
    draws the same permutation of the epoch (same seed), cut into *global* batches of
    ``batch_size × W`` samples; rank r takes the r-th contiguous chunk of each global batch, so
    the ranks see disjoint shards and together exactly the batches one process would see with
    ``batch_size × W`` (``batch_size`` is per rank, as in accelerate). Without ``drop_last`` the
    permutation is first padded (wrapping round) to a multiple of W, so the last global batch
    splits evenly; with it, an incomplete last global batch is dropped on every rank. Every rank
    has the same ``len``. Augmentation parameters are drawn for the whole global batch and each
    rank applies its chunk's, so they match the one-process run's. ``n``, ``images``, ``labels``
    and :meth:`all` stay the whole set.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128, *, shuffle: bool = True,
                 seed: int = 0, augment: bool = False, dev: torch.device | None = None, drop_last: bool = False,
                 rank: int | None = None, world_size: int | None = None) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if (rank is None) != (world_size is None) or (world_size is not None and not 0 <= rank < world_size):
            raise ValueError(f"rank {rank} / world_size {world_size}: give both, with 0 <= rank < world_size")
        self.dev = dev or device()
        self.images = images.to(self.dev)
        self.labels = labels.to(self.dev).long()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.augment = augment
        self.drop_last = drop_last
        self._shard = None if rank is None else (rank, world_size)
        self._epoch = 0

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def shard(self) -> tuple[int, int]:
        """``(rank, world_size)`` this loader iterates as (fixed if given, else the running processes')."""
        return self._shard if self._shard is not None else process_rank_world()

    def __len__(self) -> int:
        _, world = self.shard
        global_batch = self.batch_size * world
        if self.drop_last:
            return self.n // global_batch
        return math.ceil(_padded(self.n, world) / global_batch)

    def like(self, images: torch.Tensor, labels: torch.Tensor, **changes) -> TensorLoader:
        """A loader over other samples with this one's settings (batch size, seed, shard, ...)."""
        kw = {"shuffle": self.shuffle, "seed": self.seed, "augment": self.augment, "dev": self.dev,
              "drop_last": self.drop_last, "rank": None, "world_size": None}
        if self._shard is not None:
            kw["rank"], kw["world_size"] = self._shard
        kw.update(changes)
        return TensorLoader(images, labels, kw.pop("batch_size", self.batch_size), **kw)

    def with_labels(self, labels: torch.Tensor) -> TensorLoader:
        return self.like(self.images, labels)

    def unsharded(self) -> TensorLoader:
        """The same loader as one process sees it (all batches, on every rank), at the same epoch;
        for whole-set passes that must agree across ranks (e.g. SalUn's saliency gradient)."""
        out = self.like(self.images, self.labels, rank=0, world_size=1)
        out._epoch = self._epoch
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self._epoch)
        self._epoch += 1
        rank, world = self.shard
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        if world > 1 and not self.drop_last:
            order = order[torch.arange(_padded(self.n, world)) % max(1, self.n)]
        order = order.to(self.dev)
        global_batch = self.batch_size * world
        for i in range(len(self)):
            whole = order[i * global_batch:(i + 1) * global_batch]
            per = len(whole) // world
            b = whole[rank * per:(rank + 1) * per]
            x = self.images[b].float() / 255.0
            if self.augment:
                x = _augment(x, g, rank * per, len(whole))
            yield x, self.labels[b]

    def all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sample at once (un-augmented), in stored order."""
        return self.images.float() / 255.0, self.labels


def _padded(n: int, world: int) -> int:
    return math.ceil(n / world) * world


def process_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``torch.distributed`` if initialised, else
    accelerate's state if it is set up, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    from accelerate.state import PartialState

    if PartialState._shared_state:
        st = PartialState()
        return st.process_index, st.num_processes
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): only it may write files."""
    return process_rank_world()[0] == 0


def _augment(x: torch.Tensor, g: torch.Generator, start: int = 0, total: int | None = None) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip (standard CIFAR).

    The parameters are drawn for ``total`` samples (a whole global batch) and samples
    ``start .. start + len(x)`` of them are applied to ``x`` (one rank's chunk)."""
    B, _, H, W = x.shape
    total = B if total is None else total
    p = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (total,), generator=g).tolist()[start:start + B]
    dx = torch.randint(0, 9, (total,), generator=g).tolist()[start:start + B]
    flip = (torch.rand(total, generator=g) < 0.5)[start:start + B]
    out = torch.stack([p[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])
    out[flip] = out[flip].flip(-1)
    return out


def ce_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    return F.cross_entropy(model(x), y), {}


def sgd_factory(lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def train_classifier(model: torch.nn.Module, loader: TensorLoader, recipe: ClassifierRecipe,
                     desc: str = "train") -> TrainLog:
    """Supervised cross-entropy training of ``model`` in place."""
    model.to(loader.dev)
    return train_loop(model, loader, ce_loss, lr=recipe.lr, epochs=recipe.epochs, max_grad_norm=None,
                      schedule=recipe.schedule, warmup_ratio=recipe.warmup_ratio, desc=desc,
                      optimizer_factory=sgd_factory(recipe.lr, recipe.momentum, recipe.weight_decay))


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits ``(N, C)`` (float32, on CPU) for uint8 or [0, 1] float images ``(N, 3, H, W)``."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(dev)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        with autocast():
            out.append(model(x).float().cpu())
    model.train(was_training)
    if not out:
        return torch.zeros(0, getattr(model, "num_classes", 0))
    return torch.cat(out)


def mia_sample(sc: Scenario, seed: int, max_size: int | None = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size member (from D_r) and non-member (test outside the target) index samples."""
    rng = np.random.default_rng(seed)
    pm, pn = M.balanced_sample(len(sc.retain), len(sc.test_other), rng, max_size)
    return sc.retain.numpy()[pm], sc.test_other.numpy()[pn]


def scenario_metrics(model: torch.nn.Module, ds: ImageSet, sc: Scenario, seed: int = 0,
                     mia_max: int | None = 5000, batch_size: int = 512) -> tuple[dict, dict]:
    """UA/RA/TA/MIA (+ UA on D_f and D_fr separately) and the per-sample arrays behind them."""
    tr_logits = predict(model, ds.train_x, batch_size)
    te_logits = predict(model, ds.test_x, batch_size)
    tr_pred, te_pred = tr_logits.argmax(1).numpy(), te_logits.argmax(1).numpy()
    tr_y, te_y = sc.train_labels.numpy(), sc.test_labels.numpy()
    tr_conf = M.true_label_confidence(tr_logits.softmax(1).numpy(), tr_y)
    te_conf = M.true_label_confidence(te_logits.softmax(1).numpy(), te_y)
    acc = lambda idx, p, y: M.accuracy(p[idx.numpy()], y[idx.numpy()])  # noqa: E731
    members, nonmembers = mia_sample(sc, seed, mia_max)
    mia = M.mia_efficacies(tr_conf[members], te_conf[nonmembers],
                           {"t": tr_conf[sc.target.numpy()], "f": tr_conf[sc.forget.numpy()]})
    metrics = {
        "UA": acc(sc.target, tr_pred, tr_y),
        "RA": acc(sc.retain, tr_pred, tr_y),
        "TA": acc(sc.test_other, te_pred, te_y),
        "MIA": mia["t"],
        "UA_f": acc(sc.forget, tr_pred, tr_y),
        "UA_fr": acc(sc.false_retain, tr_pred, tr_y) if len(sc.false_retain) else None,
        "TA_target": acc(sc.test_target, te_pred, te_y),
        "MIA_f": mia["f"],
        "mia_pairs": int(len(members)),
    }
    per_sample = {"train_pred": tr_pred.astype(np.int32), "train_conf": tr_conf.astype(np.float32),
                  "test_pred": te_pred.astype(np.int32), "test_conf": te_conf.astype(np.float32),
                  "mia_members": members.astype(np.int64), "mia_nonmembers": nonmembers.astype(np.int64)}
    return metrics, per_sample
