"""``unlearnkit gradient``, ``squeeze`` and ``layers``: the analyses of docs/analysis.md as runs.

Each writes an analysis run (``$UNLEARNKIT_HOME/runs/<kind>-<time>``, or ``--out DIR``) through the
results layer: the curves and plots as run files, and one entry per method with summary numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run

Say = Callable[[str], None]


@dataclass
class BenchArgs:
    """Where the models and data come from (the ``--model/--benchmark/--data/--forget/--reference`` flags)."""

    benchmark: str = "embedded"
    data: str | None = None
    model: str | None = None
    reference: str | None = None
    forget: str = "forget10"


@dataclass
class Benchmark:
    data: str
    original: str
    reference: str | None
    forget: str
    source: QASource


def resolve_benchmark(args: BenchArgs, need_reference: bool, say: Say = lambda s: None) -> Benchmark:
    """Embedded: build (or reuse) data, θ_o and θ_r; TOFU: the paths given."""
    check_split_name(args.forget, ("forget01", "forget05", "forget10"))
    data, model, reference = args.data, args.model, args.reference
    if args.benchmark == "embedded" and (model is None or data is None or (need_reference and reference is None)):
        from unlearnkit.config import BuildConfig
        from unlearnkit.models.build import build_models

        ms = build_models(BuildConfig(forget_splits=[args.forget]), say=say)
        data = data or str(ms.data_dir)
        model = model or str(ms.original)
        reference = reference or str(ms.reference_for(args.forget))
    if model is None:
        raise UnlearnkitError("--model PATH (θ_o) is needed with --benchmark tofu")
    if need_reference and reference is None:
        raise UnlearnkitError(f"FQ needs the reference model retrained without {args.forget} "
                              f"(on {RETAIN_OF[args.forget]}): pass --reference PATH")
    data = data or HUB_NAME
    return Benchmark(data=data, original=model, reference=reference, forget=args.forget, source=QASource(data))


def analysis_run(kind: str, out: str | None, config: dict) -> Run:
    if out:
        return Run.open_at(out, kind, config)
    return Run.open(kind, f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{content_hash(config, 6)}", config)


def positive(name: str, v: int) -> int:
    if v <= 0:
        raise UnlearnkitError(f"{name} must be a positive number of optimiser steps (s ≥ 1), got {v}")
    return v


# ---------------------------------------------------------------------------------------------
# gradient and squeeze: unlearning runs with a probe attached


def run_tracked(kind: str, methods: list[str], make_probe: Callable[[], Any], report, table, summary,
                bench_args: BenchArgs, overrides: dict, out: str | None, say: Say, **meta) -> tuple[Run, str, list, bool]:
    """Unlearn with each method under a probe, write the report (data + plots) and one entry per method.
    Returns (run, table, files, whether a method failed)."""
    from unlearnkit.analysis.track import track_methods

    if not methods:
        raise UnlearnkitError("name at least one method: --method ga (repeat it or use commas: --method ga,npo)")
    if len(set(methods)) != len(methods):
        raise UnlearnkitError(f"a method is listed twice in --method {','.join(methods)}")
    bench = resolve_benchmark(bench_args, False, say)
    config = {"command": kind, "methods": methods, "model": bench.original, "data": bench.data,
              "forget": bench.forget, "overrides": overrides, **meta}
    res = track_methods(methods, make_probe, bench, overrides, say)
    run = analysis_run(kind, out, config)
    files = report(res, run, provenance(config))
    for m, r in res.items():
        info = EntryInfo(name=f"{m.replace('+', '_plus_')}", hash=content_hash([config, m]), method=m)
        if r["error"]:
            run.write_failed(info, r["error"])
        else:
            run.write(info, {k: Metric(v) for k, v in summary(r).items()}, provenance=provenance(config),
                      extra={"params": r["params"]})
    text = table(res)
    run.write_summary([], text)
    return run, text, files, any(r["error"] for r in res.values())


# ---------------------------------------------------------------------------------------------
# layers: the patching sweep (and CRU on validation/test halves)


@dataclass
class LayersOptions:
    bench: BenchArgs
    unlearned: str | None = None
    method: str | None = None
    overrides: dict | None = None
    layers: list[int] | None = None
    cru: bool = False
    k: int | None = None
    max_new_tokens: int = 200
    out: str | None = None
    dtype: str = "auto"  # every evaluated model's precision (resolve_dtype)

    def check(self) -> None:
        if self.overrides and not self.method:
            raise UnlearnkitError("key=value hyperparameters go with --method (θ_u made here); --unlearned is a "
                                  "saved model")
        if self.max_new_tokens <= 0:
            raise UnlearnkitError(f"--max-new-tokens must be ≥ 1, got {self.max_new_tokens}")
        if self.k is not None and not self.cru:
            raise UnlearnkitError("--k is a CRU option: add --cru")
        if not (self.unlearned or self.method):
            raise UnlearnkitError("give θ_u with --unlearned PATH, or a method to make it with --method NAME")


def run_layers(opt: LayersOptions, say: Say) -> tuple[Run, dict, list]:
    """θ_o with one group from θ_u at a time: MU, FQ, forget ES per group; optionally CRU."""
    from unlearnkit.analysis.layers import write_layer_outputs
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.lm import load_model, pick_device, resolve_dtype
    from unlearnkit.models.patching import check_same_architecture, transformer_layers

    opt.check()
    bench = resolve_benchmark(opt.bench, True, say)
    device = pick_device()
    original, tok = load_model(bench.original, device=device)
    from unlearnkit.models.layers import locate_layers

    lm = locate_layers(original)
    units = transformer_layers(lm, opt.layers)  # validates indices before any work
    if opt.unlearned:
        unlearned, made = load_model(opt.unlearned, device=device)[0], {"unlearned": opt.unlearned}
    else:
        unlearned, made = _make_unlearned(opt.method, opt.overrides or {}, bench, device, say)
    check_same_architecture(original, unlearned)
    cfg = EvalConfig(forget=bench.forget, max_new_tokens=opt.max_new_tokens)
    dtype = resolve_dtype(opt.dtype, bench.original)
    reference = load_model(bench.reference, device=device, dtype=dtype)[0]
    original, unlearned = original.to(dtype), unlearned.to(dtype)  # one precision for every evaluated model (θ_u was
    # trained in float32 or float64 weights, so θ_o and θ_u are loaded in that dtype and cast here)
    config = {"command": "layers", "model": bench.original, "data": bench.data, "forget": bench.forget,
              "reference": bench.reference, **made, "max_new_tokens": opt.max_new_tokens, "dtype": str(dtype)}
    doc = _sweep(original, unlearned, reference, tok, bench, cfg, units if opt.layers else None, lm, say)
    doc = {"meta": provenance(config), **doc}
    if opt.cru:
        doc["cru"] = _cru_halves(original, unlearned, reference, tok, bench, cfg, units if opt.layers else None,
                                 opt.k, lm, say)
    run = analysis_run("layers", opt.out, config)
    files = write_layer_outputs(doc, run)
    rows = {"theta_o": doc["baselines"]["original"], "theta_u": doc["baselines"]["unlearned"],
            **{f"patch_{u}": v for u, v in doc["sweep"].items()}}
    for name, vals in rows.items():
        run.write(EntryInfo(name=name, hash=content_hash([config, name]), method=name),
                  {k: Metric(v) for k, v in vals.items()}, provenance=doc["meta"])
    return run, doc, files


def _sweep(original, unlearned, reference, tok, bench: Benchmark, cfg, units, lm, say: Say) -> dict:
    from unlearnkit.methods.llm.cru import evaluate_in_memory, layer_sweep, reference_in_memory, summarise
    from unlearnkit.models.patching import relative_change, transformer_layers

    ref_res = reference_in_memory(reference, tok, bench.source, cfg)
    base = {"original": summarise(evaluate_in_memory(original, tok, bench.source, cfg, ref_res)),
            "unlearned": summarise(evaluate_in_memory(unlearned, tok, bench.source, cfg, ref_res))}
    groups = ["embedding", *transformer_layers(lm), "head"] if units is None else units
    say(f"patching sweep over {len(groups)} groups (θ_o: MU {base['original']['mu']:.4f}, "
        f"θ_u: MU {base['unlearned']['mu']:.4f})")
    sweep = layer_sweep(original, unlearned, tok, bench.source, cfg, ref_res, groups, say)
    return {"layer_path": lm.path, "n_layers": lm.n_layers, "tied_embeddings": lm.tied_embeddings,
            "baselines": base, "sweep": sweep, "relative_change": relative_change(original, unlearned, lm)}


def _cru_halves(original, unlearned, reference, tok, bench: Benchmark, cfg, units, k, lm, say: Say) -> dict:
    """CRU selection on the validation half; θ_o, θ_u and the CRU model on the test half."""
    from unlearnkit.data.halves import HalfSource
    from unlearnkit.methods.llm.cru import cru, evaluate_in_memory, reference_in_memory, summarise
    from unlearnkit.models.patching import patched

    val, test = HalfSource(bench.source, 0), HalfSource(bench.source, 1)
    ref_val, ref_test = reference_in_memory(reference, tok, val, cfg), reference_in_memory(reference, tok, test, cfg)
    groups, report = cru(original, unlearned, tok, val, cfg, ref_val, units, k, say)
    with patched(original, unlearned, groups, lm) as m:
        cru_test = summarise(evaluate_in_memory(m, tok, test, cfg, ref_test))
    report["test"] = {"original": summarise(evaluate_in_memory(original, tok, test, cfg, ref_test)),
                      "unlearned": summarise(evaluate_in_memory(unlearned, tok, test, cfg, ref_test)),
                      "cru": cru_test}
    return report


def _make_unlearned(method: str, overrides: dict, bench: Benchmark, device, say: Say):
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model

    spec, retain = resolve(method)
    params = make_params(spec, overrides, retain)
    model, tok = load_model(bench.original, device=device)
    say(f"unlearning θ_o with {method}")
    log = unlearn(model, tok, spec, params, bench.source.split(bench.forget),
                  bench.source.split(RETAIN_OF[bench.forget]), bench.source.refusals, desc=method)
    return model, {"method": method, "params": params.model_dump(), "unlearn_seconds": round(log.wall_time, 2)}
