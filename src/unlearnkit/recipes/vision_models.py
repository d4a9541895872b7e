"""θ_o and θ_r of ``unlearnkit run vision``, cached under ``$UNLEARNKIT_HOME/vision``, and the context a vision
unlearning method receives (the original model, the D_f / D_un loaders, a factory of fresh models)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from unlearnkit import __version__
from unlearnkit.data.images import ImageSet
from unlearnkit.data.scenarios import Scenario
from unlearnkit.engine.vision import TensorLoader, device, train_classifier
from unlearnkit.io import atomic_dir, atomic_file, atomic_write_json, content_hash, home, read_json_or_none
from unlearnkit.methods import get_method
from unlearnkit.methods.vision.base import VisionContext
from unlearnkit.models.classifiers import build_classifier
from unlearnkit.recipes.vision_config import VisionSetting, method_params

Say = Callable[[str], None]


class ScenarioModels(NamedTuple):
    """θ_o and θ_r of one scenario and seed, their cache metadata, and the factory of fresh models."""

    original: torch.nn.Module
    o_meta: dict
    reference: torch.nn.Module
    r_meta: dict
    make: Callable[[], torch.nn.Module]


def _save_weights(model: torch.nn.Module, path) -> None:
    from safetensors.torch import save_file

    with atomic_file(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))


def _load_weights(model: torch.nn.Module, path, digest: str | None) -> bool:
    """Load a cached state dict (safetensors only) whose file still has the SHA-256 recorded when it was saved;
    False when it is damaged or altered (it is then reported, discarded and rebuilt)."""
    from safetensors.torch import load_file

    from unlearnkit.io import discard, file_sha256

    if digest is not None and file_sha256(path) != digest:
        discard(path.parent, "cached vision model", "its weights do not match the checksum recorded when it was saved")
        return False
    try:
        model.load_state_dict(load_file(str(path)))
        return True
    except Exception as e:  # noqa: BLE001 - any damage means "rebuild"
        discard(path.parent, "cached vision model", f"it cannot be read ({type(e).__name__})")
        return False


def cached_model(kind: str, key: dict, make: Callable[[], torch.nn.Module], build: Callable[[torch.nn.Module], None],
                 say: Say) -> tuple[torch.nn.Module, dict]:
    """Load ``home()/vision/<kind>-<hash>`` or build it (atomically, under a lock); returns (model, meta)."""
    from unlearnkit.io import file_sha256, lock_path, locked

    final = home() / "vision" / f"{kind}-{content_hash(key)}"
    with locked(lock_path("vision", final.name)):
        model = make()
        meta = read_json_or_none(final / "meta.json")
        weights = final / "model.safetensors"
        if meta and weights.is_file() and _load_weights(model, weights, meta.get("sha256")):
            say(f"  {kind:<24} cached   {final}")
            return model.to(device()).eval(), meta
        t0 = time.perf_counter()
        model = build(model)
        seconds = time.perf_counter() - t0
        meta = {"kind": kind, "key": key, "train_seconds": round(seconds, 3), "unlearnkit_version": __version__}
        with atomic_dir(final) as tmp:
            _save_weights(model, tmp / "model.safetensors")
            atomic_write_json(tmp / "meta.json", {**meta, "sha256": file_sha256(tmp / "model.safetensors")})
        say(f"  {kind:<24} trained  {final}  ({seconds:.1f}s)")
        return model.eval(), meta


def _loader(ds: ImageSet, sc: Scenario, idx: torch.Tensor, *, bs: int, seed: int, augment: bool) -> TensorLoader:
    return TensorLoader(ds.train_x[idx], sc.train_labels[idx], bs, shuffle=True, seed=seed, augment=augment)


def scenario_models(st: VisionSetting, sc: Scenario, seed: int, say: Say) -> ScenarioModels:
    """θ_o (trained on D in the scenario's label space) and θ_r (Retrain on D_r) for one scenario and seed."""
    cfg, ds = st.cfg, st.ds
    mkey = {"data_key": st.data_key, "model": cfg.model.model_dump(), "train": cfg.train.model_dump(), "seed": seed,
            "augment": cfg.data.augment}
    make = lambda: build_classifier(cfg.model, sc.num_classes, ds.mean, ds.std, seed=seed)  # noqa: E731

    def train_all(model: torch.nn.Module) -> torch.nn.Module:
        model.to(device())
        loader = _loader(ds, sc, torch.arange(len(ds.train_x)), bs=cfg.train.batch_size, seed=seed,
                         augment=cfg.data.augment)
        train_classifier(model, loader, cfg.train, desc="θ_o")
        return model

    original, o_meta = cached_model(f"original-{sc.label_level}", {**mkey, "labels": sc.label_level}, make,
                                    train_all, say)
    retrain = get_method("retrain", "vision")
    rkey = {**mkey, "labels": sc.label_level, "scenario": sc.name, "choice": list(map(str, st.choice)),
            "retain_hash": content_hash(sc.retain.tolist())}

    def build_ref(model: torch.nn.Module) -> torch.nn.Module:
        ctx = method_context(st, sc, seed, original=original, make=make, with_oracle=True)
        return retrain.fn(ctx, method_params(cfg, retrain))

    reference, r_meta = cached_model(f"reference-{sc.name}", rkey, make, build_ref, say)
    return ScenarioModels(original, o_meta, reference, r_meta, make)


def method_context(st: VisionSetting, sc: Scenario, seed: int, *, original: torch.nn.Module,
                   make: Callable[[], torch.nn.Module], with_oracle: bool) -> VisionContext:
    """What a vision method receives: θ_o, the D_f and D_un loaders, and D_r only for methods that need it."""
    cfg, ds = st.cfg, st.ds
    bs, aug = cfg.unlearn_batch_size, cfg.data.augment
    return VisionContext(
        original=original, forget=_loader(ds, sc, sc.forget, bs=bs, seed=seed, augment=aug),
        unlearn=_loader(ds, sc, sc.unlearn, bs=bs, seed=seed + 1, augment=aug), num_classes=sc.num_classes,
        seed=seed, make_model=make, train_recipe=cfg.train, n_hidden_target_classes=len(sc.hidden_target_labels),
        oracle_retain=(_loader(ds, sc, sc.retain, bs=cfg.train.batch_size, seed=seed, augment=aug)
                       if with_oracle else None),
    )
