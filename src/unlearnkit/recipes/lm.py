"""`unlearnkit run`: the language-model benchmark, end to end, resumable.

    build or reuse the models → evaluate Retrain and Original → for each (method, seed):
    unlearn θ_o on D_f (with D_r) → save θ_u → evaluate → compare to θ_r → table

Everything lands in one run (``$UNLEARNKIT_HOME/runs/<name>``, layout in
:mod:`unlearnkit.results.layout`; the default name is a hash of the config, so rerunning the same
command resumes the same run). Each entry records the hash of everything that determines it —
method, hyperparameters, seed, the fingerprints of θ_o, θ_r and the data, the evaluation settings —
so a rerun skips finished entries, recomputes exactly those whose inputs changed (saying what
changed), and reuses a saved θ_u only when its hash matches. A method whose loss becomes NaN/inf is
stopped with a clear message, recorded as failed (``--retry-failed`` reruns it), and the run
continues with the other methods. With ``continual=k`` every method entry applies the forget set as
k requests one after another (:mod:`unlearnkit.analysis.continual`); each stage is an entry too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator

from unlearnkit.analysis.calibration import CalibrationConfig
from unlearnkit.config import BuildConfig, EvalDtype, Seed, StrictModel, validate
from unlearnkit.data.prompts import PromptFormat, resolve_prompt
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.evaluate import ENGINE_VERSION, EvalConfig, EvalResult
from unlearnkit.engine.executor import ExecutorConfig, run_entries
from unlearnkit.engine.executor import check as check_executor
from unlearnkit.errors import NonFiniteLossError, UnlearnkitError
from unlearnkit.io import content_hash, read_json_or_none, to_home_relative
from unlearnkit.methods.llm.posthoc import PostHocContext, is_post_hoc
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.lm import is_saved_model, load_model, model_fingerprint, model_id, pick_device, resolve_dtype
from unlearnkit.results.eval import load_eval, save_model_entry, write_eval
from unlearnkit.results.intervals import add_intervals, run_eval_set
from unlearnkit.results.layout import check_run_name, entry_name
from unlearnkit.results.noise import INTERVAL_NOTE
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Run
from unlearnkit.results.tables import SECONDS, failed_row, lm_columns, render_tables, row, table_spec
from unlearnkit.results.tracking import check_tracker, tracking
from unlearnkit.tasks import Task, TaskData, TaskRequest, get_task
from unlearnkit.tasks.training import EvalEveryConfig, TrainingEvaluator, check_eval_every

Say = Callable[[str], None]
METRICS_VERSION = 2  # bump when an aggregate's definition changes (2: PrivLeak in MUSE's convention, ZLib of the mean)


class RunConfig(StrictModel):
    """The language-model benchmark run (presets in configs/)."""

    task: str = Field("tofu", description="the benchmark task (`unlearnkit ls tasks`): tofu, muse, wmdp")
    task_options: dict[str, Any] = Field(default_factory=dict, validate_default=True,
                                         description="the task's own options (docs/tasks.md)")
    benchmark: str = Field("embedded", description="embedded: the task's offline twin; or its published data "
                           "(tofu, muse, wmdp: with data=, original=, reference=)")
    build: BuildConfig = BuildConfig()
    data: str | None = Field(None, description="published data: local directory or hub name (default: the task's)")
    original: str | None = Field(None, description="θ_o path or hub name (published benchmark)")
    reference: str | None = Field(None, description="θ_r path or hub name (published benchmark)")
    forget: str = Field("forget10", description="forget split (the task's: TOFU forget01/05/10, MUSE forget or "
                        "scal1..4, WMDP forget)")
    methods: list[str] = Field(default_factory=lambda: ["ga", "gd", "kl", "npo"], min_length=1)
    defaults: dict[str, Any] = Field(default_factory=lambda: {"lr": 2e-4, "epochs": 5, "batch_size": 8},
                                     description="hyperparameters applied to every method")
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                     description="per-method overrides, keyed by the name in methods")
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1, max_length=1000)
    eval: EvalConfig = EvalConfig()
    dtype: EvalDtype = Field(
        "auto", description="the ONE precision every model of the comparison is evaluated in (auto: float64 when θ_o is "
        "stored in float64, as the embedded models are; else bfloat16 on a GPU that has it, else float32); training "
        "keeps float32 weights (float64 for float64 models)")
    prompt: PromptFormat | str | None = Field(
        None, description="prompt format for every model (a preset: plain, chatml, smollm2, openunlearning-llama3; "
        "or fields); None = the format saved with the models")
    tables: dict[str, list[str]] = Field(default_factory=dict, description="print several tables: title → the "
                                         "methods (names as in `methods`) of that table, each with Original and "
                                         "Retrain (e.g. the seed's NPO and GA columns); empty = one table")
    eval_other_forget: bool = Field(False, description="allow eval.forget to differ from forget (evaluate on a "
                                    "split other than the one unlearned)")
    name: str | None = Field(None, description="run directory name (default: a hash of this config)")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="how the (method, seed) entries run: local (one "
                                     "after another) or ray (one task each); results are the same")
    save_models: bool = True
    calibrate: bool = Field(False, description="after the run, calibrate every method by model mixing")
    calibration: CalibrationConfig = CalibrationConfig()
    continual: int = Field(1, ge=1, le=1000, description="continual unlearning: split the forget set into this many "
                           "requests (by subject) applied one after another; 1 = a normal run")
    report: bool = Field(False, description="write the run's self-contained HTML report (report.html) at the end")
    intervals: bool = Field(True, description="print `value ± half-width` of each table cell's 95 % interval: t over "
                            "the seeds, or a bootstrap of the eval samples for one seed (docs/metrics.md)")
    tracker: Literal["tensorboard", "wandb", "mlflow"] | None = Field(
        None, description="log every training step (loss terms, learning rate) to this experiment tracker, under "
        "<run>/trackers/ (wandb: offline)")
    eval_every: EvalEveryConfig | None = Field(None, description="evaluation during training: probe the task's "
                                               "named metrics every k steps/epochs, select the best checkpoint")

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """The task's default forget split; ``metrics.…`` is ``eval.metrics.…`` (one place, both spellings)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("metrics"), dict):
            ev = dict(data.get("eval") or {})
            ev["metrics"] = {**dict(ev.get("metrics") or {}), **data.pop("metrics")}
            data["eval"] = ev
        task = data.get("task", "tofu")
        if isinstance(task, str) and "forget" not in data:
            try:
                data["forget"] = get_task(task).default_forget
            except UnlearnkitError:
                pass  # reported by the field validator
        return data

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        try:
            return get_task(v).name
        except UnlearnkitError as e:
            raise ValueError(str(e)) from None

    @field_validator("task_options")
    @classmethod
    def _task_options(cls, v: dict, info: ValidationInfo) -> dict:
        if "task" in info.data:
            try:
                return validate(get_task(info.data["task"]).options, v, prefix="task_options").model_dump()
            except UnlearnkitError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("benchmark", "forget")
    @classmethod
    def _task_names(cls, v: str, info: ValidationInfo) -> str:
        if "task" in info.data:
            t = get_task(info.data["task"])
            try:
                t.check_benchmark(v) if info.field_name == "benchmark" else t.check_forget(v)
            except UnlearnkitError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("eval_every")
    @classmethod
    def _probes_of_the_task(cls, v: EvalEveryConfig | None, info: ValidationInfo) -> EvalEveryConfig | None:
        if v is not None and "task" in info.data:
            try:
                check_eval_every(v, get_task(info.data["task"]))
            except UnlearnkitError as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("methods")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("methods are listed twice")
        return v

    @model_validator(mode="after")
    def _eval_on_the_forget_split(self) -> RunConfig:
        """The run evaluates the split it unlearns: eval.forget follows forget unless set on purpose."""
        if "forget" not in self.eval.model_fields_set:
            self.eval = self.eval.model_copy(update={"forget": self.forget})
        elif self.eval.forget != self.forget and not self.eval_other_forget:
            raise ValueError(f"eval.forget={self.eval.forget} differs from forget={self.forget}: the run evaluates the "
                             "split it unlearns; drop eval.forget, or set eval_other_forget=true to evaluate another "
                             "split on purpose")
        return self

    @model_validator(mode="after")
    def _tables_list_run_methods(self) -> RunConfig:
        unknown = {m for ms in self.tables.values() for m in ms} - set(self.methods)
        if unknown:
            raise ValueError(f"tables list methods that are not in `methods`: {', '.join(sorted(unknown))}")
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v):
        try:
            return resolve_prompt(v)
        except UnlearnkitError as e:
            raise ValueError(str(e)) from None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_run_name(v)
            except UnlearnkitError as e:
                raise ValueError(str(e)) from None
        return v


