"""Fashion-MNIST from test-written IDX files (the real on-disk format, gzipped and plain)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.data import fashion_mnist as fm
from unlearnkit.data.fashion_mnist import (
    FASHION_CLASSES,
    FASHION_GROUPING,
    FashionMNISTConfig,
    fashion_fine_to_coarse,
    load_fashion_mnist,
    read_idx,
)
from unlearnkit.data.scenarios import ScenarioConfig, build_scenario
from unlearnkit.errors import UnlearnkitError

from .vision_helpers import single_thread  # noqa: F401 (autouse fixture)


def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX encoding: 0, 0, type 0x08, ndim, big-endian int32 sizes, then the bytes."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}i", *a.shape) + a.astype(np.uint8).tobytes()


def write_fashion(folder: Path, n_train: int = 30, n_test: int = 20, gz: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": ((np.arange(n_test) * 3) % 10).astype(np.uint8)}
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files_gzipped_or_plain(tmp_path, gz):
    arrays = write_fashion(tmp_path, gz=gz)
    ds = load_fashion_mnist(tmp_path)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.test_x.shape == (20, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.channels == 1 and len(ds.mean) == 1
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))  # row-major pixels
    assert ds.train_fine.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.test_fine.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert ds.class_names == FASHION_CLASSES and ds.superclass_names == ["tops", "footwear", "other"]


def test_torchvision_layout_and_debian_path_are_found(tmp_path, monkeypatch):
    write_fashion(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False)
    assert load_fashion_mnist(tmp_path / "tv").train_x.shape[0] == 30
    # no data_dir: the Debian package's folder is used when it holds the four files
    write_fashion(tmp_path / "debian", n_train=10, n_test=10)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "debian")
    ds = load_fashion_mnist(download=False)
    assert ds.train_x.shape[0] == 10 and ds.info["folder"] == str(tmp_path / "debian")
    # gz and plain copies of the same data give the same content hash (cache key)
    write_fashion(tmp_path / "plain", n_train=10, n_test=10, gz=False)
    assert load_fashion_mnist(tmp_path / "plain").info["content_hash"] == ds.info["content_hash"]


def test_missing_files_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nowhere")
    with pytest.raises(UnlearnkitError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(download=False)
    (tmp_path / "x").mkdir()
    with pytest.raises(UnlearnkitError, match="no Fashion-MNIST files"):
        load_fashion_mnist(tmp_path / "x")
    with pytest.raises(UnlearnkitError, match="does not exist"):
        load_fashion_mnist(tmp_path / "missing")


def _damage(path: Path, how: str) -> None:
    raw = gzip.decompress(path.read_bytes())
    if how == "truncated":
        data = gzip.compress(raw[:-7])
    elif how == "trailing":
        data = gzip.compress(raw + b"\0\0")
    elif how == "magic":
        data = gzip.compress(b"\1\2" + raw[2:])
    elif how == "dtype":
        data = gzip.compress(raw[:2] + b"\x0d" + raw[3:])
    elif how == "ndim":
        data = gzip.compress(raw[:3] + b"\x02" + raw[4:])
    elif how == "header":
        data = gzip.compress(raw[:9])
    else:  # a damaged gzip stream
        data = path.read_bytes()[:40]
    path.write_bytes(data)


@pytest.mark.parametrize("how,match", [("truncated", "truncated"), ("trailing", "longer than its header"),
                                       ("magic", "not an IDX file"), ("dtype", "0x0d"), ("ndim", "2 dimensions"),
                                       ("header", "truncated IDX header"), ("gzip", "damaged gzip")])
def test_damaged_files_are_one_line_errors(tmp_path, how, match):
    write_fashion(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    _damage(target, how)
    with pytest.raises(UnlearnkitError, match=match) as e:
        load_fashion_mnist(tmp_path)
    assert "\n" not in str(e.value) and "train-images" in str(e.value)


def test_label_problems_are_errors(tmp_path):
    write_fashion(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(UnlearnkitError, match="20 images but 19 labels"):
        load_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(20, 10, np.uint8)))
    with pytest.raises(UnlearnkitError, match="label 10 outside"):
        load_fashion_mnist(tmp_path)


def test_read_idx_rejects_an_empty_dimension(tmp_path):
    p = tmp_path / "a"
    p.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">i", 0))
    with pytest.raises(UnlearnkitError, match="empty dimension"):
        read_idx(p, 1)


def test_grouping_is_a_documented_partition():
    f2c = fashion_fine_to_coarse()
    assert sorted(c for v in FASHION_GROUPING.values() for c in v) == sorted(FASHION_CLASSES)
    assert [f2c.count(s) for s in range(3)] == [4, 3, 3]
    assert {FASHION_CLASSES[i] for i, s in enumerate(f2c) if s == 0} == {"T-shirt/top", "Pullover", "Coat", "Shirt"}


def test_subset_is_stratified_and_seeded(tmp_path):
    write_fashion(tmp_path, n_train=100, n_test=50)
    cfg = FashionMNISTConfig(train_per_class=4, test_per_class=2, subset_seed=1)
    a, b = load_fashion_mnist(tmp_path, cfg=cfg), load_fashion_mnist(tmp_path, cfg=cfg)
    assert torch.bincount(a.train_fine).tolist() == [4] * 10 and torch.bincount(a.test_fine).tolist() == [2] * 10
    assert torch.equal(a.train_x, b.train_x) and a.info["content_hash"] == b.info["content_hash"]
    c = load_fashion_mnist(tmp_path, cfg=cfg.model_copy(update={"subset_seed": 2}))
    assert not torch.equal(a.train_x, c.train_x) and a.info["content_hash"] != c.info["content_hash"]


def test_default_scenarios_target_the_tops(tmp_path):
    """Defaults: S = tops, c = T-shirt/top, F = {T-shirt/top, Pullover}, hidden D_fr = {Coat, Shirt}."""
    write_fashion(tmp_path, n_train=40, n_test=20)
    ds = load_fashion_mnist(tmp_path)
    tm = build_scenario(ds, "target_mismatch", ScenarioConfig())
    assert [ds.class_names[c] for c in tm.forget_classes] == ["T-shirt/top", "Pullover"]
    assert sorted(tm.label_names[i] for i in tm.hidden_target_labels) == ["Coat", "Shirt"]
    dm = build_scenario(ds, "data_mismatch", ScenarioConfig())
    assert dm.label_names == ["tops", "footwear", "other"] and dm.hidden_target_labels == [0]
    am = build_scenario(ds, "all_matched", ScenarioConfig())
    assert [ds.class_names[c] for c in am.forget_classes] == ["T-shirt/top"]
