"""The benchmark of a language-model run: the task's data and models prepared in the comparison's device,
precision and prompt format (:class:`LMBench`), and the two reference rows, Retrain (θ_r) and Original (θ_o)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from unlearnkit.config import validate
from unlearnkit.data.prompts import PromptFormat
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.cache import ENGINE_VERSION
from unlearnkit.engine.result import EvalResult
from unlearnkit.io import content_hash, to_home_relative
from unlearnkit.models.lm import load_model, model_id, pick_device, resolve_dtype
from unlearnkit.recipes.lm.config import RunConfig
from unlearnkit.results.eval import load_eval, write_eval
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Run
from unlearnkit.tasks import Task, TaskData, TaskRequest, get_task

Say = Callable[[str], None]
METRICS_VERSION = 2  # bump when an aggregate's definition changes (2: PrivLeak in MUSE's convention, ZLib of the mean)


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
    ref = _reference_entry(run, bench, cfg, "retrain", None)
    say("evaluated Retrain (θ_r)")
    orig = _reference_entry(run, bench, cfg, "original", ref)
    say("evaluated Original (θ_o)")
    return {"retrain": ref, "original": orig}


def run_provenance(cfg: RunConfig, bench: LMBench, **extra) -> dict:
    return provenance(cfg.model_dump(), dtype=str(bench.dtype), **extra)


def _reference_entry(run: Run, bench: LMBench, cfg: RunConfig, name: str, ref: EvalResult | None) -> EvalResult:
    """The entry ``retrain`` (θ_r) or ``original`` (θ_o), compared to ``ref`` (None: to itself)."""
    path = bench.reference if name == "retrain" else bench.original
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