def run_name(cfg: RunConfig) -> str:
    exclude = {"name", "calibrate", "calibration", "report", "tracker", "executor", "intervals"}  # how to run or show it
    exclude |= {"continual"} if cfg.continual == 1 else set()  # k = 1: the normal run
    prefix = "lm" if cfg.task == "tofu" else cfg.task
    return cfg.name or f"{prefix}-{cfg.forget}-{content_hash(cfg.model_dump(exclude=exclude))}"


@dataclass
class LMRun:
    """What :func:`run_benchmark` returns: the run, each table row's results, failures, the table."""

    run: Run
    results: dict[str, list[EvalResult]]
    seconds: dict[str, float | None]
    failures: dict[str, str]
    table: str


def run_benchmark(cfg: RunConfig, say: Say = print, retry_failed: bool = False,
                  after_entry: Callable[[str], None] | None = None,
                  on_metrics: Callable[[str, int, dict], None] | None = None) -> LMRun:
    """Run (or resume) the language-model benchmark. ``on_metrics(entry, step, values)`` receives every probe of
    evaluation during training (``eval_every``), e.g. for a tracker."""
    check_executor(cfg.executor)
    methods = validate_methods(cfg)
    check_tracker(cfg.tracker)
    bench = prepare_benchmark(cfg, say)
    bench.on_metrics = on_metrics
    run = Run.open("lm", run_name(cfg), cfg.model_dump(), inputs=bench.inputs())
    say(f"run directory: {run.layout.root}")
    refs = evaluate_references(run, bench, cfg, say)
    hook = after_entry or _kill_hook()
    entries = [(method, spec, params.model_copy(update={"seed": seed}))
               for method, (spec, params) in methods.items() for seed in cfg.seeds]

    def finished(i: int, computed: bool) -> None:
        if computed and hook is not None:
            hook(entry_name(entries[i][0], entries[i][2].seed))

    run_entries([functools.partial(run_method_entry, run, bench, refs, cfg, method, spec, params, retry_failed, say)
                 for method, spec, params in entries], cfg.executor, finished)  # one after another, or Ray tasks
    out = write_run_table(run, cfg, methods, refs)
    if cfg.eval_every is not None:
        write_eval_curves(run)
    if cfg.continual > 1:
        from unlearnkit.recipes.continual import write_run_curves

        write_run_curves(run, cfg, methods)
    return out


