"""CIFAR-10 and CIFAR-100 in the official python-pickle format.

Files read (the layout of the official archives, which torchvision also downloads):

- CIFAR-10: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``; keys
  ``data`` (N × 3072 uint8, channel-major 32×32), ``labels``; meta ``label_names``.
- CIFAR-100: ``cifar-100-python/{train, test, meta}``; keys ``data``, ``fine_labels`` and
  ``coarse_labels``; meta ``fine_label_names``, ``coarse_label_names``. The superclass of each
  fine class is read from the pickle's own ``coarse_labels`` (20 superclasses × 5 classes).

``data_dir`` may be the directory that holds ``cifar-10-batches-py`` / ``cifar-100-python``
or that folder itself. Without ``data_dir`` the archive is downloaded with torchvision into
``$UNLEARNKIT_HOME/data/cifar`` (never in tests).

**CIFAR-10 superclasses.** CIFAR-10 has no hierarchy; we use this documented grouping into
five superclasses of two classes each (the semantically closest pairs):

| superclass    | classes              |
|---------------|----------------------|
| air_water     | airplane, ship       |
| road_vehicle  | automobile, truck    |
| small_animal  | bird, frog           |
| pet           | cat, dog             |
| hoofed_animal | deer, horse          |
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from unlearnkit.data.images import ImageSet
from unlearnkit.errors import UnlearnkitError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_SUPERCLASSES = ["air_water", "road_vehicle", "small_animal", "pet", "hoofed_animal"]
CIFAR10_GROUPING = {
    "air_water": ["airplane", "ship"],
    "road_vehicle": ["automobile", "truck"],
    "small_animal": ["bird", "frog"],
    "pet": ["cat", "dog"],
    "hoofed_animal": ["deer", "horse"],
}
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}

_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_FILES = {"cifar10": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
          "cifar100": ["train", "test", "meta"]}


def cifar10_fine_to_coarse() -> list[int]:
    out = [-1] * len(CIFAR10_CLASSES)
    for s, sup in enumerate(CIFAR10_SUPERCLASSES):
        for c in CIFAR10_GROUPING[sup]:
            out[CIFAR10_CLASSES.index(c)] = s
    return out


# The only globals the official CIFAR pickles need: numpy's array reconstruction (numpy 1 and 2 names).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode"),
}


class _Refused(pickle.UnpicklingError):
    """A global outside :data:`_SAFE_GLOBALS` was asked for."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other global (a function that would run
    code, e.g. ``os.system``) is refused before anything is called."""

    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"refused global {module}.{name}")


def _unpickle(path: Path) -> dict:
    """A CIFAR batch file, read with the restricted unpickler (a crafted file cannot run code)."""
    try:
        with open(path, "rb") as f:
            d = _RestrictedUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise UnlearnkitError(f"{path} is not a plain CIFAR batch file ({e}): refusing to load it; use the official "
                              "archive") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise UnlearnkitError(f"{path} is damaged or not a CIFAR batch file ({type(e).__name__}): re-download the "
                              "official archive") from None
    if not isinstance(d, dict):
        raise UnlearnkitError(f"{path} does not hold a dict: not a CIFAR batch file")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _names(v) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in v]


def _images(data) -> torch.Tensor:
    a = np.asarray(data, dtype=np.uint8)
    if a.ndim != 2 or a.shape[1] != 3072:
        raise UnlearnkitError(f"CIFAR 'data' must be N × 3072 uint8 (got shape {a.shape}); is the file corrupt?")
    return torch.from_numpy(a.reshape(-1, 3, 32, 32).copy())


def find_folder(name: Literal["cifar10", "cifar100"], data_dir: str | Path) -> Path:
    """The folder holding the pickles, or an error naming what is missing."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UnlearnkitError(f"--data-dir {str(root)!r} does not exist")
    for cand in (root / _FOLDER[name], root):
        if all((cand / f).is_file() for f in _FILES[name]):
            return cand
    raise UnlearnkitError(
        f"no {name.upper()} files in {str(root)!r}: expected {_FOLDER[name]}/{{{', '.join(_FILES[name])}}} "
        "(the python version of the official archive); point --data-dir at it or omit --data-dir to download")


def load_cifar(name: Literal["cifar10", "cifar100"], data_dir: str | Path | None = None,
               download: bool = True) -> ImageSet:
    """CIFAR-10/100 as an :class:`ImageSet` (fine labels, superclasses, names)."""
    if name not in _FOLDER:
        raise UnlearnkitError(f"unknown CIFAR variant {name!r}; use cifar10 or cifar100")
    if data_dir is None:
        if not download:
            raise UnlearnkitError(f"{name}: give --data-dir PATH or allow the download (data.download=true)")
        data_dir = _download(name)
    folder = find_folder(name, data_dir)
    if name == "cifar10":
        batches = [_unpickle(folder / f"data_batch_{i}") for i in range(1, 6)]
        test = _unpickle(folder / "test_batch")
        meta = _unpickle(folder / "batches.meta")
        train_x = torch.cat([_images(b["data"]) for b in batches])
        train_y = torch.as_tensor(np.concatenate([b["labels"] for b in batches]), dtype=torch.long)
        test_x, test_y = _images(test["data"]), torch.as_tensor(test["labels"], dtype=torch.long)
        class_names = _names(meta.get("label_names", CIFAR10_CLASSES))
        if class_names != CIFAR10_CLASSES:
            raise UnlearnkitError(f"{folder}/batches.meta lists classes {class_names}, not CIFAR-10's")
        sup_names, f2c = list(CIFAR10_SUPERCLASSES), cifar10_fine_to_coarse()
    else:
        train, test, meta = _unpickle(folder / "train"), _unpickle(folder / "test"), _unpickle(folder / "meta")
        for split, d in (("train", train), ("test", test)):
            if "coarse_labels" not in d or "fine_labels" not in d:
                raise UnlearnkitError(f"{folder}/{split} lacks fine_labels/coarse_labels: not the CIFAR-100 python format")
        train_x, test_x = _images(train["data"]), _images(test["data"])
        train_y = torch.as_tensor(train["fine_labels"], dtype=torch.long)
        test_y = torch.as_tensor(test["fine_labels"], dtype=torch.long)
        class_names = _names(meta["fine_label_names"])
        sup_names = _names(meta["coarse_label_names"])
        f2c = [-1] * len(class_names)
        for f, c in zip(list(train["fine_labels"]) + list(test["fine_labels"]),
                        list(train["coarse_labels"]) + list(test["coarse_labels"]), strict=True):
            if f2c[f] not in (-1, c):
                raise UnlearnkitError(f"{folder}: fine class {class_names[f]!r} appears under two superclasses")
            f2c[f] = int(c)
        if -1 in f2c:
            missing = [class_names[i] for i, c in enumerate(f2c) if c == -1]
            raise UnlearnkitError(f"{folder}: no images (hence no superclass) for classes {missing}")
    ds = ImageSet(name, train_x, train_y, test_x, test_y, class_names, sup_names, f2c,
                  mean=CIFAR_MEAN[name], std=CIFAR_STD[name], info={"folder": str(folder)})
    ds.check()
    return ds


def _download(name: str) -> Path:  # pragma: no cover - network
    from torchvision import datasets

    from unlearnkit.io import home

    root = home() / "data" / "cifar"
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    cls(str(root), train=True, download=True)
    return root
