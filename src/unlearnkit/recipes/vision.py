"""``unlearnkit run vision``: label-domain scenarios × image-unlearning methods → seed-layout tables.

The pipeline, top to bottom (:func:`run_vision`):

1. load the image set (embedded synthetic by default, Fashion-MNIST or CIFAR-10/100 with ``--dataset``);
2. for each scenario and seed: build the scenario's sets, get θ_o (trained on D in the
   scenario's label space) and θ_r (Retrain on D_r) from the cache or train them
   (:mod:`unlearnkit.recipes.vision_models`);
3. for each method: θ_u = method(ctx, params), timed; evaluate UA/RA/TA/MIA; Gap against θ_r;
4. write one entry per (scenario, method, seed) through the results layer into the run
   ``$UNLEARNKIT_HOME/runs/vision-<dataset>-<hash>``; a rerun skips finished entries whose hash
   (method parameters, seed, the run's setting) is unchanged;
5. print one table per scenario (UA, RA, TA, MIA, Gap ↓, TIME ↓) and where the results are
   (:mod:`unlearnkit.recipes.vision_tables`).

Configuration layers (later wins, :mod:`unlearnkit.recipes.vision_config`): the dataset's preset
(``configs/vision*.yaml``) → ``--config FILE`` → command-line flags → ``key=value`` overrides.
"""

from __future__ import annotations

import functools
import time

import torch

from unlearnkit.data.scenarios import Scenario, build_scenario, resolve_choice
from unlearnkit.engine.executor import check as check_executor
from unlearnkit.engine.executor import run_entries
from unlearnkit.engine.vision import device, scenario_metrics
from unlearnkit.methods import MethodSpec, get_method
from unlearnkit.metrics.vision import gap, precision_recall
from unlearnkit.recipes.vision_config import (
    DEFAULT_METHODS,
    METHOD_ORDER,
    PRESET_FILES,
    DataConfig,
    VisionEvalConfig,
    VisionRunConfig,
    VisionSetting,
    expand_methods,
    load_images,
    method_params,
    preset,
    preset_path,
    resolve_config,
    run_name,
    setting_key,
)
from unlearnkit.recipes.vision_models import Say, ScenarioModels, cached_model, method_context, scenario_models
from unlearnkit.recipes.vision_tables import DISPLAY, write_tables
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import Metric, Run
from unlearnkit.results.tracking import check_tracker, tracking

__all__ = ["DEFAULT_METHODS", "DISPLAY", "HIGHER", "METHOD_ORDER", "PRESET_FILES", "DataConfig", "Say",
           "ScenarioModels", "VisionEvalConfig", "VisionRunConfig", "VisionSetting", "cached_model", "expand_methods",
           "load_images", "method_params", "preset", "preset_path", "resolve_config", "run_name", "run_scenario_seed",
           "run_vision", "scenario_models", "setting_key", "write_tables"]

HIGHER = {"UA": None, "RA": True, "TA": True, "MIA": None, "Gap": False, "TIME": False}


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
            tasks += [functools.partial(_scenario_seed, setting, sc, seed, say, fresh=fresh, first=i == 0)
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


def _scenario_seed(st: VisionSetting, sc: Scenario, seed: int, say: Say, *, fresh: bool, first: bool) -> None:
    if first:
        say(f"\n[{sc.name}] {sc.description}; sizes {sc.sizes()}")
    run_scenario_seed(st, sc, seed, say, fresh)


def run_scenario_seed(st: VisionSetting, sc: Scenario, seed: int, say: Say, fresh: bool) -> None:
    cfg = st.cfg
    specs = [get_method(m, "vision") for m in cfg.methods]
    pending = [s for s in specs if fresh or st.run.status(st.entry(sc, s.name, seed)) != "done"]
    refs_done = all(st.run.status(st.entry(sc, m, seed)) == "done" for m in ("reference", "original"))
    if not pending and refs_done:
        say(f"  seed {seed}: all {len(specs)} method(s) finished earlier (skipped)")
        return
    models = scenario_models(st, sc, seed, say)
    ev = lambda m: scenario_metrics(m, st.ds, sc, seed, cfg.eval.mia_max_pairs, cfg.eval.batch_size)  # noqa: E731
    ref_metrics, ref_samples = ev(models.reference)
    ref_metrics["TIME"] = models.r_meta["train_seconds"]
    orig_metrics, orig_samples = ev(models.original)
    orig_metrics["TIME"] = 0.0
    orig_metrics["Gap"] = gap(orig_metrics, ref_metrics)
    base = {"scenario": sc.name, "description": sc.description, "sizes": sc.sizes(),
            "hidden_target_labels": [sc.label_names[i] for i in sc.hidden_target_labels]}
    _write(st, sc, "reference", seed, metrics=ref_metrics, samples=ref_samples, extra=base)
    _write(st, sc, "original", seed, metrics=orig_metrics, samples=orig_samples,
           extra={**base, "train_seconds": models.o_meta["train_seconds"]})
    for spec in pending:
        metrics, samples, log = _method_metrics(st, sc, seed, spec, models=models, ev=ev, ref_metrics=ref_metrics,
                                                ref_samples=ref_samples)
        _write(st, sc, spec.name, seed, metrics=metrics, samples=samples,
               extra={**base, "params": method_params(cfg, spec).model_dump(), "log": log})
        say(f"  seed {seed} {DISPLAY.get(spec.name, spec.name):<14} UA {metrics['UA']:6.2f}  RA {metrics['RA']:6.2f}  "
            f"TA {metrics['TA']:6.2f}  MIA {metrics['MIA']:6.2f}  Gap {metrics['Gap']:6.2f}  "
            f"({metrics['TIME']:.1f}s)" + (_ident_note(log) if "identified" in log else ""))


def _method_metrics(st: VisionSetting, sc: Scenario, seed: int, spec: MethodSpec, *, models: ScenarioModels, ev,
                    ref_metrics: dict, ref_samples: dict):
    """(metrics, per-sample arrays, log) of one method; Retrain is the cached reference itself."""
    if spec.name == "retrain":
        return {**ref_metrics, "Gap": 0.0}, ref_samples, {"note": "θ_r (cached reference)"}
    ctx = method_context(st, sc, seed, original=models.original, make=models.make,
                         with_oracle="oracle_retain" in spec.needs)
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


def _write(st: VisionSetting, sc: Scenario, method: str, seed: int, *, metrics: dict, samples: dict,
           extra: dict) -> None:
    info = st.entry(sc, method, seed)
    agg = {k: Metric(v, None, HIGHER.get(k)) for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
    st.run.write(info, agg, per_sample_arrays=samples, provenance=provenance(st.cfg.model_dump(), seed=seed),
                 extra={**extra, "method": method})


def _ident_note(log: dict) -> str:
    return f"  identified {log['identified']} (truth {log['hidden_truth']}: P {log['precision']:.0f} R {log['recall']:.0f})"
