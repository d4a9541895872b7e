"""Shared tiny fixtures for the vision tests (no downloads, a few seconds at most)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.data.images import ImageSet, SyntheticConfig, synthetic
from unlearnkit.data.scenarios import Scenario, ScenarioConfig, build_scenario
from unlearnkit.engine.vision import ClassifierRecipe, TensorLoader, train_classifier
from unlearnkit.methods.vision.base import VisionContext
from unlearnkit.models.classifiers import ModelConfig, build_classifier


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny convolutions run faster (and steadier on a busy machine) on one thread; restored after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = SyntheticConfig(n_superclasses=3, classes_per_superclass=2, image_size=8, train_per_class=12,
                       test_per_class=6, max_shift=1)
TINY_MODEL = ModelConfig(arch="cnn", width=4)
TINY_RECIPE = ClassifierRecipe(epochs=1, lr=0.05, batch_size=16)


def tiny_set() -> ImageSet:
    return synthetic(TINY)


def tiny_context(scenario: str = "target_mismatch", seed: int = 0, oracle: bool = False,
                 ds: ImageSet | None = None) -> tuple[VisionContext, Scenario]:
    """A context with a (briefly trained) tiny θ_o, batches of 16."""
    ds = ds or tiny_set()
    sc = build_scenario(ds, scenario, ScenarioConfig())
    make = lambda: build_classifier(TINY_MODEL, sc.num_classes, ds.mean, ds.std, seed=seed)  # noqa: E731
    theta_o = make()
    torch.manual_seed(seed)
    train_classifier(theta_o, TensorLoader(ds.train_x, sc.train_labels, 16, seed=seed), TINY_RECIPE)
    loader = lambda idx, s: TensorLoader(ds.train_x[idx], sc.train_labels[idx], 16, seed=s)  # noqa: E731
    ctx = VisionContext(original=theta_o.eval(), forget=loader(sc.forget, seed), unlearn=loader(sc.unlearn, seed + 1),
                        num_classes=sc.num_classes, seed=seed, make_model=make, train_recipe=TINY_RECIPE,
                        n_hidden_target_classes=len(sc.hidden_target_labels),
                        oracle_retain=loader(sc.retain, seed) if oracle else None)
    return ctx, sc


def write_cifar10(root: Path, n_train_per_batch: int = 6, n_test: int = 8, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in the official python-pickle layout (bytes keys, N × 3072 uint8)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    for i in range(1, 6):
        d = {b"data": rng.integers(0, 256, (n_train_per_batch, 3072), dtype=np.uint8),
             b"labels": [(i * n_train_per_batch + j) % 10 for j in range(n_train_per_batch)],
             b"batch_label": b"training batch"}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(d))
    d = {b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
         b"labels": [j % 10 for j in range(n_test)]}
    (folder / "test_batch").write_bytes(pickle.dumps(d))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}))
    return folder


def write_cifar100(root: Path, fine_to_coarse: list[int], n_train: int = 40, n_test: int = 12, seed: int = 0) -> Path:
    """A tiny CIFAR-100-format set with the given fine → coarse map (written into the pickles)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    n_fine = len(fine_to_coarse)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [i % n_fine for i in range(n)]
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": fine,
             b"coarse_labels": [fine_to_coarse[f] for f in fine], b"filenames": [b"x.png"] * n}
        (folder / split).write_bytes(pickle.dumps(d))
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(n_fine)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(max(fine_to_coarse) + 1)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return folder