# ---------------------------------------------------------------------------------------------
# The benchmark: data and the two reference models


@dataclass
class LMBench:
    """A prepared task with the comparison's device, precision and prompt format."""

    task: Task
    options: Any  # the task's validated options
    prepared: TaskData
    device: torch.device
    dtype: torch.dtype  # every evaluation runs in this one precision
    prompt: PromptFormat | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)  # original, reference, data
    on_metrics: Callable[[str, int, dict], None] | None = None  # evaluation during training → trackers

    @property
    def source(self):
        return self.prepared.source

    @property
    def data(self) -> str:
        return self.prepared.data

    @property
    def original(self) -> str:
        return self.prepared.original

    @property
    def reference(self) -> str:
        return self.prepared.reference

    @property
    def forget_records(self) -> list[dict]:
        return self.prepared.forget_records

    @property
    def retain_records(self) -> list[dict]:
        return self.prepared.retain_records

    @property
    def refusals(self) -> list[str]:
        return self.prepared.refusals

    def eval_inputs(self, cfg: RunConfig) -> dict:
        """What every entry's result depends on besides its model: task, evaluation settings, dtype, prompt."""
        out = {"eval": cfg.eval.model_dump(), "dtype": str(self.dtype),
               "prompt": self.prompt.model_dump() if self.prompt else None, "engine": ENGINE_VERSION,
               "metrics_version": METRICS_VERSION}
        if cfg.task != "tofu":
            out["task"] = {"name": cfg.task, "options": cfg.task_options}
        return out

    def evaluate(self, model, tokenizer, cfg: RunConfig, model_id: str | None = None) -> EvalResult:
        return self.task.evaluate(model, tokenizer, self.prepared, cfg.eval, self.options, model_id=model_id)

    def load(self, path, for_eval: bool = True):
        """(model, tokenizer): in the comparison's dtype to evaluate, in the dtype it trains in (float32, or float64 for
        float64 models) to train."""
        return load_model(path, device=self.device, dtype=self.dtype if for_eval else None, prompt=self.prompt)

    def for_eval(self, model, copy: bool = False):
        """``model`` in the comparison's dtype (a copy with ``copy``, e.g. mid-run)."""
        if next(model.parameters()).dtype == self.dtype:
            return model
        import copy as _copy

        return (_copy.deepcopy(model) if copy else model).to(self.dtype)

    def inputs(self) -> dict[str, str]:
        return {"data": to_home_relative(self.data), "original": to_home_relative(self.original),
                "reference": to_home_relative(self.reference)}


