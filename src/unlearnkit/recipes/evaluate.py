"""``unlearnkit eval``: evaluate one model (every SPEC §2.2 metric), compared to the reference θ_r.

    load data (embedded build, a TOFU-format directory, or the hub) → evaluate the model (cached
    passes) → evaluate θ_r → FQ and PrivLeak against it → an ``eval`` run with one entry, ``model``

The output is a run (``$UNLEARNKIT_HOME/runs/eval-<time>-<hash>`` or ``--out DIR``); rerunning into
the same ``--out`` reuses the finished evaluation when nothing it depends on changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.evaluate import ENGINE_VERSION, EvalConfig, EvalResult, compare_to_reference, evaluate
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.models.lm import load_model, model_id, pick_device, resolve_dtype
from unlearnkit.results.eval import load_eval, write_eval
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Run

Say = Callable[[str], None]


def evaluate_path(path: str, source: QASource, cfg: EvalConfig, dtype: torch.dtype, say: Say = lambda s: None) -> EvalResult:
    model, tok = load_model(path, device=pick_device(), dtype=dtype)
    t0 = time.perf_counter()
    res = evaluate(model, tok, source, cfg, model_id=model_id(path) + f"-{str(dtype).split('.')[-1]}")
    say(f"evaluated {path} ({time.perf_counter() - t0:.1f}s)")
    del model
    return res


def _inputs(model: str, benchmark: str, data: str | None, reference: str | None, no_reference: bool,
            cfg: EvalConfig, say: Say) -> tuple[QASource, str | None]:
    check_split_name(cfg.forget, ("forget01", "forget05", "forget10"))
    if reference and no_reference:
        raise UnlearnkitError("--reference and --no-reference contradict each other: give one")
    if benchmark == "embedded" and data is None:
        from unlearnkit.config import BuildConfig
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
    return QASource(data or HUB_NAME), reference


def evaluate_paths(model: str, benchmark: str, data: str | None, reference: str | None, no_reference: bool,
                   cfg: EvalConfig, out: str | None = None, dtype: str = "auto", force: bool = False,
                   say: Say = lambda s: None) -> tuple[EvalResult, Run]:
    """Evaluate ``model`` (and θ_r for FQ/PrivLeak) into an ``eval`` run; returns (result, run)."""
    source, reference = _inputs(model, benchmark, data, reference, no_reference, cfg, say)
    dt = resolve_dtype(dtype)
    config = {"model": model, "reference": reference, "data": source.location, "benchmark": benchmark,
              "eval": cfg.model_dump(), "dtype": str(dt)}
    inputs = {"model": model_id(model), "reference": model_id(reference) if reference else None,
              "data": source.location, "eval": cfg.model_dump(), "dtype": str(dt), "engine": ENGINE_VERSION}
    run = (Run.open_at(out, "eval", config, force) if out
           else Run.open("eval", f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{content_hash(inputs, 6)}", config))
    info = EntryInfo(name="model", hash=content_hash(inputs), method="eval", model=inputs["model"], inputs=inputs)
    with run.lock("model"):
        if run.status(info) == "done":
            say(f"evaluated earlier into {run.layout.root}: reusing it (--force recomputes)")
            return load_eval(run, "model"), run
        res = evaluate_path(model, source, cfg, dt, say)
        if reference is not None:
            compare_to_reference(res, evaluate_path(reference, source, cfg, dt, say))
        write_eval(run, info, res, provenance(cfg.model_dump(), model=model, reference=reference,
                                              data=source.location, benchmark=benchmark))
    return res, run
