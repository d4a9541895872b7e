"""``unlearnkit run continual=k``: the glue between the language-model run and continual unlearning
(:mod:`unlearnkit.analysis.continual`).

Stage j < k of entry E is an entry of its own, ``E__stage<j>`` (its θ in ``models/E__stage<j>``
when models are saved), so a killed run resumes after the last finished stage. The last stage is
E itself; E's results hold the whole curve (stage 0 = θ_o … stage k = θ_u), and the run gets
``continual.json`` / ``.csv`` / ``.png``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unlearnkit.analysis.continual import STAGE_KEYS, continual_unlearn, curves_rows, plot_curves, stage_summary
from unlearnkit.io import content_hash
from unlearnkit.models.lm import model_id
from unlearnkit.results.eval import load_eval, save_model_entry, write_eval
from unlearnkit.results.plots import write_csv
from unlearnkit.results.store import EntryInfo, Run

if TYPE_CHECKING:
    from unlearnkit.recipes.lm.context import MethodJob, RunContext


def requests_of(bench, k: int) -> list[list[dict]]:
    """The task's k forget requests (TOFU: contiguous groups of whole subjects)."""
    return bench.task.requests(bench.prepared, k)


def stage_entry(info: EntryInfo, j: int) -> EntryInfo:
    inputs = {**(info.inputs or {}), "stage": j}
    return EntryInfo(name=f"{info.name}__stage{j}", hash=content_hash(inputs), method=info.method, seed=info.seed,
                     params_hash=info.params_hash, group=f"continual:{info.name}", inputs=inputs)


def _resume_point(run: Run, bench, info: EntryInfo, k: int, say):
    """(model, tokenizer, stage) after the last finished stage with a saved model, or (None, None, 0)."""
    for j in range(k - 1, 0, -1):
        st = stage_entry(info, j)
        if run.status(st) == "done" and (run.layout.model(st.name) / "config.json").is_file():
            say(f"{info.name}: resuming continual unlearning after stage {j}")
            model, tok = bench.load(run.layout.model(st.name), for_eval=False)
            return model, tok, j
    return None, None, 0


def continual_model(ctx: RunContext, job: MethodJob, model, tok):
    """Stages 1..k−1 (each saved and evaluated) and the last stage; returns (θ after k, log)."""
    run, bench, cfg, say, info = ctx.run, ctx.bench, ctx.cfg, ctx.say, job.info
    requests = requests_of(bench, cfg.continual)
    k = len(requests)
    resumed, rtok, start = _resume_point(run, bench, info, k, say)
    if resumed is not None:
        model, tok = resumed, rtok
    say(f"{info.name}: continual unlearning with {job.spec.name}: {k} requests of "
        f"{', '.join(str(len(r)) for r in requests)} records")
    stage_logs: list[dict] = []

    def after_stage(j: int, log) -> None:
        stage_logs.append({"stage": j, "n_records": len(requests[j - 1]), **log.to_dict()})
        run.write_log(f"{info.name}__stage{j}", stage_logs[-1])
        if j == k:
            return  # the last stage is the entry itself: saved and evaluated by the run
        st = stage_entry(info, j)
        save_model_entry(run, st.name, model, tok, cfg.save_models)
        mid = model_id(str(run.layout.model(st.name))) if cfg.save_models else None
        res = bench.task.compare(bench.evaluate(bench.for_eval(model, copy=True), tok, cfg, model_id=mid),
                                 ctx.refs["retrain"])
        write_eval(run, st, res, {"stage": j, "of": k})
        say(f"{info.name}: stage {j}/{k} ({bench.task.headline(res)})")

    continual_unlearn(model, tok, job.spec, job.params, requests, bench.retain_records, bench.refusals, after_stage,
                      start=start, desc=info.name)
    steps = [{**st, "stage": s["stage"]} for s in stage_logs for st in s["steps"]]
    return model, {"continual": k, "resumed_after_stage": start, "stages": stage_logs, "steps": steps,
                   "wall_time": sum(s["wall_time"] for s in stage_logs)}


def finish_entry(ctx: RunContext, info: EntryInfo, final_res) -> dict:
    """The entry's curve: stage 0 = θ_o, stages 1..k−1 from their entries, stage k = ``final_res``."""
    run, bench, cfg = ctx.run, ctx.bench, ctx.cfg
    requests = requests_of(bench, cfg.continual)
    k = len(requests)
    if cfg.task == "tofu":  # forget ES split into the requests done and still to come
        keys = STAGE_KEYS
        req_q = [{r["question"] for r in req} for req in requests]
        fq = [r["question"] for r in bench.source.split(f"{cfg.forget}_perturbed", fields=("question",))]
    else:
        keys, req_q, fq = bench.task.stage_keys(), None, None
    curve = [stage_summary(ctx.refs["original"], 0, fq, req_q, keys)]
    for j in range(1, k):
        curve.append(stage_summary(load_eval(run, stage_entry(info, j).name), j, fq, req_q, keys))
    curve.append(stage_summary(final_res, k, fq, req_q, keys))
    return {"stages": k, "requests": [len(r) for r in requests], "curve": curve}


def write_run_curves(run: Run, cfg, methods: dict) -> list:
    """continual.json / .csv / .png for the whole run (one curve per method entry)."""
    curves = {}
    for name in run.layout.entries():
        rec = run.record(name)
        if rec is not None and "continual" in rec.extra:
            curves[name] = rec.extra["continual"]["curve"]
    if not curves:
        return []
    files = [run.write_json("continual.json", {"stages": cfg.continual, "curves": curves}),
             write_csv(run.layout.file("continual.csv"), curves_rows(curves))]
    files.append(plot_curves(curves, cfg.continual, run.layout.file("continual.png")))
    return files