def task_options(cfg: RunConfig):
    return validate(get_task(cfg.task).options, cfg.task_options, prefix="task_options")


def prepare_benchmark(cfg: RunConfig, say: Say) -> LMBench:
    """The task's data and models (the embedded twin, built or reused, or the given published paths)."""
    task, options = get_task(cfg.task), task_options(cfg)
    req = TaskRequest(cfg.benchmark, cfg.build, cfg.data, cfg.original, cfg.reference, cfg.forget, options)
    prepared = dist.main_first(lambda: task.prepare(req, say if dist.is_main() else lambda s: None))  # builds once
    fps = {"original": model_id(prepared.original), "reference": model_id(prepared.reference),
           "data": prepared.fingerprint}
    return LMBench(task, options, prepared, pick_device(), resolve_dtype(cfg.dtype, prepared.original), cfg.prompt, fps)


def evaluate_references(run: Run, bench: LMBench, cfg: RunConfig, say: Say) -> dict[str, EvalResult]:
    """Retrain (θ_r, its own reference) and Original (θ_o vs θ_r)."""
    ref = _reference_entry(run, bench, cfg, "retrain", bench.reference, None)
    say("evaluated Retrain (θ_r)")
    orig = _reference_entry(run, bench, cfg, "original", bench.original, ref)
    say("evaluated Original (θ_o)")
    return {"retrain": ref, "original": orig}


def run_provenance(cfg: RunConfig, bench: LMBench, **extra) -> dict:
    return provenance(cfg.model_dump(), dtype=str(bench.dtype), **extra)


def _reference_entry(run: Run, bench: LMBench, cfg: RunConfig, name: str, path: str,
                     ref: EvalResult | None) -> EvalResult:
    fp = bench.fingerprints["reference" if name == "retrain" else "original"]
    inputs = {"model": fp, "reference": bench.fingerprints["reference"], "data": bench.fingerprints["data"],
              **bench.eval_inputs(cfg)}
    info = EntryInfo(name=name, hash=content_hash(inputs), method=name, model=fp, inputs=inputs)
    with run.lock(name):
        if run.status(info) == "done":
            return load_eval(run, name)
        model, tok = bench.load(path)
        res = bench.evaluate(model, tok, cfg, model_id=fp)
        bench.task.compare(res, ref if ref is not None else res)
        write_eval(run, info, res, run_provenance(cfg, bench, model=path))
        return res


# ---------------------------------------------------------------------------------------------
# Methods


