"""Fashion-MNIST (Xiao et al., 2017) from its standard IDX files, with a documented superclass grouping.

Files read, gzipped (``.gz``) or plain, from one folder::

    train-images-idx3-ubyte   train-labels-idx1-ubyte   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

Where they are looked for: ``data_dir`` itself, ``data_dir/FashionMNIST/raw`` (torchvision's
layout) or ``data_dir/raw``. Without ``data_dir``: Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist/``, the four ``.gz`` files; ``apt-get install
dataset-fashion-mnist``), then a copy torchvision downloaded earlier under
``$UNLEARNKIT_HOME/data/fashion-mnist``, then — only with ``download=True`` — a download through
torchvision into that folder (never in tests).

The IDX parser is strict and never unpickles anything: magic number (two zero bytes, type 0x08
= unsigned byte, the expected number of dimensions), positive sizes, and a payload of exactly
the size the header announces; a damaged, truncated or padded file is a one-line
:class:`UnlearnkitError` naming the file and the fix.

Images stay **single-channel** uint8 ``(N, 1, 28, 28)`` (replicating grey into three channels
would triple memory and the first layer's work and add nothing); the classifiers take the
number of input channels from ``len(mean)``.

**Superclasses.** Fashion-MNIST has no hierarchy; we use this grouping by garment type:

| superclass | classes |
|---|---|
| tops | T-shirt/top, Pullover, Coat, Shirt |
| footwear | Sandal, Sneaker, Ankle boot |
| other | Trouser, Dress, Bag |

``tops`` is the natural target superclass of the scenarios (and the default, superclass 0):
its four classes are the ones a classifier confuses with each other (upper-body garments of
similar silhouette), i.e. their representations are entangled, which is what makes target and
data mismatch non-trivial; footwear is a second coherent group. ``other`` collects the three
visually distinct remaining classes (they are rarely confused with anything, so splitting them
into singleton superclasses would change no scenario). With the defaults the forgotten class
c is ``T-shirt/top``, F = {``T-shirt/top``, ``Pullover``} and the hidden part of the concept
in target/data mismatch is {``Coat``, ``Shirt``}.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.data.images import ImageSet
from unlearnkit.errors import UnlearnkitError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
FASHION_SUPERCLASSES = ["tops", "footwear", "other"]
FASHION_GROUPING = {
    "tops": ["T-shirt/top", "Pullover", "Coat", "Shirt"],
    "footwear": ["Sandal", "Sneaker", "Ankle boot"],
    "other": ["Trouser", "Dress", "Bag"],
}
FASHION_MEAN = (0.2860,)  # the training set's pixel mean and std in [0, 1]
FASHION_STD = (0.3530,)
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_UBYTE = 0x08
_FIX = "re-download it, or reinstall the package (apt-get install --reinstall dataset-fashion-mnist)"


class FashionMNISTConfig(StrictModel):
    """Which part of Fashion-MNIST to use (a stratified, seeded subset; None = every image)."""

    train_per_class: int | None = Field(None, ge=1, le=6000, description="training images per class (6000 = all)")
    test_per_class: int | None = Field(None, ge=1, le=1000, description="test images per class (1000 = all)")
    subset_seed: int = Field(0, description="seed of the per-class subset")


def fashion_fine_to_coarse() -> list[int]:
    out = [-1] * len(FASHION_CLASSES)
    for s, sup in enumerate(FASHION_SUPERCLASSES):
        for c in FASHION_GROUPING[sup]:
            out[FASHION_CLASSES.index(c)] = s
    return out


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array with ``ndim`` dimensions (gzipped or plain), header checked strictly."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise UnlearnkitError(f"{path}: truncated IDX file ({len(raw)} bytes, no header); {_FIX}")
    if raw[0] != 0 or raw[1] != 0:
        raise UnlearnkitError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()}); {_FIX}")
    if raw[2] != _UBYTE:
        raise UnlearnkitError(f"{path}: IDX data type 0x{raw[2]:02x}, expected 0x08 (unsigned byte); {_FIX}")
    if raw[3] != ndim:
        raise UnlearnkitError(f"{path}: IDX file has {raw[3]} dimensions, expected {ndim}; is it the right file?")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise UnlearnkitError(f"{path}: truncated IDX header; {_FIX}")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    if any(d <= 0 for d in dims):
        raise UnlearnkitError(f"{path}: IDX header gives an empty dimension {dims}; {_FIX}")
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - start != size:
        what = "truncated" if len(raw) - start < size else "longer than its header says"
        raise UnlearnkitError(f"{path}: IDX file {what} (header {dims} = {size} bytes of data, found "
                              f"{len(raw) - start}); {_FIX}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise UnlearnkitError(f"{path}: damaged gzip file ({e}); {_FIX}") from None


def _file(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def data_files(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (plain preferred over ``.gz``), or None if any is missing."""
    found = {k: _file(folder, v) for k, v in FILES.items()}
    return None if any(p is None for p in found.values()) else found  # type: ignore[return-value]


