"""``unlearnkit eval``: evaluate one model on a task (every metric it declares), compared to θ_r.

    the evaluation config (``--config``, ``key=value``; ``task_options.KEY=VALUE`` go to the task) → load
    the task's data (embedded twin, a local copy of the published data, or the hub) → evaluate
    the model (cached passes) → evaluate θ_r → what needs θ_r (TOFU: FQ, PrivLeak, Reference MIA;
    MUSE: PrivLeak) → an ``eval`` run with one entry, ``model``

The output is a run (``$UNLEARNKIT_HOME/runs/eval-<time>-<hash>`` or ``--out DIR``); rerunning into
the same ``--out`` reuses the finished evaluation when nothing it depends on changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from unlearnkit.config import BuildConfig, load_config, parse_overrides, validate
from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.cache import ENGINE_VERSION
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.result import EvalResult
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.models.lm import load_model, model_id, pick_device, resolve_dtype
from unlearnkit.results.eval import load_eval, write_eval
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Run
from unlearnkit.tasks import Task, TaskData, TaskRequest, get_task

Say = Callable[[str], None]


def evaluate_path(path: str, task: Task, data: TaskData, cfg: EvalConfig, options: Any, *, dtype: torch.dtype,
                  say: Say = lambda s: None) -> EvalResult:
    model, tok = load_model(path, device=pick_device(), dtype=dtype)
    t0 = time.perf_counter()
    res = task.evaluate(model, tok, data, cfg, options, model_id=model_id(path) + f"-{str(dtype).split('.')[-1]}")
    say(f"evaluated {path} ({time.perf_counter() - t0:.1f}s)")
    del model
    return res


def _tofu_inputs(task: Task, model: str, cfg: EvalConfig, *, benchmark: str, data: str | None,
                 reference: str | None, no_reference: bool, say: Say) -> TaskData:
    """TOFU: the embedded data (and θ_r, built unless --no-reference or given) or a TOFU-format source."""
    check_split_name(cfg.forget, task.forget_splits)
    if benchmark == "embedded" and data is None:
        from unlearnkit.models.build import build_models

        bc = BuildConfig(forget_splits=[cfg.forget])
        if reference is None and not no_reference:
            ms = dist.main_first(lambda: build_models(bc, say=say if dist.is_main() else lambda s: None))
            data, reference = str(ms.data_dir), str(ms.reference_for(cfg.forget))
        else:
            from unlearnkit.data import fictitious

            data = str(dist.main_first(lambda: fictitious.build(bc.data)))
    if not no_reference and reference is None:
        raise UnlearnkitError(
            f"forget quality and PrivLeak need the reference model retrained without {cfg.forget} "
            f"(trained on {RETAIN_OF[cfg.forget]}): pass --reference PATH, or --no-reference to skip them")
    src = QASource(data or HUB_NAME)
    return TaskData("tofu", src, src.location, model, reference or "", [], [], [], "")


def _task_inputs(task: Task, model: str, cfg: EvalConfig, options: Any, *, benchmark: str, data: str | None,
                 reference: str | None, no_reference: bool, say: Say) -> TaskData:
    """Another task: its prepared data (the embedded twin builds θ_r too; published data needs --reference)."""
    task.check_forget(cfg.forget)
    if benchmark != "embedded" and reference is None and not no_reference:
        raise UnlearnkitError(f"task {task.name} on its published data needs the reference model: pass --reference "
                              "PATH, or --no-reference to skip what needs it")
    req = TaskRequest(benchmark, BuildConfig(), data, model, reference or model, cfg.forget, options)
    prepared = task.prepare(req, say)
    if no_reference:
        prepared.reference = ""
    elif reference is not None:
        prepared.reference = reference
    return prepared


def evaluate_paths(model: str, *, benchmark: str, data: str | None, reference: str | None, no_reference: bool,
                   cfg: EvalConfig, out: str | None = None, dtype: str = "auto", force: bool = False,
                   say: Say = lambda s: None, task: str = "tofu",
                   task_options: dict | None = None) -> tuple[EvalResult, Run]:
    """Evaluate ``model`` on ``task`` (and θ_r for what needs it) into an ``eval`` run; returns (result, run)."""
    if reference and no_reference:
        raise UnlearnkitError("--reference and --no-reference contradict each other: give one")
    t = get_task(task)
    t.check_benchmark(benchmark)
    options = validate(t.options, task_options or {}, prefix="task_options")
    where = {"benchmark": benchmark, "data": data, "reference": reference, "no_reference": no_reference, "say": say}
    prepared = (_tofu_inputs(t, model, cfg, **where) if t.name == "tofu"
                else _task_inputs(t, model, cfg, options, **where))
    reference = prepared.reference or None
    dt = resolve_dtype(dtype, model)
    config = {"model": model, "reference": reference, "data": prepared.data, "benchmark": benchmark,
              "eval": cfg.model_dump(), "dtype": str(dt), **({"task": t.name} if t.name != "tofu" else {})}
    inputs = {"model": model_id(model), "reference": model_id(reference) if reference else None,
              "data": prepared.data, "eval": cfg.model_dump(), "dtype": str(dt), "engine": ENGINE_VERSION,
              "task": t.name, "options": options.model_dump()}
    run = (Run.open_at(out, "eval", config, force) if out
           else Run.open("eval", f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{content_hash(inputs, 6)}", config))
    info = EntryInfo(name="model", hash=content_hash(inputs), method="eval", model=inputs["model"], inputs=inputs)
    with run.lock("model"):
        if run.status(info) == "done":
            say(f"evaluated earlier into {run.layout.root}: reusing it (--force recomputes)")
            return load_eval(run, "model"), run
        res = evaluate_path(model, t, prepared, cfg, options, dtype=dt, say=say)
        if reference is not None:
            t.compare(res, evaluate_path(reference, t, prepared, cfg, options, dtype=dt, say=say))
        write_eval(run, info, res, provenance(cfg.model_dump(), model=model, reference=reference,
                                              data=prepared.data, benchmark=benchmark, task=t.name))
    return res, run


def split_task_options(overrides: list[str]) -> tuple[list[str], dict]:
    """``task_options.KEY=VALUE`` overrides → the task's options (a dict); the rest configure :class:`EvalConfig`."""
    rest = [o for o in overrides if not o.startswith("task_options.")]
    options = parse_overrides([o for o in overrides if o.startswith("task_options.")]).get("task_options", {})
    return rest, options


def evaluate_model(task: str, model: str, *, config: str | None = None, overrides: list[str] | None = None,
                   forget: str | None = None, benchmark: str = "embedded", data: str | None = None,
                   reference: str | None = None, no_reference: bool = False, out: str | None = None,
                   dtype: str = "auto", force: bool = False, say: Say = lambda s: None) -> tuple[EvalResult, Run]:
    """``unlearnkit eval``: the evaluation config from ``config`` and ``overrides`` with the forget split (default:
    the task's), the task's options from the ``task_options.*`` overrides; then :func:`evaluate_paths`."""
    t = get_task(task)
    rest, options = split_task_options(list(overrides or []))
    cfg = load_config(EvalConfig, config, [*rest, f"forget={forget or t.default_forget}"])
    return evaluate_paths(model=model, benchmark=benchmark, data=data, reference=reference, no_reference=no_reference,
                          cfg=cfg, out=out, dtype=dtype, force=force, say=say, task=t.name, task_options=options)
