"""Run vision methods from a saved θ_o in one or several processes (``torchrun``); rank 0 writes metrics.

    torchrun --standalone --nproc_per_node 2 tests/ddp_vision_worker.py THETA.pt OUT.json GLOBAL_BATCH scrub,ft

Used by ``tests/test_vision_ddp.py``. The per-rank batch is GLOBAL_BATCH / world size, so one
process and W processes see the same global batches (see ``TensorLoader``).
"""

from __future__ import annotations

import json
import sys

import torch

from unlearnkit.data.images import SyntheticConfig, synthetic
from unlearnkit.data.scenarios import ScenarioConfig, build_scenario
from unlearnkit.engine.vision import (
    ClassifierRecipe,
    TensorLoader,
    accelerator,
    is_main_process,
    process_rank_world,
    scenario_metrics,
)
from unlearnkit.methods import get_method
from unlearnkit.methods.vision.base import VisionContext
from unlearnkit.models.classifiers import ModelConfig, build_classifier

DATA = SyntheticConfig(n_superclasses=3, classes_per_superclass=2, image_size=8, train_per_class=60,
                       test_per_class=30, max_shift=1)
MODEL = ModelConfig(arch="cnn", width=8)
SCENARIO = "target_mismatch"
PARAMS = {"scrub": {"epochs": 3, "msteps": 1, "lr": 0.01}, "ft": {"epochs": 3, "lr": 0.01},
          "tarf": {"epochs": 4, "t1": 0.5, "t0": 2, "lr": 0.01, "k0": 0.05}}


def make_model(sc, ds):
    return build_classifier(MODEL, sc.num_classes, ds.mean, ds.std, seed=0)


def main(theta: str, out: str, global_batch: int, methods: list[str]) -> None:
    torch.set_num_threads(1)
    accelerator()  # sets up the process group under torchrun (gloo on a CPU)
    _, world = process_rank_world()
    if global_batch % world:
        raise SystemExit(f"global batch {global_batch} not divisible by {world} processes")
    bs = global_batch // world
    ds = synthetic(DATA)
    sc = build_scenario(ds, SCENARIO, ScenarioConfig())
    original = make_model(sc, ds)
    original.load_state_dict(torch.load(theta, map_location="cpu"))
    original.eval()
    results = {"world": world}
    for name in methods:
        spec = get_method(name, "vision")
        loader = lambda idx, s: TensorLoader(ds.train_x[idx], sc.train_labels[idx], bs, seed=s)  # noqa: E731
        ctx = VisionContext(original=original, forget=loader(sc.forget, 0), unlearn=loader(sc.unlearn, 1),
                            num_classes=sc.num_classes, seed=0, make_model=lambda: make_model(sc, ds),
                            train_recipe=ClassifierRecipe(), n_hidden_target_classes=len(sc.hidden_target_labels))
        torch.manual_seed(0)
        model = spec.fn(ctx, spec.params(**PARAMS.get(name, {})))
        metrics, _ = scenario_metrics(model, ds, sc, seed=0)
        results[name] = {k: metrics[k] for k in ("UA", "RA", "TA", "MIA")}
        results[name]["sizes"] = {"target": len(sc.target), "retain": len(sc.retain), "test_other": len(sc.test_other)}
    if is_main_process():  # only the main process writes files
        with open(out, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","))
