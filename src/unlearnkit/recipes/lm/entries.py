"""One (method, seed) entry of a language-model run, from its hash to its written results.

Skip it when finished with the same hash (or failed, unless retried); else reuse a θ_u saved for exactly this hash
or make one (train, or a post-hoc method applied to its base's θ_u, or k continual stages), save it, evaluate it,
compare it to θ_r and write it. A loss that becomes NaN/inf records the entry as failed and the run goes on.
"""

from __future__ import annotations

import time

from unlearnkit.errors import NonFiniteLossError
from unlearnkit.io import content_hash, read_json_or_none
from unlearnkit.methods.llm.posthoc import PostHocContext, is_post_hoc
from unlearnkit.methods.unlearn import unlearn
from unlearnkit.models.lm import is_saved_model, model_fingerprint, model_id
from unlearnkit.recipes.lm.bench import LMBench, run_provenance
from unlearnkit.recipes.lm.config import RunConfig, base_of
from unlearnkit.recipes.lm.context import MethodJob, RunContext, Say
from unlearnkit.results.eval import save_model_entry, write_eval
from unlearnkit.results.layout import entry_name
from unlearnkit.results.store import EntryInfo, Run
from unlearnkit.results.tracking import tracking
from unlearnkit.tasks.training import TrainingEvaluator


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


def run_method_entry(ctx: RunContext, method: str, spec, params) -> bool:
    """Skip, or compute and write, one (method, seed) entry; True when it was computed."""
    run, say = ctx.run, ctx.say
    info = method_entry(ctx.bench, ctx.cfg, method, spec, params)
    with run.lock(info.name):
        status = run.status(info)
        if status == "done":
            say(f"{info.name}: finished earlier, skipped")
            return False
        if status == "failed" and not ctx.retry_failed:
            say(f"{info.name}: failed earlier ({run.failure(info.name)['error']}), skipped (--retry-failed reruns it)")
            return False
        if status == "changed":
            say(f"{info.name}: its inputs changed since it was computed ({run.changed_inputs(info)}), recomputing")
        compute_method_entry(ctx, MethodJob(info, spec, params))
        return True


def compute_method_entry(ctx: RunContext, job: MethodJob) -> None:
    """θ_u (reused when saved with the same hash) → save → evaluate → compare to θ_r → write."""
    run, bench, cfg, say = ctx.run, ctx.bench, ctx.cfg, ctx.say
    info, spec, params = job.info, job.spec, job.params
    model, tok, log = _reused_model(run, bench, info, say)
    if model is None:
        made = _made_and_saved(ctx, job)
        if made is None:
            return
        model, tok, log = made
    mid = model_id(str(run.layout.model(info.name))) if run.layout.model(info.name).is_dir() else None
    res = bench.task.compare(bench.evaluate(bench.for_eval(model), tok, cfg, model_id=mid), ctx.refs["retrain"])
    extra = {}
    if cfg.continual > 1 and not is_post_hoc(spec):
        from unlearnkit.recipes.continual import finish_entry

        extra["continual"] = finish_entry(ctx, info, res)
    if "report" in log:
        extra["post_hoc"] = log["report"]
    if "eval_curve" in log:
        extra["eval_curve"] = log["eval_curve"]
    write_eval(run, info.with_model(mid), res, run_provenance(cfg, bench, seed=params.seed, method=spec.name,
                                                              params=params.model_dump()),
               seconds=float(log["wall_time"]), extra=extra)
    say(f"{info.name}: evaluated ({bench.task.headline(res)})")


def _made_and_saved(ctx: RunContext, job: MethodJob):
    """(θ_u, tokenizer, log) made now and saved with its log; None when its loss became NaN/inf (recorded failed)."""
    run, info, params = ctx.run, job.info, job.params
    try:
        with tracking(ctx.cfg.tracker, run, info.name, {"method": job.spec.name, **params.model_dump()}) as tracker:
            model, tok, log = _make_model(ctx, job, tracker)
    except NonFiniteLossError as e:
        run.write_log(info.name, {"params": params.model_dump(), "hash": info.hash, "error": str(e)})
        run.write_failed(info, str(e))
        ctx.say(f"{info.name}: STOPPED — {e}. Log kept in {run.layout.log(info.name)}; continuing with the other "
                "methods")
        return None
    adapter = log.pop("adapter", None)
    fp = save_model_entry(run, info.name, model, tok, ctx.cfg.save_models, adapter=adapter, base=ctx.bench.original,
                          merged=bool(params.peft and params.peft.save_merged) if adapter is not None else False)
    run.write_log(info.name, {"method": job.spec.name, "params": params.model_dump(), "hash": info.hash,
                              "model_fingerprint": fp, **log})
    n_steps = len(log.get("steps", []))  # post-hoc entries log a report, not steps
    ctx.say(f"{info.name}: unlearned in {log['wall_time']:.1f}s" + (f" ({n_steps} steps)" if n_steps else ""))
    return model, tok, log


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


def _make_model(ctx: RunContext, job: MethodJob, tracker=None):
    bench, info, spec, params = ctx.bench, job.info, job.spec, job.params
    model, tok = bench.load(bench.original, for_eval=False)
    if is_post_hoc(spec):
        model, log = _post_hoc_model(ctx, job, model, tok)
    elif ctx.cfg.continual > 1:
        from unlearnkit.recipes.continual import continual_model

        model, log = continual_model(ctx, job, model, tok)
    else:
        ctx.say(f"{info.name}: unlearning with {spec.name} ({params.retain or spec.fn.default_retain} retain term)")
        ev = training_evaluator(ctx, info.name, tok, tracker)
        tlog = unlearn(model, tok, spec, params, bench.forget_records, bench.retain_records, bench.refusals,
                       desc=info.name, on_step=ev.on_step if ev else None, on_epoch=ev.on_epoch if ev else None)
        log = {**tlog.to_dict(), "adapter": tlog.adapter}
        if ev is not None:
            log["eval_curve"] = ev.finish(model)
            if ev.best is not None:
                ctx.say(f"{info.name}: selected step {ev.best['step']} ({log['eval_curve']['criterion']})")
    return model, tok, log


def training_evaluator(ctx: RunContext, entry: str, tok, tracker=None) -> TrainingEvaluator | None:
    """The probes of ``cfg.eval_every`` for one entry: curve written after each probe, metrics to the callback and
    to the entry's experiment tracker (as ``eval/<metric>`` at the probe's step)."""
    run, bench, cfg = ctx.run, ctx.bench, ctx.cfg
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


def _post_hoc_model(ctx: RunContext, job: MethodJob, original, tok):
    """θ_u from the base method (reusing the run's saved entry when its hash matches), then apply."""
    run, bench, cfg, say = ctx.run, ctx.bench, ctx.cfg, ctx.say
    info, spec, params = job.info, job.spec, job.params
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
