"""``unlearnkit unlearn``: one method on one model; saves θ_u (loadable with ``--model DIR``) and its
training log.

The data come from the task (``task``, TOFU by default; :meth:`unlearnkit.tasks.Task.training_data`): the
forget split's records and its retain records, from ``data`` or else the embedded twin's data (built
offline, no models) or the published data.

The output directory holds the model files at its top level (``model.safetensors``, ``config.json``,
tokenizer), ``train_log.json``, and ``run.json`` (an ``unlearn`` run in the index, one entry
``theta_u``). It is built under a temporary name and swapped in only when complete. An existing
``--out`` is never wiped: the same finished output (same method, hyperparameters, model and data)
is reused; anything else is refused unless ``--force`` (which moves the old one aside first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.config import BuildConfig, validate
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.cache import records_hash
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_write_json, content_hash, home, read_json_or_none
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.lm import is_saved_model, load_model, model_id, pick_device, save_adapter_model, save_model
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run, output_name, prepare_output_dir, write_run_file
from unlearnkit.tasks import Task, TaskRequest, TrainingData, get_task

Say = Callable[[str], None]


@dataclass
class Unlearned:
    out: Path
    seconds: float
    steps: int
    reused: bool = False
    forget: str = ""  # the forget split unlearned


def _save_output(d: Path, model, tok, log: dict, *, adapter, base: str, merged: bool) -> None:
    """θ_u (a LoRA θ_u: its adapter, and the merged weights with ``merged``), its training log and run.json, built
    under a temporary name and swapped in (main process)."""
    with atomic_dir(d) as tmp:
        if adapter is not None:
            save_adapter_model(adapter, tok, tmp, base, merged=model if merged else None)
        else:
            save_model(model, tok, tmp)
        atomic_write_json(tmp / "train_log.json", log)
        write_run_file(tmp, output_name(d), "unlearn")


def _training_data(task: Task, req: TaskRequest, say: Say) -> TrainingData:
    """The task's forget and retain records (the embedded data built once, by the main process first)."""
    return dist.main_first(lambda: task.training_data(req, say if dist.is_main() else lambda s: None))


def _inputs(task: Task, method: str, params, model: str, train: TrainingData, *, forget: str) -> dict:
    """What θ_u is a function of (its hash names the output); TOFU's keys carry no task, as always."""
    inputs = {"method": method, "params": params.model_dump(), "model": model_id(model),
              "data": records_hash([train.forget_records, train.retain_records, train.refusals]),
              "forget": forget}
    return inputs if task.name == "tofu" else {**inputs, "task": task.name}


def _reused(d: Path, inputs: dict, say: Say) -> Unlearned | None:
    """The finished output already at ``d`` for exactly ``inputs``; refuses another configuration's output."""
    log = read_json_or_none(d / "train_log.json")
    if log and log.get("hash") == content_hash(inputs) and is_saved_model(d):
        say(f"{d} already holds θ_u for exactly this method, model and data: nothing to do (--force redoes it)")
        return Unlearned(d, float(log.get("wall_time", 0.0)), len(log.get("steps", [])), reused=True,
                         forget=inputs["forget"])
    if d.exists() and any(d.iterdir()):
        raise UnlearnkitError(f"--out {str(d)!r} holds θ_u of another configuration (method, hyperparameters, model "
                              "or data differ): give another --out, or --force to replace it (the old one is moved "
                              "aside)")
    return None


def unlearn_model(method: str, model: str, *, forget: str | None = None, benchmark: str = "embedded",
                  data: str | None = None, out: str | None = None, overrides: dict | None = None,
                  force: bool = False, say: Say = lambda s: None, task: str = "tofu",
                  options: dict | None = None) -> Unlearned:
    """Unlearn ``forget`` (default: the task's ``default_forget``) of ``task`` from ``model`` with ``method``;
    ``data`` None takes the embedded twin's data (built offline) or the published data, ``options`` the task's
    ``task_options``."""
    spec, retain = resolve(method)
    params = make_params(spec, overrides or {}, retain)
    t = get_task(task)
    t.check_benchmark(benchmark)
    forget = t.check_forget(t.default_forget if forget is None else forget)
    opts = validate(t.options, options or {}, prefix="task_options")
    train = _training_data(t, TaskRequest(benchmark, BuildConfig(), data, model, None, forget, opts), say)
    inputs = _inputs(t, method, params, model, train, forget=forget)
    d = Path(out).expanduser() if out else home() / "runs" / (
        f"unlearn-{method.replace('+', '_plus_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    prepare_output_dir(d, "unlearn", force)
    done = _reused(d, inputs, say)
    if done is not None:
        return done
    m, tok = load_model(model, device=pick_device())
    tlog = unlearn(m, tok, spec, params, train.forget_records, train.retain_records, train.refusals)
    extra = {} if t.name == "tofu" else {"task": t.name}
    log = {"method": spec.name, "forget": forget, "model": model, "params": params.model_dump(),
           "hash": content_hash(inputs), **tlog.to_dict(), **extra}
    merged = bool(params.peft and params.peft.save_merged)
    dist.on_main(lambda: _save_output(d, m, tok, log, adapter=tlog.adapter, base=model, merged=merged))
    config = {"method": method, "model": model, "forget": forget, "data": train.data}
    if extra:
        config.update(task=t.name, task_options=opts.model_dump())
    _write_run(d, inputs, tlog, spec=spec, params=params, config=config)
    return Unlearned(d, tlog.wall_time, len(tlog.steps), forget=forget)


def _write_run(d: Path, inputs: dict, tlog, *, spec, params, config: dict) -> None:
    """θ_u's entry in the run index: its inputs, wall time, steps and provenance."""
    run = Run.open_at(d, "unlearn")  # no run config.json: that name holds θ_u's model config (train_log.json has it)
    run.write(EntryInfo(name="theta_u", hash=content_hash(inputs), method=spec.name, seed=params.seed,
                        params_hash=content_hash(params.model_dump()), model=model_id(str(d)), inputs=inputs),
              {"unlearn_seconds": Metric(tlog.wall_time, None, False), "steps": Metric(len(tlog.steps))},
              provenance=provenance(config, seed=params.seed, params=params.model_dump()))