def validate_methods(cfg: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Resolve every method and validate its hyperparameters before anything trains."""
    out = {}
    if cfg.eval_every is not None and cfg.continual > 1:
        raise UnlearnkitError("eval_every and continual>1 do not combine yet: use one of them")
    unknown = set(cfg.method_params) - set(cfg.methods)
    if unknown:
        raise UnlearnkitError(f"method_params has entries for methods not in `methods`: {', '.join(sorted(unknown))}")
    for m in cfg.methods:
        spec, retain = resolve(m)
        if is_post_hoc(spec):
            if cfg.eval_every is not None:
                raise UnlearnkitError(f"{m!r} is post-hoc (it does not train): drop eval_every or the method")
            if cfg.task != "tofu":
                raise UnlearnkitError(f"{m!r} is post-hoc and evaluates with TOFU's metrics: use it with task=tofu")
            if cfg.continual > 1:
                raise UnlearnkitError(f"{m!r} is post-hoc and cannot run in stages: drop it from methods or use "
                                      "continual=1")
            out[m] = (spec, _post_hoc_params(cfg, m, spec, retain))
            continue
        out[m] = (spec, make_params(spec, {**cfg.defaults, **cfg.method_params.get(m, {})}, retain))
    return out


def _post_hoc_params(cfg: RunConfig, m: str, spec, retain: str | None):
    """A post-hoc method's own params (the run's defaults go to its base method, validated here too)."""
    if retain:
        raise UnlearnkitError(f"{m!r}: {spec.name} is post-hoc; give the retain term to its base method "
                              f"(method_params: {{{spec.name}: {{base: ga+{retain}}}}})")
    params = validate(spec.params, cfg.method_params.get(m, {}), prefix=f"method_params.{m}")
    base_of(cfg, spec, params)
    return params


def base_of(cfg: RunConfig, spec, params):
    """(base spec, base params) of a post-hoc method: the run's defaults + its base_params, same seed."""
    base_spec, base_retain = resolve(params.base)
    if is_post_hoc(base_spec):
        raise UnlearnkitError(f"{spec.name}: base {params.base!r} is post-hoc too; the base must be a training "
                              "method (e.g. ga, npo+kl)")
    return base_spec, make_params(base_spec, {**cfg.defaults, **params.base_params, "seed": params.seed}, base_retain)


def method_entry(bench: LMBench, cfg: RunConfig, method: str, spec, params) -> EntryInfo:
    """The entry of (method, seed) and the hash of everything that determines its result."""
    inputs = {"method": method, "params": params.model_dump(), "original": bench.fingerprints["original"],
              "reference": bench.fingerprints["reference"], "data": bench.fingerprints["data"],
              "continual": cfg.continual, **bench.eval_inputs(cfg)}
    if cfg.eval_every is not None:  # a selected checkpoint is another θ_u
        inputs["eval_every"] = cfg.eval_every.model_dump()
    if is_post_hoc(spec):
        inputs["base_params"] = base_of(cfg, spec, params)[1].model_dump()
    return EntryInfo(name=entry_name(method, params.seed), hash=content_hash(inputs), method=spec.name,
                     seed=params.seed, params_hash=content_hash(params.model_dump()), inputs=inputs)


def run_method_entry(run: Run, bench: LMBench, refs: dict[str, EvalResult], cfg: RunConfig, method: str, spec,
                     params, retry_failed: bool, say: Say) -> bool:
    """Skip, or compute and write, one (method, seed) entry; True when it was computed."""
    info = method_entry(bench, cfg, method, spec, params)
    with run.lock(info.name):
        status = run.status(info)
        if status == "done":
            say(f"{info.name}: finished earlier, skipped")
            return False
        if status == "failed" and not retry_failed:
            say(f"{info.name}: failed earlier ({run.failure(info.name)['error']}), skipped (--retry-failed reruns it)")
            return False
        if status == "changed":
            say(f"{info.name}: its inputs changed since it was computed ({run.changed_inputs(info)}), recomputing")
        compute_method_entry(run, bench, refs, cfg, info, spec, params, say)
        return True


