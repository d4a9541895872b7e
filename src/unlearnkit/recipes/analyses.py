"""``unlearnkit gradient``, ``squeeze`` and ``layers``: the analyses of docs/analysis.md as runs.

Each writes an analysis run (``$UNLEARNKIT_HOME/runs/<kind>-<time>``, or ``--out DIR``) through the
results layer: the curves and plots as run files, and one entry per method with summary numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unlearnkit.data.tofu import FORGET_SPLITS, HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run

if TYPE_CHECKING:
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.layers import LayerMap

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
    check_split_name(args.forget, FORGET_SPLITS)
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


def run_tracked(kind: str, methods: list[str], make_probe: Callable[[], Any], report, table, *, summary,
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


def run_gradient(methods: list[str], bench_args: BenchArgs, overrides: dict, *, every: int, n_retain: int | None,
                 pointwise: bool, out: str | None, say: Say) -> tuple[Run, str, list, bool]:
    """``unlearnkit gradient``: G-effect curves every ``every`` steps (:func:`run_tracked`)."""
    from unlearnkit.analysis.g_effect import GEffectProbe
    from unlearnkit.analysis.track import gradient_report, gradient_summary, gradient_table

    every = positive("--every", every)
    if n_retain is not None and n_retain <= 0:
        raise UnlearnkitError(f"--n-retain must be ≥ 1, got {n_retain}")
    return run_tracked("gradient", methods, lambda: GEffectProbe(every=every, n_retain=n_retain, pointwise=pointwise),
                       gradient_report, gradient_table, summary=gradient_summary, bench_args=bench_args,
                       overrides=overrides, out=out, say=say, every=every, pointwise=pointwise)


def run_squeeze(methods: list[str], bench_args: BenchArgs, overrides: dict, *, every: int, samples: int,
                temperature: float, max_new_tokens: int, seed: int, judge: str | None, out: str | None,
                say: Say) -> tuple[Run, str, list, bool]:
    """``unlearnkit squeeze``: squeezing-effect curves every ``every`` steps (:func:`run_tracked`)."""
    from unlearnkit.analysis.squeezing import SqueezeProbe
    from unlearnkit.analysis.track import squeeze_report, squeeze_summary, squeeze_table

    every = positive("--every", every)
    if samples <= 0 or temperature <= 0 or max_new_tokens <= 0:
        raise UnlearnkitError("--samples, --temperature and --max-new-tokens must be positive")
    return run_tracked(
        "squeeze", methods,
        lambda: SqueezeProbe(every=every, n_samples=samples, temperature=temperature, max_new_tokens=max_new_tokens,
                             seed=seed),
        lambda res, run, meta: squeeze_report(res, run, meta, judge=judge), squeeze_table, summary=squeeze_summary,
        bench_args=bench_args, overrides=overrides, out=out, say=say, every=every, samples=samples,
        temperature=temperature)


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
    pm = _Patching(original, unlearned, reference, tok, bench, cfg, lm)
    doc = {"meta": provenance(config), **_sweep(pm, units if opt.layers else None, say)}
    if opt.cru:
        doc["cru"] = _cru_halves(pm, units if opt.layers else None, opt.k, say)
    run, files = _write_layers_run(doc, config, opt.out)
    return run, doc, files


def _write_layers_run(doc: dict, config: dict, out: str | None) -> tuple[Run, list]:
    """The layers run: its files (curves, plots) and one entry per evaluated model (θ_o, θ_u, each patch)."""
    from unlearnkit.analysis.layers import write_layer_outputs

    run = analysis_run("layers", out, config)
    files = write_layer_outputs(doc, run)
    rows = {"theta_o": doc["baselines"]["original"], "theta_u": doc["baselines"]["unlearned"],
            **{f"patch_{u}": v for u, v in doc["sweep"].items()}}
    for name, vals in rows.items():
        run.write(EntryInfo(name=name, hash=content_hash([config, name]), method=name),
                  {k: Metric(v) for k, v in vals.items()}, provenance=doc["meta"])
    return run, files


@dataclass
class _Patching:
    """The models of the layers analysis (θ_o, θ_u, θ_r in one dtype), their tokenizer, the benchmark, the evaluation
    settings and θ_o's located layers."""

    original: Any
    unlearned: Any
    reference: Any
    tok: Any
    bench: Benchmark
    cfg: EvalConfig
    lm: LayerMap


def _sweep(pm: _Patching, units, say: Say) -> dict:
    from unlearnkit.methods.llm.cru import evaluate_in_memory, layer_sweep, reference_in_memory, summarise
    from unlearnkit.models.patching import relative_change, transformer_layers

    original, unlearned, tok, bench, cfg, lm = pm.original, pm.unlearned, pm.tok, pm.bench, pm.cfg, pm.lm

    ref_res = reference_in_memory(pm.reference, tok, bench.source, cfg)
    base = {"original": summarise(evaluate_in_memory(original, tok, bench.source, cfg, ref_res)),
            "unlearned": summarise(evaluate_in_memory(unlearned, tok, bench.source, cfg, ref_res))}
    groups = ["embedding", *transformer_layers(lm), "head"] if units is None else units
    say(f"patching sweep over {len(groups)} groups (θ_o: MU {base['original']['mu']:.4f}, "
        f"θ_u: MU {base['unlearned']['mu']:.4f})")
    sweep = layer_sweep(original, unlearned, tok, bench.source, cfg, ref_res, groups, say)
    return {"layer_path": lm.path, "n_layers": lm.n_layers, "tied_embeddings": lm.tied_embeddings,
            "baselines": base, "sweep": sweep, "relative_change": relative_change(original, unlearned, lm)}


def _cru_halves(pm: _Patching, units, k, say: Say) -> dict:
    """CRU selection on the validation half; θ_o, θ_u and the CRU model on the test half."""
    from unlearnkit.data.halves import HalfSource
    from unlearnkit.methods.llm.cru import cru, evaluate_in_memory, reference_in_memory, summarise
    from unlearnkit.models.patching import patched

    original, unlearned, reference, tok, bench, cfg = pm.original, pm.unlearned, pm.reference, pm.tok, pm.bench, pm.cfg

    val, test = HalfSource(bench.source, 0), HalfSource(bench.source, 1)
    ref_val, ref_test = reference_in_memory(reference, tok, val, cfg), reference_in_memory(reference, tok, test, cfg)
    groups, report = cru(original, unlearned, tok, val, cfg, ref_val, units, k, say)
    with patched(original, unlearned, groups, pm.lm) as m:
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