def find_files(data_dir: str | Path) -> dict[str, Path]:
    """The four files under ``data_dir`` (itself, ``FashionMNIST/raw`` or ``raw``), or a clear error."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UnlearnkitError(f"--data-dir {str(root)!r} does not exist")
    for cand in (root, root / "FashionMNIST" / "raw", root / "raw"):
        found = data_files(cand)
        if found:
            return found
    names = ", ".join(f"{v}[.gz]" for v in FILES.values())
    raise UnlearnkitError(f"no Fashion-MNIST files in {str(root)!r}: expected {names} there or in FashionMNIST/raw "
                          "(torchvision's layout); point --data-dir at them or install dataset-fashion-mnist")


def default_files(download: bool) -> dict[str, Path]:
    """Debian's package, else an earlier torchvision download, else (if allowed) a new download."""
    from unlearnkit.io import home

    root = home() / "data" / "fashion-mnist"
    for cand in (DEBIAN_DIR, root / "FashionMNIST" / "raw"):
        found = data_files(cand)
        if found:
            return found
    if not download:
        raise UnlearnkitError("Fashion-MNIST not found: apt-get install dataset-fashion-mnist, give --data-dir PATH, "
                              "or allow the download (data.download=true)")
    return find_files(_download(root))


def _download(root: Path) -> Path:  # pragma: no cover - network
    from torchvision import datasets

    for train in (True, False):
        datasets.FashionMNIST(str(root), train=train, download=True)
    return root


def _subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` seeded random images of each class (all if None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(len(FASHION_CLASSES)):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.permutation(idx)[:per_class] if per_class < len(idx) else idx)
    return np.sort(np.concatenate(picks))


def _split(files: dict[str, Path], split: str, per_class: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = read_idx(files[f"{split}_images"], 3)
    y = read_idx(files[f"{split}_labels"], 1)
    if len(x) != len(y):
        raise UnlearnkitError(f"Fashion-MNIST {split}: {len(x)} images but {len(y)} labels; {_FIX}")
    if int(y.max()) >= len(FASHION_CLASSES):
        raise UnlearnkitError(f"{files[f'{split}_labels']}: label {int(y.max())} outside 0..9; {_FIX}")
    keep = _subset(y, per_class, seed)
    return torch.from_numpy(x[keep].copy()).unsqueeze(1), torch.from_numpy(y[keep].astype(np.int64))


def load_fashion_mnist(data_dir: str | Path | None = None, download: bool = False,
                       cfg: FashionMNISTConfig | None = None) -> ImageSet:
    """Fashion-MNIST as an :class:`ImageSet`: grey ``(N, 1, 28, 28)`` uint8, 10 classes in 3 superclasses.

    ``info`` holds the folder, the files and ``content_hash`` (SHA-256 of the decoded images and
    labels actually used: the same for the ``.gz`` and the plain files) for cache keys."""
    cfg = cfg or FashionMNISTConfig()
    files = find_files(data_dir) if data_dir is not None else default_files(download)
    train_x, train_y = _split(files, "train", cfg.train_per_class, cfg.subset_seed)
    test_x, test_y = _split(files, "test", cfg.test_per_class, cfg.subset_seed + 1)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise UnlearnkitError(f"Fashion-MNIST train images are {tuple(train_x.shape[2:])}, test images "
                              f"{tuple(test_x.shape[2:])}: the files do not belong together")
    h = hashlib.sha256()
    for t in (train_x, train_y, test_x, test_y):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    info = {"folder": str(files["train_images"].parent), "files": {k: str(v) for k, v in files.items()},
            "subset": cfg.model_dump(), "content_hash": h.hexdigest()[:16]}
    ds = ImageSet("fashion-mnist", train_x, train_y, test_x, test_y, list(FASHION_CLASSES),
                  list(FASHION_SUPERCLASSES), fashion_fine_to_coarse(), mean=FASHION_MEAN, std=FASHION_STD, info=info)
    ds.check()
    return ds