def compute_method_entry(run: Run, bench: LMBench, refs: dict[str, EvalResult], cfg: RunConfig, info: EntryInfo,
                         spec, params, say: Say) -> None:
    """θ_u (reused when saved with the same hash) → save → evaluate → compare to θ_r → write."""
    model, tok, log = _reused_model(run, bench, info, say)
    if model is None:
        try:
            with tracking(cfg.tracker, run, info.name, {"method": spec.name, **params.model_dump()}) as tracker:
                model, tok, log = _make_model(run, bench, refs, cfg, info, spec, params, say, tracker)
        except NonFiniteLossError as e:
            run.write_log(info.name, {"params": params.model_dump(), "hash": info.hash, "error": str(e)})
            run.write_failed(info, str(e))
            say(f"{info.name}: STOPPED — {e}. Log kept in {run.layout.log(info.name)}; continuing with the other "
                "methods")
            return
        adapter = log.pop("adapter", None)
        fp = save_model_entry(run, info.name, model, tok, cfg.save_models, adapter=adapter, base=bench.original,
                              merged=bool(params.peft and params.peft.save_merged) if adapter is not None else False)
        run.write_log(info.name, {"method": spec.name, "params": params.model_dump(), "hash": info.hash,
                                  "model_fingerprint": fp, **log})
        n_steps = len(log.get("steps", []))  # post-hoc entries log a report, not steps
        say(f"{info.name}: unlearned in {log['wall_time']:.1f}s" + (f" ({n_steps} steps)" if n_steps else ""))
    mid = model_id(str(run.layout.model(info.name))) if run.layout.model(info.name).is_dir() else None
    res = bench.task.compare(bench.evaluate(bench.for_eval(model), tok, cfg, model_id=mid), refs["retrain"])
    extra = {}
    if cfg.continual > 1 and not is_post_hoc(spec):
        from unlearnkit.recipes.continual import finish_entry

        extra["continual"] = finish_entry(run, bench, refs, cfg, info, res)
    if "report" in log:
        extra["post_hoc"] = log["report"]
    if "eval_curve" in log:
        extra["eval_curve"] = log["eval_curve"]
    write_eval(run, info.with_model(mid), res, run_provenance(cfg, bench, seed=params.seed, method=spec.name,
                                                              params=params.model_dump()),
               seconds=float(log["wall_time"]), extra=extra)
    say(f"{info.name}: evaluated ({bench.task.headline(res)})")


def _reused_model(run: Run, bench: LMBench, info: EntryInfo, say: Say):
    """A θ_u saved earlier for exactly this entry hash (and intact), or (None, None, None)."""
    d, log = run.layout.model(info.name), read_json_or_none(run.layout.log(info.name))
    if not (is_saved_model(d) and isinstance(log, dict) and log.get("hash") == info.hash):
        return None, None, None
    if log.get("model_fingerprint") not in (None, model_fingerprint(d)):
        say(f"{info.name}: the saved θ_u was altered since it was made (fingerprint mismatch); recomputing it")
        return None, None, None
    say(f"{info.name}: θ_u found, evaluating")
    model, tok = bench.load(d)
    return model, tok, log


def _make_model(run: Run, bench: LMBench, refs, cfg: RunConfig, info: EntryInfo, spec, params, say: Say,
                tracker=None):
    model, tok = bench.load(bench.original, for_eval=False)
    if is_post_hoc(spec):
        model, log = _post_hoc_model(run, bench, cfg, info, spec, params, model, tok, say)
    elif cfg.continual > 1:
        from unlearnkit.recipes.continual import continual_model

        model, log = continual_model(run, bench, refs, cfg, info, spec, params, model, tok, say)
    else:
        say(f"{info.name}: unlearning with {spec.name} ({params.retain or spec.fn.default_retain} retain term)")
        ev = training_evaluator(run, bench, cfg, info.name, tok, tracker)
        tlog = unlearn(model, tok, spec, params, bench.forget_records, bench.retain_records, bench.refusals,
                       desc=info.name, on_step=ev.on_step if ev else None, on_epoch=ev.on_epoch if ev else None)
        log = {**tlog.to_dict(), "adapter": tlog.adapter}
        if ev is not None:
            log["eval_curve"] = ev.finish(model)
            if ev.best is not None:
                say(f"{info.name}: selected step {ev.best['step']} ({log['eval_curve']['criterion']})")
    return model, tok, log


def training_evaluator(run: Run, bench: LMBench, cfg: RunConfig, entry: str, tok,
                       tracker=None) -> TrainingEvaluator | None:
    """The probes of ``cfg.eval_every`` for one entry: curve written after each probe, metrics to the callback and
    to the entry's experiment tracker (as ``eval/<metric>`` at the probe's step)."""
    if cfg.eval_every is None:
        return None
    cb = bench.on_metrics

    def on_metrics(step: int, values: dict) -> None:
        if cb is not None:
            cb(entry, step, values)
        if tracker is not None:
            tracker.log({f"eval/{k}": v for k, v in values.items() if isinstance(v, (int, float))}, step)

    return TrainingEvaluator(bench.task, bench.prepared, bench.options, cfg.eval, cfg.eval_every, tok,
                             on_metrics=on_metrics,
                             write=lambda doc: run.write_log(f"{entry}__eval_curve", doc))


