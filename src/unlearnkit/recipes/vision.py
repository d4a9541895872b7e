"""``unlearnkit run vision``: label-domain scenarios × image-unlearning methods → seed-layout tables.

The pipeline, top to bottom (:func:`run_vision`):

1. load the image set (embedded synthetic by default, CIFAR-10/100 with ``--dataset``);
2. for each scenario and seed: build the scenario's sets, get θ_o (trained on D in the
   scenario's label space) and θ_r (Retrain on D_r) from the cache or train them;
3. for each method: θ_u = method(ctx, params), timed; evaluate UA/RA/TA/MIA; Gap against θ_r;
4. write one entry per (scenario, method, seed) through the results layer into the run
   ``$UNLEARNKIT_HOME/runs/vision-<dataset>-<hash>``; a rerun skips finished entries whose hash
   (method parameters, seed, the run's setting) is unchanged;
5. print one table per scenario (UA, RA, TA, MIA, Gap ↓, TIME ↓) and where the results are.

Configuration layers (later wins): the dataset's preset (:data:`PRESETS`, mirrored in
``configs/vision*.yaml``) → ``--config FILE`` → command-line flags → ``key=value`` overrides.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import Field

from unlearnkit import __version__
from unlearnkit.config import Seed, StrictModel, deep_merge, load_yaml, parse_overrides, validate
from unlearnkit.data.fashion_mnist import FashionMNISTConfig
from unlearnkit.data.images import ImageSet, SyntheticConfig, synthetic
from unlearnkit.data.scenarios import SCENARIOS, TITLES, Scenario, ScenarioConfig, build_scenario, resolve_choice
from unlearnkit.engine.executor import ExecutorConfig, run_entries
from unlearnkit.engine.executor import check as check_executor
from unlearnkit.engine.vision import ClassifierRecipe, TensorLoader, device, scenario_metrics, train_classifier
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_file, atomic_write_json, content_hash, file_hash, home, read_json_or_none
from unlearnkit.methods import MethodSpec, get_method, methods_for
from unlearnkit.methods.vision.base import VisionContext
from unlearnkit.metrics.vision import GAP_KEYS, gap, precision_recall
from unlearnkit.models.classifiers import ModelConfig, build_classifier
from unlearnkit.results.layout import entry_name
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run
from unlearnkit.results.tables import column, render_tables, row, table_spec
from unlearnkit.results.tracking import check_tracker, tracking

# Order of the seed's table; methods registered later follow alphabetically.
METHOD_ORDER = ["retrain", "ft", "rl", "ga", "iu", "bs", "l1_sparse", "salun", "scrub", "tarf"]
DEFAULT_METHODS = ["retrain", "ft", "ga", "rl"]
DISPLAY = {"retrain": "Retrain (ref.)", "ft": "FT", "rl": "RL", "ga": "GA", "iu": "IU", "bs": "BS",
           "l1_sparse": "L1-sparse", "salun": "SalUn", "scrub": "SCRUB", "tarf": "TARF"}
HIGHER = {"UA": None, "RA": True, "TA": True, "MIA": None, "Gap": False, "TIME": False}
Say = Callable[[str], None]


class DataConfig(StrictModel):
    dataset: Literal["synthetic", "cifar10", "cifar100", "fashion-mnist"] = "synthetic"
    data_dir: str | None = Field(None, description="local CIFAR / Fashion-MNIST directory; None = find or download")
    download: bool = True
    augment: bool = Field(False, description="random crop + flip while training (standard for CIFAR)")
    synthetic: SyntheticConfig = SyntheticConfig()
    fashion_mnist: FashionMNISTConfig = FashionMNISTConfig()


class VisionEvalConfig(StrictModel):
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
    seeds: list[Seed] = Field([0, 1, 2], min_length=1, max_length=1000, description="each seed trains its own θ_o and θ_r")
    cpu_threads: int | None = Field(None, ge=1, le=1024, description="torch threads on a CPU (None = torch's default)")
    eval: VisionEvalConfig = VisionEvalConfig()
    report: bool = Field(False, description="write the run's self-contained HTML report (report.html) at the end")
    tracker: Literal["tensorboard", "wandb", "mlflow"] | None = Field(
        None, description="log every training step of each method to this experiment tracker, under <run>/trackers/")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="how the (scenario, seed) entries run: local or ray")


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
    "fashion-mnist": {
        "data": {"dataset": "fashion-mnist", "augment": False,
                 "fashion_mnist": {"train_per_class": 300, "test_per_class": 200}},
        "model": {"arch": "cnn_flat", "width": 16},
        "train": {"epochs": 10, "lr": 0.02, "batch_size": 32},
        "unlearn_batch_size": 32,
        "cpu_threads": 1,
        "method_params": {
            "ft": {"epochs": 4, "lr": 0.025},
            "rl": {"epochs": 3, "lr": 0.005},
            "ga": {"epochs": 5, "lr": 0.0001},
            "iu": {"alpha": 0.002, "damping": 0.001, "fisher_samples": 128},
            "bs": {"epochs": 5, "lr": 0.0001},
            "l1_sparse": {"epochs": 4, "lr": 0.025, "gamma": 0.0002},
            "salun": {"epochs": 3, "lr": 0.005},
            "scrub": {"epochs": 3, "msteps": 2, "lr": 0.001},
            "tarf": {"epochs": 5, "lr": 0.025, "k0": 0.01, "t1": 0.5, "t0": 2.5},
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
        raise UnlearnkitError(f"unknown dataset {dataset!r}; use {', '.join(PRESETS)}")
    return json.loads(json.dumps(PRESETS[dataset]))


def resolve_config(config_file: str | None = None, overrides: list[str] | None = None,
                   flags: dict[str, Any] | None = None) -> VisionRunConfig:
    """preset(dataset) ← config file ← flags ← key=value overrides."""
    file_data = load_yaml(config_file) if config_file is not None else {}
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
# The run


def run_vision(cfg: VisionRunConfig, say: Say = print, fresh: bool = False) -> Run:
    """Run every (scenario, seed, method) not yet finished; print the tables; return the run."""
    check_executor(cfg.executor)
    threads = torch.get_num_threads()
    if cfg.cpu_threads and device().type == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        t_run = time.perf_counter()
        check_tracker(cfg.tracker)
        ds, data_key = load_images(cfg.data)
        run = Run.open("vision", run_name(cfg, data_key), cfg.model_dump())
        say(f"vision run: {ds.name} ({len(ds.train_x)} train / {len(ds.test_x)} test images, "
            f"{len(ds.class_names)} classes in {len(ds.superclass_names)} superclasses), model {cfg.model.arch}, "
            f"device {device()}")
        setting = VisionSetting(cfg, ds, data_key, resolve_choice(ds, cfg.scenario), run)
        tasks = []
        for name in cfg.scenarios:
            sc = build_scenario(ds, name, cfg.scenario)
            tasks += [functools.partial(_scenario_seed, setting, sc, seed, say, fresh, i == 0)
                      for i, seed in enumerate(cfg.seeds)]
        run_entries(tasks, cfg.executor)  # one after another, or one Ray task per (scenario, seed)
        text = write_tables(setting)
        say("")
        say(text)
        say(f"\ntotal wall time {time.perf_counter() - t_run:.1f}s")
        say(f"results: {run.layout.root}")
        return run
    finally:
        torch.set_num_threads(threads)


def _scenario_seed(st: VisionSetting, sc: Scenario, seed: int, say: Say, fresh: bool, first: bool) -> None:
    if first:
        say(f"\n[{sc.name}] {sc.description}; sizes {sc.sizes()}")
    run_scenario_seed(st, sc, seed, say, fresh)


def run_name(cfg: VisionRunConfig, data_key: dict) -> str:
    return f"vision-{cfg.data.dataset}-{content_hash(setting_key(cfg, data_key))}"


def setting_key(cfg: VisionRunConfig, data_key: dict) -> dict:
    """Everything the entries of a run share (the run's name hashes it)."""
    return {"data_key": data_key, "data": cfg.data.model_dump(exclude={"data_dir", "download", "fashion_mnist"}),
            "scenario": cfg.scenario.model_dump(), "model": cfg.model.model_dump(), "train": cfg.train.model_dump(),
            "unlearn_batch_size": cfg.unlearn_batch_size, "eval": cfg.eval.model_dump()}


@dataclass
class VisionSetting:
    cfg: VisionRunConfig
    ds: ImageSet
    data_key: dict
    choice: Any
    run: Run

    def entry(self, sc: Scenario, method: str, seed: int) -> EntryInfo:
        params = {} if method in ("original", "reference") else _params_key(self.cfg, get_method(method, "vision"))
        inputs = {"setting": content_hash(setting_key(self.cfg, self.data_key)), "scenario": sc.name,
                  "choice": list(map(str, self.choice)), "method": method, "params": params, "seed": seed}
        return EntryInfo(name=entry_name(method, seed, sc.name), hash=content_hash(inputs), method=method, seed=seed,
                         params_hash=content_hash(params), group=sc.name, inputs=inputs)


def load_images(cfg: DataConfig) -> tuple[ImageSet, dict]:
    """The image set and a key that identifies its content (for the caches)."""
    if cfg.dataset == "synthetic":
        return synthetic(cfg.synthetic), {"dataset": "synthetic", "synthetic": cfg.synthetic.model_dump()}
    if cfg.dataset == "fashion-mnist":
        from unlearnkit.data.fashion_mnist import load_fashion_mnist

        ds = load_fashion_mnist(cfg.data_dir, cfg.download, cfg.fashion_mnist)
        return ds, {"dataset": "fashion-mnist", "content": ds.info["content_hash"],
                    "subset": cfg.fashion_mnist.model_dump()}
    from unlearnkit.data.cifar import _FILES, find_folder, load_cifar

    ds = load_cifar(cfg.dataset, cfg.data_dir, cfg.download)
    folder = find_folder(cfg.dataset, ds.info["folder"])
    return ds, {"dataset": cfg.dataset, "files": file_hash([folder / f for f in _FILES[cfg.dataset]])}


# ---------------------------------------------------------------------------------------------
# θ_o and θ_r, cached under $UNLEARNKIT_HOME/vision


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


def _loader(ds: ImageSet, sc: Scenario, idx: torch.Tensor, bs: int, seed: int, augment: bool) -> TensorLoader:
    return TensorLoader(ds.train_x[idx], sc.train_labels[idx], bs, shuffle=True, seed=seed, augment=augment)


def scenario_models(st: VisionSetting, sc: Scenario, seed: int, say: Say):
    """(θ_o, its meta, θ_r, its meta, make) for one scenario and seed."""
    cfg, ds = st.cfg, st.ds
    mkey = {"data_key": st.data_key, "model": cfg.model.model_dump(), "train": cfg.train.model_dump(), "seed": seed,
            "augment": cfg.data.augment}
    make = lambda: build_classifier(cfg.model, sc.num_classes, ds.mean, ds.std, seed=seed)  # noqa: E731

    def train_all(model: torch.nn.Module) -> torch.nn.Module:
        model.to(device())
        loader = _loader(ds, sc, torch.arange(len(ds.train_x)), cfg.train.batch_size, seed, cfg.data.augment)
        train_classifier(model, loader, cfg.train, desc="θ_o")
        return model

    original, o_meta = cached_model(f"original-{sc.label_level}", {**mkey, "labels": sc.label_level}, make,
                                    train_all, say)
    retrain = get_method("retrain", "vision")
    rkey = {**mkey, "labels": sc.label_level, "scenario": sc.name, "choice": list(map(str, st.choice)),
            "retain_hash": content_hash(sc.retain.tolist())}

    def build_ref(model: torch.nn.Module) -> torch.nn.Module:
        return retrain.fn(_context(cfg, ds, sc, original, seed, make, with_oracle=True), method_params(cfg, retrain))

    reference, r_meta = cached_model(f"reference-{sc.name}", rkey, make, build_ref, say)
    return original, o_meta, reference, r_meta, make


def run_scenario_seed(st: VisionSetting, sc: Scenario, seed: int, say: Say, fresh: bool) -> None:
    cfg = st.cfg
    specs = [get_method(m, "vision") for m in cfg.methods]
    pending = [s for s in specs if fresh or st.run.status(st.entry(sc, s.name, seed)) != "done"]
    refs_done = all(st.run.status(st.entry(sc, m, seed)) == "done" for m in ("reference", "original"))
    if not pending and refs_done:
        say(f"  seed {seed}: all {len(specs)} method(s) finished earlier (skipped)")
        return
    original, o_meta, reference, r_meta, make = scenario_models(st, sc, seed, say)
    ev = lambda m: scenario_metrics(m, st.ds, sc, seed, cfg.eval.mia_max_pairs, cfg.eval.batch_size)  # noqa: E731
    ref_metrics, ref_samples = ev(reference)
    ref_metrics["TIME"] = r_meta["train_seconds"]
    orig_metrics, orig_samples = ev(original)
    orig_metrics["TIME"] = 0.0
    orig_metrics["Gap"] = gap(orig_metrics, ref_metrics)
    base = {"scenario": sc.name, "description": sc.description, "sizes": sc.sizes(),
            "hidden_target_labels": [sc.label_names[i] for i in sc.hidden_target_labels]}
    _write(st, sc, "reference", seed, ref_metrics, ref_samples, base)
    _write(st, sc, "original", seed, orig_metrics, orig_samples, {**base, "train_seconds": o_meta["train_seconds"]})
    for spec in pending:
        metrics, samples, log = _method_metrics(st, sc, seed, spec, original, make, ev, ref_metrics, ref_samples)
        _write(st, sc, spec.name, seed, metrics, samples, {**base, "params": method_params(cfg, spec).model_dump(),
                                                            "log": log})
        say(f"  seed {seed} {DISPLAY.get(spec.name, spec.name):<14} UA {metrics['UA']:6.2f}  RA {metrics['RA']:6.2f}  "
            f"TA {metrics['TA']:6.2f}  MIA {metrics['MIA']:6.2f}  Gap {metrics['Gap']:6.2f}  "
            f"({metrics['TIME']:.1f}s)" + (_ident_note(log) if "identified" in log else ""))


def _method_metrics(st: VisionSetting, sc: Scenario, seed: int, spec: MethodSpec, original, make, ev,
                    ref_metrics: dict, ref_samples: dict):
    """(metrics, per-sample arrays, log) of one method; Retrain is the cached reference itself."""
    if spec.name == "retrain":
        return {**ref_metrics, "Gap": 0.0}, ref_samples, {"note": "θ_r (cached reference)"}
    ctx = _context(st.cfg, st.ds, sc, original, seed, make, with_oracle="oracle_retain" in spec.needs)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with tracking(st.cfg.tracker, st.run, st.entry(sc, spec.name, seed).name, method_params(st.cfg, spec).model_dump()):
        model = spec.fn(ctx, method_params(st.cfg, spec))
    seconds = time.perf_counter() - t0
    metrics, samples = ev(model)
    metrics["TIME"] = round(seconds, 3)
    metrics["Gap"] = gap(metrics, ref_metrics)
    log = dict(ctx.log)
    if "identified_labels" in ctx.log:
        p, r = precision_recall(ctx.log["identified_labels"], sc.hidden_target_labels)
        log.update({"identified": [sc.label_names[i] for i in ctx.log["identified_labels"]],
                    "hidden_truth": [sc.label_names[i] for i in sc.hidden_target_labels],
                    "precision": p, "recall": r})
    return metrics, samples, log


def _write(st: VisionSetting, sc: Scenario, method: str, seed: int, metrics: dict, samples: dict, extra: dict) -> None:
    info = st.entry(sc, method, seed)
    agg = {k: Metric(v, None, HIGHER.get(k)) for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
    st.run.write(info, agg, per_sample_arrays=samples, provenance=provenance(st.cfg.model_dump(), seed=seed),
                 extra={**extra, "method": method})


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


# ---------------------------------------------------------------------------------------------
# Tables


def write_tables(st: VisionSetting) -> str:
    """One seed-layout table per scenario from the finished entries of this config (mean over seeds;
    with several seeds the Gap cell also shows the standard deviation)."""
    specs, values = [], {}
    for name in st.cfg.scenarios:
        sc = build_scenario(st.ds, name, st.cfg.scenario)
        per: dict[str, list[str]] = {}
        for m in ["original", *st.cfg.methods]:
            for seed in st.cfg.seeds:
                info = st.entry(sc, m, seed)
                if st.run.status(info) == "done":
                    per.setdefault(m, []).append(info.name)
                    values[info.name] = st.run.record(info.name).aggregates
        specs.append(_scenario_spec(st, name, per))
    text = render_tables(specs, values)
    st.run.write_summary(specs, text)
    return text


def _scenario_spec(st: VisionSetting, name: str, per: dict[str, list[str]]) -> dict:
    cols = [column(k, k) for k in GAP_KEYS] + [column("Gap ↓", "Gap", sd=True), column("TIME (s) ↓", "TIME")]
    rows = []
    if per.get("original"):
        rows.append(row("Original θ_o", per["original"], ["TIME"]))
    for m in st.cfg.methods:
        if per.get(m):
            rows.append(row(DISPLAY.get(m, m), per[m], ["Gap"] if m == "retrain" else []))
    first = next((e for es in per.values() for e in es), None)
    desc = st.run.record(first).extra.get("description") if first else "(no finished entries)"
    n = len({st.run.record(e).entry.get("seed") for es in per.values() for e in es})
    title = f"{TITLES[name]} — {desc}" + (f" (mean of {n} seeds; Gap as mean ± sd)" if n > 1 else "")
    notes = _tarf_notes([st.run.record(e) for e in per.get("tarf", [])])
    return table_spec(cols, rows, title=title, digits=2, label_seeds=False, notes=notes) | {"corner": "Method"}


def _tarf_notes(recs: list) -> list[str]:
    import numpy as np

    recs = [r for r in recs if "identified" in r.extra.get("log", {})]
    if not recs:
        return []
    log0 = recs[0].extra["log"]
    recs = sorted(recs, key=lambda r: r.entry.get("seed"))
    per_seed = "; ".join(f"seed {r.entry.get('seed')}: {r.extra['log']['identified']}" for r in recs)
    p = np.mean([r.extra["log"]["precision"] for r in recs])
    rc = np.mean([r.extra["log"]["recall"] for r in recs])
    return [f"  TARF identification ({log0.get('identification_rule', '?')}, m = {log0.get('m')}, "
            f"variant {log0.get('variant')}): hidden target classes {log0['hidden_truth']}; identified {per_seed}; "
            f"precision {p:.0f} %, recall {rc:.0f} %"]
