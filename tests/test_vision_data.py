"""Image data: the embedded synthetic set and the CIFAR pickle loaders (tiny test-written copies)."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.data.cifar import CIFAR10_CLASSES, CIFAR10_GROUPING, cifar10_fine_to_coarse, load_cifar
from unlearnkit.data.images import SyntheticConfig, synthetic
from unlearnkit.errors import UnlearnkitError

from .vision_helpers import single_thread, write_cifar10, write_cifar100  # noqa: F401 (autouse fixture)

SMALL = SyntheticConfig(n_superclasses=3, classes_per_superclass=2, image_size=8, train_per_class=5, test_per_class=3)


def test_synthetic_is_deterministic_and_hierarchical():
    a, b = synthetic(SMALL), synthetic(SMALL)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_fine, b.test_fine)
    c = synthetic(SMALL.model_copy(update={"seed": 1}))
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (30, 3, 8, 8) and a.train_x.dtype == torch.uint8
    assert a.test_x.shape == (18, 3, 8, 8)
    assert a.fine_to_coarse == [0, 0, 1, 1, 2, 2]
    assert a.class_names[:2] == ["alpha-0", "alpha-1"] and a.superclass_names == ["alpha", "beta", "gamma"]
    assert torch.bincount(a.train_fine).tolist() == [5] * 6
    assert torch.equal(a.train_coarse, a.train_fine // 2)


def test_synthetic_superclass_structure_is_shared():
    """Images of sibling classes are closer (mean image) than images of other superclasses."""
    ds = synthetic(SyntheticConfig(n_superclasses=3, classes_per_superclass=2, train_per_class=40, max_shift=0))
    means = torch.stack([ds.train_x[ds.train_fine == c].float().mean(0) for c in range(6)])
    d = torch.cdist(means.flatten(1), means.flatten(1))
    sibling = (d[0, 1] + d[2, 3] + d[4, 5]) / 3
    other = torch.stack([d[i, j] for i in range(6) for j in range(6) if i // 2 != j // 2]).mean()
    assert sibling < other


def test_cifar10_grouping_is_documented_partition():
    f2c = cifar10_fine_to_coarse()
    assert sorted(c for v in CIFAR10_GROUPING.values() for c in v) == sorted(CIFAR10_CLASSES)
    assert all(f2c.count(s) == 2 for s in range(5))
    assert f2c[CIFAR10_CLASSES.index("cat")] == f2c[CIFAR10_CLASSES.index("dog")]


def test_cifar10_loader_reads_pickles(tmp_path):
    write_cifar10(tmp_path)
    ds = load_cifar("cifar10", tmp_path, download=False)
    assert ds.train_x.shape == (30, 3, 32, 32) and ds.test_x.shape == (8, 3, 32, 32)
    assert ds.class_names == CIFAR10_CLASSES and len(ds.superclass_names) == 5
    # the folder itself is accepted too
    assert load_cifar("cifar10", tmp_path / "cifar-10-batches-py").train_x.shape[0] == 30


def test_cifar100_loader_reads_coarse_labels_from_the_pickle(tmp_path):
    # a deliberately unusual hierarchy: only the pickle's coarse_labels can produce it
    f2c = [2, 0, 1, 0, 2, 1]
    write_cifar100(tmp_path, f2c)
    ds = load_cifar("cifar100", tmp_path, download=False)
    assert ds.fine_to_coarse == f2c
    assert ds.superclass_names == ["coarse0", "coarse1", "coarse2"]
    assert ds.class_names[5] == "fine5"
    assert torch.equal(ds.train_coarse, torch.as_tensor(f2c)[ds.train_fine])
    # pixel layout: row-major channel planes of 32×32
    raw = __import__("pickle").loads((tmp_path / "cifar-100-python" / "train").read_bytes())[b"data"]
    assert ds.train_x[0, 1, 0, 0] == raw[0, 1024] and ds.train_x[0, 0, 0, 5] == raw[0, 5]


def test_data_dir_without_cifar_files_is_a_clear_error(tmp_path):
    (tmp_path / "something.txt").write_text("not cifar")
    with pytest.raises(UnlearnkitError, match="no CIFAR10 files"):
        load_cifar("cifar10", tmp_path, download=False)
    with pytest.raises(UnlearnkitError, match="does not exist"):
        load_cifar("cifar100", tmp_path / "missing", download=False)
    with pytest.raises(UnlearnkitError, match="data-dir"):
        load_cifar("cifar10", None, download=False)
