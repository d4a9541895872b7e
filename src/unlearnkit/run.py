"""`unlearnkit run`: the language-model benchmark, end to end, resumable.

    build or reuse the models → evaluate Original and Retrain → for each (method, seed):
    unlearn θ_o on D_f (with D_r) → save θ_u → evaluate → compare to θ_r → table

Everything lands in one run directory (``$UNLEARNKIT_HOME/runs/<name>``; the default name is a
hash of the config, so rerunning the same command resumes the same run):

    config.json            the full validated config
    models/<entry>/        θ_u (safetensors + tokenizer), or models/<entry>.sha256 with save_models=false
    logs/<entry>.json      training log: loss terms per step, wall time, why it stopped
    results/<entry>/       results.json (aggregates, n, direction, provenance) + per_sample.jsonl
    summary.json, table.md the comparison table

An entry counts as finished when its ``results.json`` exists (written atomically, last), so a
run killed at any point restarts without recomputing finished entries and without corrupt files.
A method whose loss becomes NaN/inf is stopped with a clear message, its log is kept, and the
run continues with the other methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from unlearnkit.analysis.calibration import CalibrationConfig
from unlearnkit.config import BuildConfig, StrictModel
from unlearnkit.data.tofu import RETAIN_OF, QASource
from unlearnkit.engine.evaluate import EvalConfig, EvalResult, compare_to_reference, evaluate, load_result, save_result
from unlearnkit.errors import NonFiniteLossError, UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_write_json, atomic_write_text, content_hash, home, read_json
from unlearnkit.methods.llm.posthoc import is_post_hoc
from unlearnkit.results.provenance import provenance

ForgetSplit = Literal["forget01", "forget05", "forget10"]


class RunConfig(StrictModel):
    """The language-model benchmark run (presets in configs/)."""

    benchmark: Literal["embedded", "tofu"] = "embedded"
    build: BuildConfig = BuildConfig()
    data: str | None = Field(None, description="TOFU-format data (benchmark=tofu; default locuslab/TOFU)")
    original: str | None = Field(None, description="θ_o path or hub name (benchmark=tofu)")
    reference: str | None = Field(None, description="θ_r path or hub name (benchmark=tofu)")
    forget: ForgetSplit = "forget10"
    methods: list[str] = Field(default_factory=lambda: ["ga", "gd", "kl", "npo"], min_length=1)
    defaults: dict[str, Any] = Field(default_factory=lambda: {"lr": 2e-4, "epochs": 5, "batch_size": 8},
                                     description="hyperparameters applied to every method")
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                     description="per-method overrides, keyed by the name in methods")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    eval: EvalConfig = EvalConfig()
    name: str | None = Field(None, description="run directory name (default: a hash of this config)")
    save_models: bool = True
    calibrate: bool = Field(False, description="after the run, calibrate every method by model mixing")
    calibration: CalibrationConfig = CalibrationConfig()
    continual: int = Field(1, ge=1, description="continual unlearning: split the forget set into this many requests "
                           "(by subject) applied one after another; 1 = a normal run")

    @field_validator("methods")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("methods are listed twice")
        return v


def entry_name(method: str, seed: int) -> str:
    """A file-system-safe entry name: ``npo+kl`` seed 3 → ``npo_plus_kl__s3``; ``kl@TS=2`` → ``kl_at_TS-2__s0``."""
    import re

    safe = method.replace("+", "_plus_").replace("@", "_at_").replace("=", "-")
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', safe)}__s{seed}"


class Run:
    """One run directory and its entries."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        exclude = {"name", "calibrate", "calibration"} | ({"continual"} if cfg.continual == 1 else set())  # k = 1: normal run
        name = cfg.name or f"lm-{cfg.forget}-{content_hash(cfg.model_dump(exclude=exclude))}"
        self.dir = home() / "runs" / name
        for sub in ("models", "logs", "results"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        cfg_path = self.dir / "config.json"
        if not cfg_path.exists():
            atomic_write_json(cfg_path, cfg.model_dump())

    def result_dir(self, entry: str) -> Path:
        return self.dir / "results" / entry

    def finished(self, entry: str) -> bool:
        return (self.result_dir(entry) / "results.json").is_file()

    def failed(self, entry: str) -> dict | None:
        p = self.result_dir(entry) / "failed.json"
        return read_json(p) if p.is_file() else None


@dataclass
class _Context:
    run: Run
    src: QASource
    original: str
    forget_records: list[dict]
    retain_records: list[dict]
    ref_res: EvalResult
    device: Any
    dtype: Any
    say: Callable[[str], None]
    reference: str | None = None  # θ_r path (post-hoc methods evaluate it on their validation split)


def validate_methods(cfg: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Resolve every method and validate its hyperparameters before anything trains."""
    from unlearnkit.engine.unlearn import make_params, resolve

    out = {}
    unknown = set(cfg.method_params) - set(cfg.methods)
    if unknown:
        raise UnlearnkitError(f"method_params has entries for methods not in `methods`: {', '.join(sorted(unknown))}")
    for m in cfg.methods:
        spec, retain = resolve(m)
        if is_post_hoc(spec):
            if cfg.continual > 1:
                raise UnlearnkitError(f"{m!r} is post-hoc and cannot run in stages: drop it from methods or use "
                                      "continual=1")
            out[m] = (spec, _post_hoc_params(cfg, m, spec, retain))
            continue
        out[m] = (spec, make_params(spec, {**cfg.defaults, **cfg.method_params.get(m, {})}, retain))
    return out


def _post_hoc_params(cfg: RunConfig, m: str, spec, retain: str | None):
    """A post-hoc method's own params (the run's defaults go to its base method, validated here too)."""
    from unlearnkit.config import validate

    if retain:
        raise UnlearnkitError(f"{m!r}: {spec.name} is post-hoc; give the retain term to its base method "
                              f"(method_params: {{{spec.name}: {{base: ga+{retain}}}}})")
    params = validate(spec.params, cfg.method_params.get(m, {}), prefix=f"method_params.{m}")
    _base_of(cfg, spec, params)
    return params


def _base_of(cfg: RunConfig, spec, params):
    """(base spec, base params) of a post-hoc method: the run's defaults + its base_params, same seed."""
    from unlearnkit.engine.unlearn import make_params, resolve

    base_spec, base_retain = resolve(params.base)
    if is_post_hoc(base_spec):
        raise UnlearnkitError(f"{spec.name}: base {params.base!r} is post-hoc too; the base must be a training "
                              "method (e.g. ga, npo+kl)")
    return base_spec, make_params(base_spec, {**cfg.defaults, **params.base_params, "seed": params.seed}, base_retain)


def _kill_hook() -> Callable[[str], None] | None:
    """Testing aid: ``UNLEARNKIT_KILL_AFTER_ENTRY=<entry>`` SIGKILLs the process once that entry is
    finished, to prove that a run killed mid-way resumes without recomputing or corrupting anything."""
    import os
    import signal

    target = os.environ.get("UNLEARNKIT_KILL_AFTER_ENTRY")
    if not target:
        return None

    def hook(entry: str) -> None:
        if entry == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def run_benchmark(cfg: RunConfig, say: Callable[[str], None] = print, after_entry: Callable[[str], None] | None = None):
    """Run (or resume) the benchmark; returns (run, results by row name)."""
    from unlearnkit.engine.lm_eval import model_id, resolve_dtype
    from unlearnkit.models.lm import load_model, pick_device

    methods = validate_methods(cfg)
    after_entry = after_entry or _kill_hook()
    run = Run(cfg)
    say(f"run directory: {run.dir}")
    # 1. models and data
    if cfg.benchmark == "embedded":
        from unlearnkit.models.build import build_models

        build = cfg.build.model_copy(update={"forget_splits": sorted({*cfg.build.forget_splits, cfg.forget})})
        ms = build_models(build, say=say)
        data, original, reference = str(ms.data_dir), str(ms.original), str(ms.reference_for(cfg.forget))
    else:
        if not (cfg.original and cfg.reference):
            raise UnlearnkitError("benchmark=tofu needs original=PATH and reference=PATH (θ_o and θ_r for the forget split)")
        from unlearnkit.data.tofu import HUB_NAME

        data, original, reference = cfg.data or HUB_NAME, cfg.original, cfg.reference
    atomic_write_json(run.dir / "paths.json", {"data": data, "original": original, "reference": reference})
    src = QASource(data)
    forget_records = src.split(cfg.forget)
    retain_records = src.split(RETAIN_OF[cfg.forget])
    device, dtype = pick_device(), resolve_dtype("auto")
    prov = lambda **kw: provenance(cfg.model_dump(), **kw)  # noqa: E731

    # 2. Original and Retrain
    def eval_saved(entry: str, path: str) -> EvalResult:
        if run.finished(entry):
            return load_result(run.result_dir(entry))
        model, tok = load_model(path, device=device, dtype=dtype)
        res = evaluate(model, tok, src, cfg.eval, model_id=model_id(path) + f"-{dtype}".replace("torch.", ""))
        return res

    ref_res = eval_saved("retrain", reference)
    compare_to_reference(ref_res, ref_res)
    if not run.finished("retrain"):
        save_result(ref_res, run.result_dir("retrain"), prov(model=reference))
    say("evaluated Retrain (θ_r)")
    orig_res = eval_saved("original", original)
    if not run.finished("original"):
        compare_to_reference(orig_res, ref_res)
        save_result(orig_res, run.result_dir("original"), prov(model=original))
    say("evaluated Original (θ_o)")

    # 3. methods
    ctx = _Context(run, src, original, forget_records, retain_records, ref_res, device, dtype, say, reference)
    results: dict[str, list[EvalResult]] = {}
    times: dict[str, list[float]] = {}
    failures: dict[str, str] = {}
    for method, (spec, params) in methods.items():
        for seed in cfg.seeds:
            entry = entry_name(method, seed)
            p = params.model_copy(update={"seed": seed})
            if run.finished(entry):
                say(f"{entry}: finished earlier, skipped")
            elif run.failed(entry):
                say(f"{entry}: failed earlier ({run.failed(entry)['error']}), skipped")
            else:
                _run_entry(ctx, entry, spec, p)
                if after_entry is not None:
                    after_entry(entry)
            if run.finished(entry):
                results.setdefault(method, []).append(load_result(run.result_dir(entry)))
                times.setdefault(method, []).append(read_json(run.dir / "logs" / f"{entry}.json")["wall_time"])
            else:
                failures[method] = run.failed(entry)["error"]
    rows = {"Original": ([orig_res], None), "Retrain": ([ref_res], None)}
    rows.update({m: (results[m], float(np.mean(times[m]))) for m in results})
    from unlearnkit.results.tables import run_table

    table = run_table(rows, failures)
    summary = {name: {"n_seeds": len(rs), "unlearn_seconds": t,
                      "aggregates": {k: float(np.mean([r.value(k) for r in rs])) for k in rs[0].aggregates}}
               for name, (rs, t) in rows.items()}
    atomic_write_json(run.dir / "summary.json", {"rows": summary, "failures": failures, "provenance": prov()})
    atomic_write_text(run.dir / "table.md", table + "\n")
    if cfg.continual > 1:
        from unlearnkit.analysis.continual import write_run_curves

        write_run_curves(run)
    return run, rows, failures, table


def _run_entry(ctx: _Context, entry: str, spec, params) -> None:
    """Unlearn (unless θ_u is already saved), evaluate, write the entry's results atomically."""
    from unlearnkit.engine.lm_eval import model_id
    from unlearnkit.engine.unlearn import unlearn
    from unlearnkit.models.lm import load_model, save_model

    run, say = ctx.run, ctx.say
    prov = lambda **kw: provenance(run.cfg.model_dump(), **kw)  # noqa: E731

    model_dir = run.dir / "models" / entry
    log_path = run.dir / "logs" / f"{entry}.json"
    model, tok = load_model(ctx.original, device=ctx.device)
    if (model_dir / "config.json").is_file() and log_path.is_file():
        say(f"{entry}: θ_u found, evaluating")
        model, tok = load_model(model_dir, device=ctx.device)
    else:
        try:
            if is_post_hoc(spec):
                model, log = _post_hoc_model(ctx, entry, spec, params, model, tok)
            elif run.cfg.continual > 1:
                from unlearnkit.analysis.continual import continual_model

                model, log = continual_model(ctx, entry, spec, params, model, tok)
            else:
                say(f"{entry}: unlearning with {spec.name} ({params.retain or spec.fn.default_retain} retain term)")
                log = unlearn(model, tok, spec, params, ctx.forget_records, ctx.retain_records, ctx.src.refusals,
                              desc=entry).to_dict()
        except NonFiniteLossError as e:
            atomic_write_json(log_path, {"params": params.model_dump(), "error": str(e)})
            atomic_write_json(run.result_dir(entry) / "failed.json", {"error": str(e)})
            say(f"{entry}: STOPPED — {e}. Log kept in {log_path}; continuing with the other methods")
            return
        if run.cfg.save_models:
            with atomic_dir(model_dir) as tmp:
                save_model(model, tok, tmp)
        atomic_write_json(log_path, {"method": spec.name, "params": params.model_dump(), **log})
        say(f"{entry}: unlearned in {log['wall_time']:.1f}s ({len(log.get('steps', []))} steps)")
    mid = model_id(str(model_dir)) if model_dir.is_dir() else None
    res = evaluate(model, tok, ctx.src, run.cfg.eval, model_id=mid)
    compare_to_reference(res, ctx.ref_res)
    if run.cfg.continual > 1 and not is_post_hoc(spec):
        from unlearnkit.analysis.continual import finish_entry

        finish_entry(ctx, entry, res)
    if not run.cfg.save_models:
        from unlearnkit.engine.evaluate import state_fingerprint

        atomic_write_text(run.dir / "models" / f"{entry}.sha256", state_fingerprint(model) + "\n")
    save_result(res, run.result_dir(entry), prov(seed=params.seed, method=spec.name, params=params.model_dump()))
    say(f"{entry}: evaluated (forget ES-exact {res.value('forget.es_exact'):.3f}, MU {res.value('mu'):.3f})")
    del model


def _post_hoc_model(ctx: _Context, entry: str, spec, params, original, tok):
    """θ_u from the base method (reusing the run's saved entry when its hyperparameters match), then apply."""
    import time

    from unlearnkit.engine.unlearn import unlearn
    from unlearnkit.methods.llm.posthoc import PostHocContext
    from unlearnkit.models.lm import load_model

    run, say = ctx.run, ctx.say
    if ctx.reference is None:
        raise UnlearnkitError(f"{spec.name} needs the reference model θ_r (reference=PATH)")
    base_spec, base_params = _base_of(run.cfg, spec, params)
    base_entry = entry_name(params.base, params.seed)
    base_dir, base_log = run.dir / "models" / base_entry, run.dir / "logs" / f"{base_entry}.json"
    base_seconds = 0.0
    if ((base_dir / "config.json").is_file() and base_log.is_file()
            and read_json(base_log).get("params") == base_params.model_dump()):
        say(f"{entry}: reusing θ_u of {base_entry}")
        unlearned, _ = load_model(base_dir, device=ctx.device)
        base_seconds = float(read_json(base_log).get("wall_time", 0.0))
    else:
        say(f"{entry}: making θ_u with {params.base}")
        unlearned, _ = load_model(ctx.original, device=ctx.device)
        base_seconds = unlearn(unlearned, tok, base_spec, base_params, ctx.forget_records, ctx.retain_records,
                               ctx.src.refusals, desc=f"{entry} base").wall_time
    reference, _ = load_model(ctx.reference, device=ctx.device)
    t0 = time.perf_counter()
    say(f"{entry}: applying {spec.name} to θ_u")
    model, report = spec.fn.apply(PostHocContext(original=original, unlearned=unlearned, tokenizer=tok, source=ctx.src,
                                                 forget=run.cfg.forget, reference=reference, eval_config=run.cfg.eval,
                                                 say=say), params)
    apply_seconds = time.perf_counter() - t0
    atomic_write_json(run.result_dir(entry) / f"{spec.name}.json", report)
    return model, {"base": params.base, "base_params": base_params.model_dump(), "base_seconds": base_seconds,
                   "apply_seconds": apply_seconds, "wall_time": base_seconds + apply_seconds, "report": report}
