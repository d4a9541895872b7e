"""Metric reliability under red-team interventions (seed: "Towards Effective Evaluations …").

A reliable metric reflects what the model knows, so it should give consistent scores before
and after an intervention that changes only superficial behaviour. Over a pool of models
(methods × strengths × checkpoints along each run) compute each metric before and after each
intervention and report the Pearson correlation across the pool, separately on forget and
retain data. Interventions (attacks of the registry, :mod:`unlearnkit.attacks`; any registered attack can be
named):

- ``relearn``    a few fine-tuning steps on part of the forget set (relearning attack);
- ``jailbreak``  the question wrapped in a jailbreak-style prompt (shipped list, rotating);
- ``paraphrase`` the paraphrased question instead of the original;
- ``noise``      random token noise in the prompt (a fraction of question tokens replaced);
- ``quant8``/``quant4``  weights rounded to 8/4-bit (symmetric, per output row, round-to-nearest).

Metrics: the task's (``Task.reliability_metrics`` and ``Task.measure``; TOFU: ES (exact), EM,
probability, ROUGE-L, truth ratio, perplexity, MIA score (Min-K%)).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from unlearnkit.attacks import AttackTarget, apply_attack, attack_specs
from unlearnkit.attacks.prompts import JAILBREAK_WRAPPERS, noisy_question  # noqa: F401 - re-exported
from unlearnkit.attacks.quantize import quantize_model, quantize_rtn  # noqa: F401 - re-exported
from unlearnkit.attacks.relearn import RelearnConfig, relearned  # noqa: F401 - re-exported
from unlearnkit.config import BuildConfig, EvalDtype, OmitWhenDefault, Precision, Seed, StrictModel
from unlearnkit.engine.executor import ExecutorConfig
from unlearnkit.errors import UnlearnkitError
from unlearnkit.results.layout import RunName

INTERVENTIONS = ("relearn", "jailbreak", "paraphrase", "noise", "quant8", "quant4")  # the default battery


def task_metrics(task: str = "tofu") -> tuple[str, ...]:
    """The metrics the reliability study measures on ``task`` (declared by the task)."""
    from unlearnkit.tasks import get_task

    t = get_task(task)
    if not t.reliability_metrics:
        raise UnlearnkitError(f"task {task} has no reliability study (its interventions rewrite questions): use "
                              "task=tofu")
    return t.reliability_metrics

class ReliabilityConfig(OmitWhenDefault):
    task: str = Field("tofu", description="the task whose metrics are measured (one with a reliability study)")
    build: BuildConfig = BuildConfig()
    forget: Literal["forget01", "forget05", "forget10"] = "forget10"
    methods: list[str] = Field(default_factory=lambda: ["ga", "gd", "kl", "npo"], min_length=1)
    strengths: list[float] = Field(default_factory=lambda: [2e-4], min_length=1, description="learning rates")
    epochs: int = Field(5, ge=1, description="a checkpoint after every epoch joins the pool")
    batch_size: int = Field(8, ge=1)
    include_original: bool = True
    interventions: list[str] = Field(default_factory=lambda: list(INTERVENTIONS), min_length=1)
    metrics: list[str] = Field(default_factory=lambda: list(task_metrics()), min_length=1)
    relearn: RelearnConfig = RelearnConfig()
    noise_rate: float = Field(0.2, gt=0, le=1)
    max_new_tokens: int = Field(48, ge=1)
    seed: Seed = 0
    name: RunName | None = Field(None, description="run name (default: a hash of this config)")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="pool trainings and measurements: local or ray")
    precision: Precision = Field("auto", description="training precision of the pool and of the "
                                               "relearning attack (as a method's `precision`)")
    dtype: EvalDtype = Field(
        "auto", description="the one precision every pool model is measured in (auto: float64 for float64 models, "
        "else bfloat16 on a GPU that has it, else float32); the relearning attack trains a float32 (float64) copy")

    omit_when_default: ClassVar[dict[str, Any]] = {"precision": "auto", "dtype": "auto"}  # older runs keep their names

    @field_validator("task")
    @classmethod
    def _task_with_a_study(cls, v: str) -> str:
        try:
            task_metrics(v)
        except UnlearnkitError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("interventions", "metrics")
    @classmethod
    def _known_names(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.field_name == "interventions":
            what, known = "intervention", tuple(a.name for a in attack_specs())
        else:
            try:
                what, known = "metric", task_metrics(info.data.get("task", "tofu"))
            except UnlearnkitError as e:
                raise ValueError(str(e)) from None
        bad = [x for x in v if x not in known]
        if bad:
            raise ValueError(f"unknown {what} {bad[0]!r}; known: {', '.join(known)}")
        return v


# ---------------------------------------------------------------------------------------------
# Pure pieces (tested on their own)


def pearson(before, after) -> float | None:
    """Pearson correlation across the pool; None when undefined (a constant array)."""
    from scipy.stats import pearsonr

    x, y = np.asarray(before, float), np.asarray(after, float)
    if len(x) < 3:
        raise UnlearnkitError(f"Pearson correlation needs a pool of at least 3 models, got {len(x)}: "
                              "add methods, strengths or epochs")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(pearsonr(x, y).statistic)


# ---------------------------------------------------------------------------------------------
# Measuring one model under one condition


def measure(model, tokenizer, records: list[dict], role: str, question: Callable[[int, dict], str],
            metrics: list[str], max_new_tokens: int, batch_size: int = 64, task: str = "tofu") -> dict[str, float]:
    """Mean of each metric over ``records`` with questions from ``question(i, record)``, as the task measures it
    (:meth:`unlearnkit.tasks.tofu.Tofu.measure`)."""
    from unlearnkit.tasks import get_task

    return get_task(task).measure(model, tokenizer, records, role, question, metrics, max_new_tokens, batch_size)


# ---------------------------------------------------------------------------------------------
# One model under every condition, and the correlations over the pool


def measure_conditions(model, tokenizer, sets: dict[str, list[dict]], forget_train: list[dict], cfg: ReliabilityConfig,
                       say: Callable[[str], None] = lambda s: None, *,
                       retain_train: list[dict] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """condition ("none" or an intervention) → role (forget / retain) → metric → mean value (``retain_train``: the
    retain records a benign-relearning attack trains on)."""
    out: dict[str, dict] = {}
    for cond in ("none", *cfg.interventions):
        t = AttackTarget(model, tokenizer, sets, forget_train, cfg.seed, cfg.precision,
                         retain_train=list(retain_train or []))
        if cond != "none":
            t = apply_attack(cond, t, attack_params(cfg, cond))
        out[cond] = {role: measure(t.model, tokenizer, recs, role, t.question(role), cfg.metrics,
                                   cfg.max_new_tokens, task=cfg.task) for role, recs in sets.items()}
    return out


def attack_params(cfg: ReliabilityConfig, name: str) -> dict | StrictModel | None:
    """The study's knobs of an attack (relearn, relearn_benign: ``cfg.relearn``; noise: ``cfg.noise_rate``); other
    attacks run at their defaults."""
    return {"relearn": cfg.relearn, "relearn_benign": cfg.relearn, "noise": {"rate": cfg.noise_rate}}.get(name)


def correlations(values: dict, names: list[str], metrics: list[str], interventions: list[str]):
    """Pearson correlation per (role, metric, intervention) over the pool, and the scatter data."""
    pcc: dict = {}
    scatter: dict = {}
    for role in ("forget", "retain"):
        pcc[role], scatter[role] = {}, {}
        for met in metrics:
            pcc[role][met], scatter[role][met] = {}, {}
            before = [values[n]["none"][role][met] for n in names]
            for iv in interventions:
                after = [values[n][iv][role][met] for n in names]
                pcc[role][met][iv] = pearson(before, after)
                scatter[role][met][iv] = (before, after)
    return pcc, scatter


def reliability_table(pcc: dict, metrics: list[str], interventions: list[str]) -> str:
    from unlearnkit.results.tables import format_table

    blocks = []
    for role in ("forget", "retain"):
        rows = []
        for met in metrics:
            vals = [pcc[role][met][iv] for iv in interventions]
            ok = [v for v in vals if v is not None]
            rows.append([met, *vals, float(np.mean(ok)) if ok else None])
        blocks.append(f"Pearson correlation before/after intervention — {role} data\n"
                      + format_table(["metric", *interventions, "mean"], rows, digits=3))
    return "\n\n".join(blocks)