def write_eval_curves(run: Run) -> None:
    """``eval_curves.json``: every entry's curve of evaluation during training (from its results)."""
    curves = {n: rec.extra["eval_curve"] for n in run.layout.entries()
              if (rec := run.record(n)) is not None and "eval_curve" in rec.extra}
    if curves:
        run.write_json("eval_curves.json", curves)


def _post_hoc_model(run: Run, bench: LMBench, cfg: RunConfig, info: EntryInfo, spec, params, original, tok, say: Say):
    """θ_u from the base method (reusing the run's saved entry when its hash matches), then apply."""
    base_spec, base_params = base_of(cfg, spec, params)
    base = method_entry(bench, cfg, params.base, base_spec, base_params)
    unlearned, _, base_log = _reused_model(run, bench, base, lambda s: None)
    if unlearned is not None:
        say(f"{info.name}: reusing θ_u of {base.name}")
        base_seconds = float(base_log.get("wall_time", 0.0))
    else:
        say(f"{info.name}: making θ_u with {params.base}")
        unlearned, _ = bench.load(bench.original, for_eval=False)
        base_seconds = unlearn(unlearned, tok, base_spec, base_params, bench.forget_records, bench.retain_records,
                               bench.refusals, desc=f"{info.name} base").wall_time
    original, unlearned = bench.for_eval(original, copy=True), bench.for_eval(unlearned)  # CRU compares in it too
    reference, _ = bench.load(bench.reference)
    t0 = time.perf_counter()
    say(f"{info.name}: applying {spec.name} to θ_u")
    model, report = spec.fn.apply(PostHocContext(original=original, unlearned=unlearned, tokenizer=tok,
                                                 source=bench.source, forget=cfg.forget, reference=reference,
                                                 eval_config=cfg.eval, say=say), params)
    apply_seconds = time.perf_counter() - t0
    return model, {"base": params.base, "base_params": base_params.model_dump(), "base_seconds": base_seconds,
                   "apply_seconds": apply_seconds, "wall_time": base_seconds + apply_seconds, "report": report}


# ---------------------------------------------------------------------------------------------
# The table


def write_run_table(run: Run, cfg: RunConfig, methods: dict, refs: dict[str, EvalResult]) -> LMRun:
    """Rows Original, Retrain, then each method (mean over seeds), failures last — one table, or one per
    group of ``cfg.tables``; summary.json + table.md."""
    base = [row("Original", ["original"], [SECONDS]), row("Retrain", ["retrain"], [SECONDS])]
    results = {"Original": [refs["original"]], "Retrain": [refs["retrain"]]}
    seconds: dict[str, float | None] = {"Original": None, "Retrain": None}
    values = {"original": refs["original"].aggregates, "retrain": refs["retrain"].aggregates}
    evals = dict(refs)
    rows, failures = {}, {}
    for method in methods:
        names = [entry_name(method, s) for s in cfg.seeds]
        done = [n for n in names if run.record(n) is not None]
        if done:
            rows[method] = row(method, done)
            results[method] = [load_eval(run, n) for n in done]
            evals.update(zip(done, results[method]))
            values.update({n: run.record(n).aggregates for n in done})
            seconds[method] = float(np.mean([values[n][SECONDS]["value"] for n in done]))
        else:
            failures[method] = next((f["error"] for n in names if (f := run.failure(n))), "not finished")
            rows[method] = failed_row(method, failures[method])
    groups = cfg.tables or {None: list(methods)}
    task = get_task(cfg.task)
    specs = [table_spec(lm_columns(task.columns, ci=cfg.intervals), base + [rows[m] for m in ms if m not in failures]
                        + [rows[m] for m in ms if m in failures], title=title,
                        notes=[*task.notes, *([INTERVAL_NOTE] if cfg.intervals else [])])
             for title, ms in groups.items()]
    if cfg.intervals:
        add_intervals(run, specs, task, evals, "retrain", run_eval_set(run, "retrain"))
    table = render_tables(specs, values)
    run.write_summary(specs, table, failures=failures, provenance=provenance(cfg.model_dump()))
    return LMRun(run, results, seconds, failures, table)


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
