"""``unlearnkit run vision``: label-domain scenarios × image-unlearning methods → seed-layout tables.

The pipeline, top to bottom (:func:`run`):

1. load the image set (embedded synthetic by default, CIFAR-10/100 with ``--dataset``);
2. for each scenario and seed: build the scenario's sets, get θ_o (trained on D in the
   scenario's label space) and θ_r (Retrain on D_r) from the cache or train them;
3. for each method: θ_u = method(ctx, params), timed; evaluate UA/RA/TA/MIA; Gap against θ_r;
4. write one JSON (+ per-sample ``.npz``) per (scenario, method, seed) atomically into the run
   directory ``$UNLEARNKIT_HOME/runs/vision-<dataset>-<hash>``; a rerun skips finished entries
   (an entry is redone if its method parameters changed);
5. print one table per scenario (UA, RA, TA, MIA, Gap ↓, TIME ↓) and where the results are.

Configuration layers (later wins): the dataset's preset (:data:`PRESETS`, mirrored in
``configs/vision*.yaml``) → ``--config FILE`` → command-line flags → ``key=value`` overrides.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from unlearnkit import __version__
from unlearnkit.config import StrictModel, deep_merge, load_yaml, parse_overrides, validate
from unlearnkit.data.images import ImageSet, SyntheticConfig, synthetic
from unlearnkit.data.scenarios import SCENARIOS, TITLES, Scenario, ScenarioConfig, build_scenario, resolve_choice
from unlearnkit.engine.vision import ClassifierRecipe, TensorLoader, device, scenario_metrics, train_classifier
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_write_json, atomic_write_text, content_hash, file_hash, home, read_json
from unlearnkit.methods import MethodSpec, get_method, methods_for
from unlearnkit.methods.vision.base import VisionContext
from unlearnkit.metrics.vision import GAP_KEYS, gap, precision_recall
from unlearnkit.models.classifiers import ModelConfig, build_classifier
from unlearnkit.results.tables import format_table

# Order of the seed's table; methods registered later follow alphabetically.
METHOD_ORDER = ["retrain", "ft", "rl", "ga", "iu", "bs", "l1_sparse", "salun", "scrub", "tarf"]
DEFAULT_METHODS = ["retrain", "ft", "ga", "rl"]
DISPLAY = {"retrain": "Retrain (ref.)", "ft": "FT", "rl": "RL", "ga": "GA", "iu": "IU", "bs": "BS",
           "l1_sparse": "L1-sparse", "salun": "SalUn", "scrub": "SCRUB", "tarf": "TARF"}


class DataConfig(StrictModel):
    dataset: Literal["synthetic", "cifar10", "cifar100"] = "synthetic"
    data_dir: str | None = Field(None, description="local CIFAR directory (python pickles); None = download")
    download: bool = True
    augment: bool = Field(False, description="random crop + flip while training (standard for CIFAR)")
    synthetic: SyntheticConfig = SyntheticConfig()


class EvalConfig(StrictModel):
    batch_size: int = Field(512, ge=1)
    mia_max_pairs: int = Field(5000, ge=10, description="cap on the member / non-member sample size of the MIA SVC")


class VisionRunConfig(StrictModel):
    data: DataConfig = DataConfig()
    scenario: ScenarioConfig = ScenarioConfig()
    scenarios: list[Literal["all_matched", "target_mismatch", "model_mismatch", "data_mismatch"]] = list(SCENARIOS)
    model: ModelConfig = ModelConfig()
    train: ClassifierRecipe = ClassifierRecipe()
    unlearn_batch_size: int = Field(128, ge=1, description="batch size of the D_f / D_un loaders methods receive")
    methods: list[str] = list(DEFAULT_METHODS)
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method overrides")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="each seed trains its own θ_o and θ_r")
    cpu_threads: int | None = Field(None, ge=1, description="torch threads on a CPU (None = torch's default)")
    eval: EvalConfig = EvalConfig()


# Dataset presets. The synthetic one is sized for a 2-core CPU (the whole default run in a few
# minutes); its method hyperparameters are the literature defaults rescaled to the small CNN.
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic": {
        "data": {"dataset": "synthetic", "augment": False},
        "model": {"arch": "cnn", "width": 16},
        "train": {"epochs": 20, "lr": 0.1, "batch_size": 128},
        "cpu_threads": 1,
        "method_params": {
            "ft": {"epochs": 10, "lr": 0.1},
            "rl": {"epochs": 6, "lr": 0.02},
            "ga": {"epochs": 10, "lr": 0.0003},
            "iu": {"alpha": 0.01, "damping": 0.001, "fisher_samples": 128},
            "bs": {"epochs": 10, "lr": 0.0005},
            "l1_sparse": {"epochs": 10, "lr": 0.1, "gamma": 0.0002},
            "salun": {"epochs": 6, "lr": 0.02},
            "scrub": {"epochs": 5, "msteps": 2, "lr": 0.01},
            "tarf": {"epochs": 10, "lr": 0.1, "k0": 0.01, "t1": 0.5, "t0": 5},
        },
    },
    "cifar10": {
        "data": {"dataset": "cifar10", "augment": True},
        "model": {"arch": "resnet18"},
        "train": {"epochs": 100, "lr": 0.1, "batch_size": 256},
        "unlearn_batch_size": 256,
    },
    "cifar100": {
        "data": {"dataset": "cifar100", "augment": True},
        "model": {"arch": "resnet18"},
        "train": {"epochs": 100, "lr": 0.1, "batch_size": 256},
        "unlearn_batch_size": 256,
    },
}


def preset(dataset: str) -> dict[str, Any]:
    if dataset not in PRESETS:
        raise UnlearnkitError(f"unknown dataset {dataset!r}; use synthetic, cifar10 or cifar100")
    return json.loads(json.dumps(PRESETS[dataset]))


def resolve_config(config_file: str | None = None, overrides: list[str] | None = None,
                   flags: dict[str, Any] | None = None) -> VisionRunConfig:
    """preset(dataset) ← config file ← flags ← key=value overrides."""
    file_data = load_yaml(config_file) if config_file else {}
    over = parse_overrides(overrides or [])
    flags = flags or {}
    dataset = (flags.get("data", {}).get("dataset") or over.get("data", {}).get("dataset")
               or file_data.get("data", {}).get("dataset") or "synthetic")
    data = deep_merge(deep_merge(deep_merge(preset(dataset), file_data), flags), over)
    cfg = validate(VisionRunConfig, data)
    cfg.methods = expand_methods(cfg.methods)
    for name, params in cfg.method_params.items():
        spec = get_method(name, "vision")
        validate(spec.params, params, prefix=f"method_params.{name}")
    return cfg


def expand_methods(names: list[str]) -> list[str]:
    registered = [s.name for s in methods_for("vision")]
    out: list[str] = []
    for n in names:
        if n.lower() == "all":
            out += sorted(registered, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))
        else:
            out.append(get_method(n, "vision").name)
    seen: set[str] = set()
    return [m for m in out if not (m in seen or seen.add(m))]


def method_params(cfg: VisionRunConfig, spec: MethodSpec) -> StrictModel:
    return validate(spec.params, cfg.method_params.get(spec.name, {}), prefix=f"method_params.{spec.name}")


# ---------------------------------------------------------------------------------------------
# data and models


def load_images(cfg: DataConfig) -> tuple[ImageSet, dict]:
    """The image set and a key that identifies its content (for the caches)."""
    if cfg.dataset == "synthetic":
        return synthetic(cfg.synthetic), {"dataset": "synthetic", "synthetic": cfg.synthetic.model_dump()}
    from unlearnkit.data.cifar import _FILES, find_folder, load_cifar

    ds = load_cifar(cfg.dataset, cfg.data_dir, cfg.download)
    folder = find_folder(cfg.dataset, ds.info["folder"])
    return ds, {"dataset": cfg.dataset, "files": file_hash([folder / f for f in _FILES[cfg.dataset]])}


def _save_model(model: torch.nn.Module, path: Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path / "model.pt")


def _cached_model(kind: str, key: dict, make: Callable[[], torch.nn.Module], build: Callable[[torch.nn.Module], None],
                  say: Callable[[str], None]) -> tuple[torch.nn.Module, dict]:
    """Load ``home()/vision/<kind>-<hash>`` or build it (atomically); returns (model, meta)."""
    final = home() / "vision" / f"{kind}-{content_hash(key)}"
    model = make()
    if (final / "meta.json").is_file() and (final / "model.pt").is_file():
        model.load_state_dict(torch.load(final / "model.pt", map_location="cpu"))
        meta = read_json(final / "meta.json")
        say(f"  {kind:<24} cached   {final}")
        return model.to(device()).eval(), meta
    t0 = time.perf_counter()
    model = build(model)
    seconds = time.perf_counter() - t0
    meta = {"kind": kind, "key": key, "train_seconds": round(seconds, 3), "unlearnkit_version": __version__}
    with atomic_dir(final) as tmp:
        _save_model(model, tmp)
        atomic_write_json(tmp / "meta.json", meta)
    say(f"  {kind:<24} trained  {final}  ({seconds:.1f}s)")
    return model.eval(), meta


def _loader(ds: ImageSet, sc: Scenario, idx: torch.Tensor, bs: int, seed: int, augment: bool) -> TensorLoader:
    return TensorLoader(ds.train_x[idx], sc.train_labels[idx], bs, shuffle=True, seed=seed, augment=augment)


# ---------------------------------------------------------------------------------------------
# provenance


def provenance(cfg: VisionRunConfig, seed: int) -> dict:
    import sklearn
    import torchvision

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        rev = None
    dev = device()
    return {
        "config": cfg.model_dump(), "unlearnkit_version": __version__, "git_revision": rev, "seed": seed,
        "libraries": {"python": platform.python_version(), "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__},
        "hardware": {"platform": platform.platform(), "processor": platform.processor(), "device": str(dev),
                     "cuda": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
                     "torch_threads": torch.get_num_threads()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------------------------------------
# the run


def run_dir_for(cfg: VisionRunConfig, data_key: dict) -> Path:
    key = {"data_key": data_key, "data": cfg.data.model_dump(exclude={"data_dir", "download"}),
           "scenario": cfg.scenario.model_dump(), "model": cfg.model.model_dump(), "train": cfg.train.model_dump(),
           "unlearn_batch_size": cfg.unlearn_batch_size, "eval": cfg.eval.model_dump()}
    return home() / "runs" / f"vision-{cfg.data.dataset}-{content_hash(key)}"


def run(cfg: VisionRunConfig, say: Callable[[str], None] = print, fresh: bool = False) -> Path:
    """Run every (scenario, seed, method) not yet finished; print the tables; return the run dir."""
    threads = torch.get_num_threads()
    if cfg.cpu_threads and device().type == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _run(cfg, say, fresh)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: VisionRunConfig, say: Callable[[str], None], fresh: bool) -> Path:
    t_run = time.perf_counter()
    ds, data_key = load_images(cfg.data)
    choice = resolve_choice(ds, cfg.scenario)
    rdir = run_dir_for(cfg, data_key)
    atomic_write_json(rdir / "config.json", cfg.model_dump())
    say(f"vision run: {ds.name} ({len(ds.train_x)} train / {len(ds.test_x)} test images, "
        f"{len(ds.class_names)} classes in {len(ds.superclass_names)} superclasses), model {cfg.model.arch}, "
        f"device {device()}")
    specs = [get_method(m, "vision") for m in cfg.methods]
    for name in cfg.scenarios:
        sc = build_scenario(ds, name, cfg.scenario)
        say(f"\n[{name}] {sc.description}; sizes {sc.sizes()}")
        for seed in cfg.seeds:
            run_scenario_seed(cfg, ds, sc, seed, choice, data_key, specs, rdir, say, fresh)
    say("")
    say(report(rdir, cfg))
    say(f"\ntotal wall time {time.perf_counter() - t_run:.1f}s")
    say(f"results: {rdir}")
    return rdir


def run_scenario_seed(cfg: VisionRunConfig, ds: ImageSet, sc: Scenario, seed: int, choice, data_key: dict,
                      specs: list[MethodSpec], rdir: Path, say, fresh: bool) -> None:
    sdir = rdir / sc.name
    mkey = {"data_key": data_key, "model": cfg.model.model_dump(), "train": cfg.train.model_dump(), "seed": seed,
            "augment": cfg.data.augment}
    make = lambda: build_classifier(cfg.model, sc.num_classes, ds.mean, ds.std, seed=seed)  # noqa: E731
    pending = [s for s in specs if fresh or not _entry_done(sdir, s.name, seed, _params_key(cfg, s))]
    if not pending and _entry_done(sdir, "reference", seed, {}) and _entry_done(sdir, "original", seed, {}):
        say(f"  seed {seed}: all {len(specs)} method(s) finished earlier (skipped)")
        return
    aug = cfg.data.augment

    def train_on(idx: torch.Tensor, desc: str) -> Callable[[torch.nn.Module], torch.nn.Module]:
        def build(model: torch.nn.Module) -> torch.nn.Module:
            model.to(device())
            train_classifier(model, _loader(ds, sc, idx, cfg.train.batch_size, seed, aug), cfg.train, desc=desc)
            return model
        return build

    original, o_meta = _cached_model(f"original-{sc.label_level}", {**mkey, "labels": sc.label_level}, make,
                                     train_on(torch.arange(len(ds.train_x)), "θ_o"), say)
    retrain = get_method("retrain", "vision")
    rkey = {**mkey, "labels": sc.label_level, "scenario": sc.name, "choice": list(map(str, choice)),
            "retain_hash": content_hash(sc.retain.tolist())}

    def build_ref(model: torch.nn.Module) -> torch.nn.Module:
        ctx = _context(cfg, ds, sc, original, seed, make, with_oracle=True)
        return retrain.fn(ctx, method_params(cfg, retrain))

    reference, r_meta = _cached_model(f"reference-{sc.name}", rkey, make, build_ref, say)
    ev = lambda m: scenario_metrics(m, ds, sc, seed, cfg.eval.mia_max_pairs, cfg.eval.batch_size)  # noqa: E731
    ref_metrics, ref_samples = ev(reference)
    ref_metrics["TIME"] = r_meta["train_seconds"]
    orig_metrics, orig_samples = ev(original)
    orig_metrics["TIME"] = 0.0
    orig_metrics["Gap"] = gap(orig_metrics, ref_metrics)
    base = {"scenario": sc.name, "description": sc.description, "sizes": sc.sizes(),
            "hidden_target_labels": [sc.label_names[i] for i in sc.hidden_target_labels]}
    _write_entry(sdir, "reference", seed, {}, {**base, "method": "reference", "metrics": ref_metrics,
                                                "provenance": provenance(cfg, seed)}, ref_samples)
    _write_entry(sdir, "original", seed, {}, {**base, "method": "original", "metrics": orig_metrics,
                                               "train_seconds": o_meta["train_seconds"],
                                               "provenance": provenance(cfg, seed)}, orig_samples)
    for spec in pending:
        pkey = _params_key(cfg, spec)
        if spec.name == "retrain":  # the reference itself: no second training
            metrics, samples, log = dict(ref_metrics), ref_samples, {"note": "θ_r (cached reference)"}
            metrics["Gap"] = 0.0
        else:
            ctx = _context(cfg, ds, sc, original, seed, make, with_oracle="oracle_retain" in spec.needs)
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            model = spec.fn(ctx, method_params(cfg, spec))
            seconds = time.perf_counter() - t0
            metrics, samples = ev(model)
            metrics["TIME"] = round(seconds, 3)
            metrics["Gap"] = gap(metrics, ref_metrics)
            log = _jsonable(ctx.log)
            if "identified_labels" in ctx.log:
                p, r = precision_recall(ctx.log["identified_labels"], sc.hidden_target_labels)
                log.update({"identified": [sc.label_names[i] for i in ctx.log["identified_labels"]],
                            "hidden_truth": [sc.label_names[i] for i in sc.hidden_target_labels],
                            "precision": p, "recall": r})
        _write_entry(sdir, spec.name, seed, pkey, {**base, "method": spec.name,
                                                   "params": method_params(cfg, spec).model_dump(),
                                                   "metrics": metrics, "log": log,
                                                   "provenance": provenance(cfg, seed)}, samples)
        say(f"  seed {seed} {DISPLAY.get(spec.name, spec.name):<14} UA {metrics['UA']:6.2f}  RA {metrics['RA']:6.2f}  "
            f"TA {metrics['TA']:6.2f}  MIA {metrics['MIA']:6.2f}  Gap {metrics['Gap']:6.2f}  "
            f"({metrics['TIME']:.1f}s)" + (_ident_note(log) if "identified" in log else ""))


def _ident_note(log: dict) -> str:
    return f"  identified {log['identified']} (truth {log['hidden_truth']}: P {log['precision']:.0f} R {log['recall']:.0f})"


def _context(cfg: VisionRunConfig, ds: ImageSet, sc: Scenario, original, seed: int, make,
             with_oracle: bool) -> VisionContext:
    bs, aug = cfg.unlearn_batch_size, cfg.data.augment
    return VisionContext(
        original=original, forget=_loader(ds, sc, sc.forget, bs, seed, aug),
        unlearn=_loader(ds, sc, sc.unlearn, bs, seed + 1, aug), num_classes=sc.num_classes, seed=seed,
        make_model=make, train_recipe=cfg.train, n_hidden_target_classes=len(sc.hidden_target_labels),
        oracle_retain=_loader(ds, sc, sc.retain, cfg.train.batch_size, seed, aug) if with_oracle else None,
    )


def _params_key(cfg: VisionRunConfig, spec: MethodSpec) -> dict:
    p = method_params(cfg, spec).model_dump()
    return {"params": p, "train": cfg.train.model_dump()} if spec.name == "retrain" else {"params": p}


def _entry_path(sdir: Path, method: str, seed: int) -> Path:
    return sdir / f"{method}-seed{seed}.json"


def _entry_done(sdir: Path, method: str, seed: int, pkey: dict) -> bool:
    p = _entry_path(sdir, method, seed)
    if not p.is_file():
        return False
    try:
        return read_json(p).get("params_hash") == content_hash(pkey)
    except (OSError, ValueError):
        return False


def _write_entry(sdir: Path, method: str, seed: int, pkey: dict, record: dict, samples: dict) -> None:
    sdir.mkdir(parents=True, exist_ok=True)
    npz = sdir / f"{method}-seed{seed}.npz"
    tmp = sdir / f".{method}-seed{seed}.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **samples)
    tmp.replace(npz)
    record = {**record, "seed": seed, "params_hash": content_hash(pkey), "per_sample": npz.name}
    atomic_write_text(_entry_path(sdir, method, seed), json.dumps(_jsonable(record), indent=2) + "\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


# ---------------------------------------------------------------------------------------------
# tables


def load_entries(rdir: Path) -> dict[str, dict[str, list[dict]]]:
    """scenario → method → [entry per seed]."""
    out: dict[str, dict[str, list[dict]]] = {}
    for p in sorted(rdir.glob("*/*-seed*.json")):
        rec = read_json(p)
        out.setdefault(rec["scenario"], {}).setdefault(rec["method"], []).append(rec)
    return out


def _mean(recs: list[dict], key: str) -> float | None:
    vals = [r["metrics"].get(key) for r in recs]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def report(rdir: Path, cfg: VisionRunConfig) -> str:
    """One seed-layout table per scenario from the finished entries matching ``cfg`` (mean over seeds;
    with several seeds the Gap cell also shows the standard deviation)."""
    entries = load_entries(rdir)
    seeds = set(cfg.seeds)
    wanted = {m: content_hash(_params_key(cfg, get_method(m, "vision"))) for m in cfg.methods}
    wanted.update({"original": content_hash({}), "reference": content_hash({})})
    blocks = []
    for name in cfg.scenarios:
        per = {m: [r for r in recs if r["seed"] in seeds and r.get("params_hash") == wanted.get(m)]
               for m, recs in entries.get(name, {}).items()}
        per = {m: recs for m, recs in per.items() if recs}
        rows = []
        if per.get("original"):
            rows.append(["Original θ_o", *[_mean(per["original"], k) for k in GAP_KEYS],
                         _gap_cell(per["original"]), None])
        for m in cfg.methods:
            recs = per.get(m)
            if not recs:
                continue
            g = "-" if m == "retrain" else _gap_cell(recs)
            rows.append([DISPLAY.get(m, m), *[_mean(recs, k) for k in GAP_KEYS], g, _mean(recs, "TIME")])
        desc = next(iter(per.values()))[0]["description"] if per else "(no finished entries)"
        n = len({r["seed"] for recs in per.values() for r in recs})
        title = f"{TITLES[name]} — {desc}" + (f" (mean of {n} seeds; Gap as mean ± sd)" if n > 1 else "")
        table = format_table(["Method", "UA", "RA", "TA", "MIA", "Gap ↓", "TIME (s) ↓"], rows, digits=2)
        blocks.append("\n".join([title, table, *_tarf_notes(per.get("tarf", []))]))
    return "\n\n".join(blocks)


def _gap_cell(recs: list[dict]) -> float | str | None:
    vals = [r["metrics"].get("Gap") for r in recs if r["metrics"].get("Gap") is not None]
    if len(vals) <= 1:
        return vals[0] if vals else None
    return f"{np.mean(vals):.2f} ± {np.std(vals, ddof=1):.2f}"


def _tarf_notes(recs: list[dict]) -> list[str]:
    recs = [r for r in recs if "identified" in r.get("log", {})]
    if not recs:
        return []
    log0 = recs[0]["log"]
    per_seed = "; ".join(f"seed {r['seed']}: {r['log']['identified']}" for r in sorted(recs, key=lambda r: r["seed"]))
    p = np.mean([r["log"]["precision"] for r in recs])
    rc = np.mean([r["log"]["recall"] for r in recs])
    return [f"  TARF identification ({log0.get('identification_rule', '?')}, m = {log0.get('m')}, "
            f"variant {log0.get('variant')}): hidden target classes {log0['hidden_truth']}; identified {per_seed}; "
            f"precision {p:.0f} %, recall {rc:.0f} %"]


# ---------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="unlearnkit run vision",
        description="Image-classifier unlearning in the four label-domain scenarios (all matched, target / model / "
                    "data mismatch): trains θ_o and θ_r (cached), runs each method, prints UA/RA/TA/MIA/Gap/TIME per "
                    "scenario. Default: the embedded synthetic set on the CPU with Retrain, FT, GA, RL.",
        epilog="examples:\n  unlearnkit run vision\n  unlearnkit run vision --methods all\n"
               "  unlearnkit run vision --dataset cifar10 --data-dir ~/data --model resnet18 --methods all\n"
               "  unlearnkit run vision method_params.ft.epochs=3 scenario.superclass=beta",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "cifar10", "cifar100"], help="image set (default synthetic)")
    p.add_argument("--data-dir", metavar="PATH", help="local CIFAR directory (python pickle format)")
    p.add_argument("--no-download", action="store_true", help="never download CIFAR; require --data-dir")
    p.add_argument("--model", choices=["cnn", "resnet18", "wrn50"], help="classifier architecture")
    p.add_argument("--methods", metavar="LIST", help="comma-separated method names or 'all' (default retrain,ft,ga,rl)")
    p.add_argument("--scenarios", metavar="LIST", help="comma-separated scenarios or 'all' "
                   f"({', '.join(SCENARIOS)})")
    p.add_argument("--seeds", metavar="LIST", help="comma-separated seeds (default 0)")
    p.add_argument("--config", metavar="FILE", help="YAML config (presets in configs/vision*.yaml)")
    p.add_argument("--fresh", action="store_true", help="recompute entries even if finished (models stay cached)")
    p.add_argument("--list-methods", action="store_true", help="list the registered vision methods and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.epochs=30")
    return p


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # key=value may come before or after options
    if args.list_methods:
        rows = [[s.name, s.summary, s.paper] for s in methods_for("vision")]
        print(format_table(["method", "summary", "paper"], rows))
        return 0
    flags: dict[str, Any] = {}
    if args.dataset:
        flags.setdefault("data", {})["dataset"] = args.dataset
    if args.data_dir:
        flags.setdefault("data", {})["data_dir"] = args.data_dir
    if args.no_download:
        flags.setdefault("data", {})["download"] = False
    if args.model:
        flags["model"] = {"arch": args.model}
    if args.methods:
        flags["methods"] = _split(args.methods)
    if args.scenarios:
        sc = _split(args.scenarios)
        flags["scenarios"] = list(SCENARIOS) if sc == ["all"] else sc
    if args.seeds:
        try:
            flags["seeds"] = [int(s) for s in _split(args.seeds)]
        except ValueError:
            raise UnlearnkitError(f"--seeds {args.seeds!r} must be comma-separated integers") from None
    cfg = resolve_config(args.config, args.overrides, flags)
    run(cfg, say=lambda s: print(s, flush=True), fresh=args.fresh)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
