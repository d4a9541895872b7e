"""The seed's image-classifier table on CIFAR with ResNet-18 at full size, in one go (for a GPU).

    python benchmarks/gpu_vision.py --data-dir ~/data                 # CIFAR-10, 4 scenarios, all methods, 3 seeds
    python benchmarks/gpu_vision.py --data-dir ~/data --dataset cifar100
    python benchmarks/gpu_vision.py --toy                             # the same code at reduced size on a CPU

It runs ``unlearnkit run vision --dataset cifar10 --model resnet18 --methods all`` with the full preset
(``configs/vision_cifar10.yaml``: 100 epochs for θ_o and θ_r, augmentation) and prints the four tables
and the wall time, which go into docs/vision.md. ``--toy`` writes a tiny CIFAR-10 copy in the official
python-pickle layout and runs one seed, one epoch, a few hundred images — the path a GPU run takes,
end to end, in minutes on a CPU. CIFAR is never downloaded by the toy mode.
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tiny_cifar10(root: Path, per_batch: int = 40, n_test: int = 60, seed: int = 0) -> Path:
    """A small CIFAR-10 in the official layout (bytes keys, N × 3072 uint8), labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(x) % 10 for x in range(per_batch)]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test = {b"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), b"labels": [x % 10 for x in range(n_test)]}
    (folder / "test_batch").write_bytes(pickle.dumps(test))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar10")
    ap.add_argument("--data-dir", help="directory holding the official python-pickle archive (else torchvision downloads)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--toy", action="store_true", help="reduced size on a CPU (tiny test-written CIFAR-10)")
    args = ap.parse_args()
    from unlearnkit.recipes.vision import resolve_config, run_vision

    flags = {"data": {"dataset": args.dataset}, "model": {"arch": "resnet18"}, "methods": ["all"],
             "seeds": [int(s) for s in args.seeds.split(",")]}
    overrides: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.toy:
            flags["data"].update({"dataset": "cifar10", "data_dir": str(write_tiny_cifar10(Path(tmp))),
                                  "download": False})
            flags["seeds"] = [0]
            overrides = ["train.epochs=1", "train.batch_size=64", "unlearn_batch_size=64", "eval.batch_size=128"]
            overrides += [f"method_params.{m}.epochs=1" for m in ("ft", "rl", "ga", "bs", "l1_sparse", "salun",
                                                                   "scrub")]
            overrides += ["method_params.scrub.msteps=1", "method_params.tarf.epochs=2", "method_params.tarf.t1=0.5",
                          "method_params.tarf.t0=1"]
        elif args.data_dir:
            flags["data"]["data_dir"] = args.data_dir
        cfg = resolve_config(None, overrides, flags)
        t0 = time.perf_counter()
        run_vision(cfg, say=lambda s: print(s, flush=True))
        print(f"\nbenchmarks/gpu_vision.py: {'toy ' if args.toy else ''}{cfg.data.dataset} ResNet-18, "
              f"{len(cfg.methods)} methods × {len(cfg.scenarios)} scenarios × {len(cfg.seeds)} seeds in "
              f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
