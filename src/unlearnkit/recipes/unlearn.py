"""``unlearnkit unlearn``: one method on one model; saves θ_u (loadable with ``--model DIR``) and its
training log.

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

from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.evaluate import records_hash
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_write_json, content_hash, home, read_json_or_none
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.lm import is_saved_model, load_model, model_id, pick_device, save_adapter_model, save_model
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run, output_name, prepare_output_dir, write_run_file

Say = Callable[[str], None]


@dataclass
class Unlearned:
    out: Path
    seconds: float
    steps: int
    reused: bool = False


def _save_output(d: Path, model, tok, log: dict, adapter, base: str, merged: bool) -> None:
    """θ_u (a LoRA θ_u: its adapter, and the merged weights with ``merged``), its training log and run.json, built
    under a temporary name and swapped in (main process)."""
    with atomic_dir(d) as tmp:
        if adapter is not None:
            save_adapter_model(adapter, tok, tmp, base, merged=model if merged else None)
        else:
            save_model(model, tok, tmp)
        atomic_write_json(tmp / "train_log.json", log)
        write_run_file(tmp, output_name(d), "unlearn")


def unlearn_model(method: str, model: str, forget: str = "forget10", benchmark: str = "embedded",
                  data: str | None = None, out: str | None = None, overrides: dict | None = None,
                  force: bool = False, say: Say = lambda s: None) -> Unlearned:
    spec, retain = resolve(method)
    params = make_params(spec, overrides or {}, retain)
    check_split_name(forget, ("forget01", "forget05", "forget10"))
    if data is None:
        from unlearnkit.config import BuildConfig
        from unlearnkit.data import fictitious

        data = str(dist.main_first(lambda: fictitious.build(BuildConfig().data))) if benchmark == "embedded" else HUB_NAME
    src = QASource(data)
    forget_recs, retain_recs = src.split(forget), src.split(RETAIN_OF[forget])
    inputs = {"method": method, "params": params.model_dump(), "model": model_id(model),
              "data": records_hash([forget_recs, retain_recs, src.refusals]), "forget": forget}
    d = Path(out).expanduser() if out else home() / "runs" / (
        f"unlearn-{method.replace('+', '_plus_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    prepare_output_dir(d, "unlearn", force)
    log = read_json_or_none(d / "train_log.json")
    if log and log.get("hash") == content_hash(inputs) and is_saved_model(d):
        say(f"{d} already holds θ_u for exactly this method, model and data: nothing to do (--force redoes it)")
        return Unlearned(d, float(log.get("wall_time", 0.0)), len(log.get("steps", [])), reused=True)
    if d.exists() and any(d.iterdir()):
        raise UnlearnkitError(f"--out {str(d)!r} holds θ_u of another configuration (method, hyperparameters, model "
                              "or data differ): give another --out, or --force to replace it (the old one is moved "
                              "aside)")
    m, tok = load_model(model, device=pick_device())
    tlog = unlearn(m, tok, spec, params, forget_recs, retain_recs, src.refusals)
    log = {"method": spec.name, "forget": forget, "model": model, "params": params.model_dump(),
           "hash": content_hash(inputs), **tlog.to_dict()}
    merged = bool(params.peft and params.peft.save_merged)
    dist.on_main(lambda: _save_output(d, m, tok, log, tlog.adapter, model, merged))
    run = Run.open_at(d, "unlearn")  # no run config.json: that name holds θ_u's model config (train_log.json has it)
    run.write(EntryInfo(name="theta_u", hash=content_hash(inputs), method=spec.name, seed=params.seed,
                        params_hash=content_hash(params.model_dump()), model=model_id(str(d)), inputs=inputs),
              {"unlearn_seconds": Metric(tlog.wall_time, None, False), "steps": Metric(len(tlog.steps))},
              provenance=provenance({"method": method, "model": model, "forget": forget, "data": data},
                                    seed=params.seed, params=params.model_dump()))
    return Unlearned(d, tlog.wall_time, len(tlog.steps))
