"""The language-model run's config (:class:`RunConfig`, presets in configs/), its default run name, and the
resolution of its methods (every method and its hyperparameters validated before anything trains)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from unlearnkit.analysis.calibration import CalibrationConfig
from unlearnkit.attacks import AttackNames
from unlearnkit.config import BuildConfig, EvalDtype, Seed, StrictModel, validate
from unlearnkit.data.prompts import PromptFormat, resolve_prompt
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.executor import ExecutorConfig
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.methods.llm.posthoc import is_post_hoc
from unlearnkit.methods.unlearn import make_params, resolve
from unlearnkit.results.layout import RunName
from unlearnkit.tasks import get_task
from unlearnkit.tasks.training import EvalEveryConfig, check_eval_every


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
    name: RunName | None = Field(None, description="run directory name (default: a hash of this config)")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="how the (method, seed) entries run: local (one "
                                     "after another) or ray (one task each); results are the same")
    save_models: bool = True
    calibrate: bool = Field(False, description="after the run, calibrate every method by model mixing")
    attacks: AttackNames = Field(default_factory=list, description="after the run, attack every entry with these "
                               "attacks of `unlearnkit ls attacks` and print the recovery table (`unlearnkit attack`)")
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


def run_name(cfg: RunConfig) -> str:
    exclude = {"name", "calibrate", "calibration", "report", "tracker", "executor", "intervals", "attacks"}  # how to run or show it
    exclude |= {"continual"} if cfg.continual == 1 else set()  # k = 1: the normal run
    prefix = "lm" if cfg.task == "tofu" else cfg.task
    return cfg.name or f"{prefix}-{cfg.forget}-{content_hash(cfg.model_dump(exclude=exclude))}"


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
