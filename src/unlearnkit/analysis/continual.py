"""Continual unlearning (SPEC §4): k forget requests applied one after another.

The forget split is cut into k requests by subject (contiguous runs of subjects, sizes as equal
as possible; see :func:`forget_requests`). Stage j unlearns request j from the output of stage
j − 1 with the method's hyperparameters unchanged (same learning rate, epochs over *that*
request, seed); the retain data are the same D_r at every stage (``retainXX`` never contains
any request). After every stage the model is evaluated on the full benchmark against θ_r
(retrained without the whole forget split), and forget ES is also split into the requests
already processed ("forgotten so far") and those still to come.

``unlearnkit run continual=k`` writes per entry ``results/<entry>/stages/<j>/results.json``
(each stage resumable), ``results/<entry>/continual.json`` and, for the run,
``continual.json`` / ``continual.csv`` / ``continual.png`` with the curves of cumulative decline.
With k = 1 the run is the normal run (same directory, same results).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.errors import UnlearnkitError

STAGE_KEYS = {"mu": "mu", "fq_log_p": "fq_log_p", "forget_es_exact": "forget.es_exact",
              "forget_es_perturb": "forget.es_perturb", "retain_es_exact": "retain.es_exact",
              "retain_prob": "retain.prob", "ra_rouge": "ra.rouge", "wf_rouge": "wf.rouge", "privleak": "privleak"}


def forget_requests(records: list[dict], k: int, subject_names: list[str] | None) -> list[list[int]]:
    """Record indices of k requests: contiguous groups of whole subjects, as equal as possible."""
    from unlearnkit.analysis.layers import subject_blocks

    if k < 1:
        raise UnlearnkitError(f"continual must be ≥ 1 (the number of forget requests), got {k}")
    blocks = subject_blocks(records, subject_names)
    if k > len(blocks):
        raise UnlearnkitError(f"continual={k} needs at least {k} subjects in the forget split, which has {len(blocks)}: "
                              f"use continual ≤ {len(blocks)} or a larger forget split")
    cuts = np.array_split(np.arange(len(blocks)), k)
    return [[i for b in c for i in blocks[b]] for c in cuts]


def stage_summary(res, stage: int, forget_questions: list[str] | None = None,
                  request_questions: list[set[str]] | None = None) -> dict[str, Any]:
    """Aggregates of one stage plus forget ES-exact on requests done (≤ stage) and to come (> stage)."""
    out: dict[str, Any] = {"stage": stage}
    out.update({k: res.get(v) for k, v in STAGE_KEYS.items()})
    if forget_questions is not None and request_questions is not None:
        es = res.per_sample["forget"]["es_exact"]
        done = [e for q, e in zip(forget_questions, es, strict=True)
                if any(q in request_questions[j] for j in range(stage))]
        todo = [e for q, e in zip(forget_questions, es, strict=True)
                if any(q in request_questions[j] for j in range(stage, len(request_questions)))]
        out["forget_es_done"] = float(np.mean(done)) if done else None
        out["forget_es_to_come"] = float(np.mean(todo)) if todo else None
    return out


def write_run_outputs(run_dir: Path, curves: dict[str, list[dict]], k: int) -> list[Path]:
    """continual.json / .csv / .png for the whole run (one curve per method entry)."""
    from unlearnkit.analysis.plots import pyplot, save_figure, write_csv
    from unlearnkit.io import atomic_write_json

    atomic_write_json(run_dir / "continual.json", {"stages": k, "curves": curves})
    rows = [{"entry": e, **s} for e, ss in curves.items() for s in ss]
    files = [run_dir / "continual.json", write_csv(run_dir / "continual.csv", rows)]
    plt = pyplot()
    panels = (("mu", "MU ↑"), ("retain_es_exact", "retain ES-exact ↑"), ("forget_es_exact", "forget ES-exact (all) ↓"),
              ("forget_es_done", "forget ES-exact, requests done ↓"), ("fq_log_p", "FQ (ln p) vs θ_r ↑"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for e, ss in curves.items():
            xs = [s["stage"] for s in ss if s.get(key) is not None]
            ax.plot(xs, [s[key] for s in ss if s.get(key) is not None], marker="o", ms=3, label=e)
        ax.set_xlabel("stage (0 = θ_o)")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(k + 1))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Continual unlearning: {k} forget requests applied one after another")
    files.append(save_figure(fig, run_dir / "continual.png"))
    return files


def continual_unlearn(model, tok, spec, params, requests: list[list[dict]], retain_records: list[dict],
                      refusals: list[str] | None, after_stage: Callable[[int, Any], None] | None = None,
                      start: int = 0, desc: str = "") -> list:
    """Apply the requests start..k−1 in order to ``model`` (in place); ``after_stage(j, log)`` after each
    (j is 1-based). Returns the training logs. With one request this is exactly ``unlearn``."""
    from unlearnkit.engine.unlearn import unlearn

    logs = []
    for j in range(start, len(requests)):
        log = unlearn(model, tok, spec, params, requests[j], retain_records, refusals, desc=f"{desc} stage {j + 1}")
        logs.append(log)
        if after_stage is not None:
            after_stage(j + 1, log)
    return logs


# ---------------------------------------------------------------------------------------------
# `unlearnkit run continual=k`: the glue to the run directory (called from unlearnkit.run)


def _requests(ctx) -> list[list[dict]]:
    from unlearnkit.analysis.layers import _subject_names

    names = _subject_names(ctx.src) if hasattr(ctx.src, "path") else None
    idx = forget_requests(ctx.forget_records, ctx.run.cfg.continual, names)
    return [[ctx.forget_records[i] for i in r] for r in idx]


def _stage_dir(ctx, entry: str, j: int) -> Path:
    return ctx.run.result_dir(entry) / "stages" / str(j)


def _stage_model_dir(ctx, entry: str, j: int) -> Path:
    return ctx.run.dir / "models" / f"{entry}__stage{j}"


def continual_model(ctx, entry: str, spec, params, model, tok):
    """Stages 1..k−1 (each saved and evaluated, resumable) and the last stage; returns (θ after k, log)."""
    from unlearnkit.engine.evaluate import compare_to_reference, evaluate, save_result
    from unlearnkit.engine.lm_eval import model_id
    from unlearnkit.io import atomic_dir, atomic_write_json
    from unlearnkit.models.lm import load_model, save_model

    run, say = ctx.run, ctx.say
    requests = _requests(ctx)
    k = len(requests)
    start = 0
    for j in range(k - 1, 0, -1):  # resume from the last finished stage with a saved model
        if (_stage_dir(ctx, entry, j) / "results.json").is_file() and (_stage_model_dir(ctx, entry, j) / "config.json").is_file():
            model, tok = load_model(_stage_model_dir(ctx, entry, j), device=ctx.device)
            start = j
            say(f"{entry}: resuming continual unlearning after stage {j}")
            break
    say(f"{entry}: continual unlearning with {spec.name}: {k} requests of "
        f"{', '.join(str(len(r)) for r in requests)} records")
    stage_logs = []

    def after_stage(j: int, log) -> None:
        stage_logs.append({"stage": j, "n_records": len(requests[j - 1]), **log.to_dict()})
        atomic_write_json(ctx.run.dir / "logs" / f"{entry}__stage{j}.json", stage_logs[-1])
        if j == k:
            return  # the last stage is the entry itself: saved and evaluated by the run
        mid = None
        if run.cfg.save_models:
            with atomic_dir(_stage_model_dir(ctx, entry, j)) as tmp:
                save_model(model, tok, tmp)
            mid = model_id(str(_stage_model_dir(ctx, entry, j)))
        res = evaluate(model, tok, ctx.src, run.cfg.eval, model_id=mid)
        compare_to_reference(res, ctx.ref_res)
        save_result(res, _stage_dir(ctx, entry, j), {"stage": j, "of": k})
        say(f"{entry}: stage {j}/{k} (forget ES-exact {res.value('forget.es_exact'):.3f}, MU {res.value('mu'):.3f})")

    continual_unlearn(model, tok, spec, params, requests, ctx.retain_records, ctx.src.refusals, after_stage,
                      start=start, desc=entry)
    steps = [{**st, "stage": s["stage"]} for s in stage_logs for st in s["steps"]]
    return model, {"continual": k, "resumed_after_stage": start, "stages": stage_logs, "steps": steps,
                   "wall_time": sum(s["wall_time"] for s in stage_logs)}


def finish_entry(ctx, entry: str, final_res) -> None:
    """Write the last stage and the entry's continual.json (stage 0 = θ_o, …, stage k = θ_u)."""
    from unlearnkit.engine.evaluate import load_result, save_result
    from unlearnkit.io import atomic_write_json

    requests = _requests(ctx)
    k = len(requests)
    save_result(final_res, _stage_dir(ctx, entry, k), {"stage": k, "of": k})
    req_q = [{r["question"] for r in req} for req in requests]
    fq = [r["question"] for r in ctx.src.split(f"{ctx.run.cfg.forget}_perturbed", fields=("question",))]
    curve = [stage_summary(load_result(ctx.run.result_dir("original")), 0, fq, req_q)]
    for j in range(1, k + 1):
        curve.append(stage_summary(load_result(_stage_dir(ctx, entry, j)), j, fq, req_q))
    atomic_write_json(ctx.run.result_dir(entry) / "continual.json",
                      {"stages": k, "requests": [len(r) for r in requests], "curve": curve})


def write_run_curves(run) -> list[Path]:
    from unlearnkit.io import read_json

    curves = {}
    for p in sorted((run.dir / "results").glob("*/continual.json")):
        curves[p.parent.name] = read_json(p)["curve"]
    if not curves:
        return []
    return write_run_outputs(run.dir, curves, run.cfg.continual)
