"""Run methods on θ_o with probes attached (G-effect, squeezing) and write curves + plots.

    for each method: load θ_o → unlearn(D_f, D_r, on_step=probe) → probe.records
    → the run's <name>.json (records, params, training log, provenance), <name>.csv, <name>*.png

and the report's sections (:mod:`unlearnkit.results.sections`) of ``g_effect.json`` and ``squeezing.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.data.tofu import RETAIN_OF
from unlearnkit.errors import NonFiniteLossError, UnlearnkitError
from unlearnkit.results import figures as F
from unlearnkit.results.plots import pyplot, save_figure, write_csv
from unlearnkit.results.sections import figure_section


def track_methods(methods: list[str], make_probe: Callable[[], Any], bench, overrides: dict[str, Any],
                  say: Callable[[str], None] = lambda s: None) -> dict[str, dict]:
    """Unlearn θ_o with each method, a fresh probe attached; returns per method its probe and log."""
    from unlearnkit.methods.llm.posthoc import is_post_hoc
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model, pick_device

    resolved = {}
    for m in methods:  # validate everything before training anything
        spec, retain = resolve(m)
        if is_post_hoc(spec):
            raise UnlearnkitError(f"{m!r} is post-hoc (it does not train): track its base method instead")
        resolved[m] = (spec, make_params(spec, overrides, retain))
    forget = bench.source.split(bench.forget)
    retain = bench.source.split(RETAIN_OF[bench.forget])
    out = {}
    for m, (spec, params) in resolved.items():
        model, tok = load_model(bench.original, device=pick_device())
        probe = make_probe()
        say(f"{m}: unlearning with the probe attached")
        try:
            log = unlearn(model, tok, spec, params, forget, retain, bench.source.refusals, desc=m, on_step=probe)
            log_d, error = log.to_dict(), None
        except NonFiniteLossError as e:  # keep what was measured up to the failure
            log_d, error = {"steps": []}, str(e)
            say(f"{m}: STOPPED — {e}; keeping the curves measured so far")
        out[m] = {"probe": probe, "params": params.model_dump(), "log": log_d, "error": error}
        del model
    return out


# ---------------------------------------------------------------------------------------------
# G-effect report


def gradient_report(results: dict[str, dict], run, meta: dict) -> list[Path]:
    from unlearnkit.analysis.g_effect import as_rows

    rows, point_rows, doc = [], [], {"meta": meta, "methods": {}}
    for m, r in results.items():
        p = r["probe"]
        rows += as_rows(m, p.records)
        for rec in p.records:
            for i, _ in enumerate((rec.get("pointwise") or {}).get("e_u", [])):
                point_rows.append({"method": m, "step": rec["step"], "sample": i,
                                   "e_u": rec["pointwise"]["e_u"][i], "e_r": rec["pointwise"]["e_r"][i]})
        doc["methods"][m] = {"params": r["params"], "groups": p.groups, "records": p.records, "error": r["error"],
                             "train_steps": r["log"]["steps"]}
    f = run.layout.file
    files = [run.write_json("g_effect.json", doc), write_csv(f("g_effect.csv"), rows)]
    if point_rows:
        files.append(write_csv(f("g_effect_pointwise.csv"), point_rows))
    files.append(_plot_g_totals(results, f("g_effect.png")))
    files.append(_plot_g_groups(results, f("g_effect_groups.png")))
    if point_rows:
        files.append(_plot_pointwise(results, f("g_effect_pointwise.png")))
    return files


g_effect_figures = figure_section(  # The report's G-effect curves (``g_effect.json``).
    "g_effect", order=600, file="g_effect.json", needs="methods", draw=F.g_effect_figure, title="G-effect curves",
    caption=("e = ⟨∇L_obj, ∇R⟩ per optimiser step (R = mean answer NLL), symlog scale. Left, e_u on forget "
             "data: more negative = the objective erases the forget set faster (better ↓). Right, e_r on "
             "retain data: closer to 0 or positive = less collateral damage (better ↑)."))


def _series(records: list[dict], term: str, risk: str, group: str = "total"):
    steps = [r["step"] for r in records if term in r["effects"]]
    vals = [r["effects"][term][risk][group] for r in records if term in r["effects"]]
    return np.array(steps), np.array(vals)


def _plot_g_totals(results: dict[str, dict], path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, risk, title in zip(axes, ("e_u", "e_r"), ("unlearn G-effect e_u (forget data)",
                                                     "retain G-effect e_r (retain data)"), strict=True):
        for m, r in results.items():
            s, v = _series(r["probe"].records, "forget", risk)
            line, = ax.plot(s, v, marker="o", ms=3, label=f"{m} (forget term)")
            if any("total" in rec["effects"] for rec in r["probe"].records):
                s2, v2 = _series(r["probe"].records, "total", risk)
                ax.plot(s2, v2, ls="--", color=line.get_color(), label=f"{m} (forget + retain term)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel("optimiser step")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle("G-effect e = ⟨∇L_obj, ∇R⟩ (R = mean answer NLL; negative = R rises)")
    return save_figure(fig, path)


def _plot_g_groups(results: dict[str, dict], path: Path) -> Path:
    plt = pyplot()
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(4.5 * n, 7.5), squeeze=False, gridspec_kw={"hspace": 0.35})
    for j, (m, r) in enumerate(results.items()):
        p = r["probe"]
        for i, risk in enumerate(("e_u", "e_r")):
            ax = axes[i][j]
            cmap = plt.get_cmap("viridis", max(2, len(p.groups)))
            for k, g in enumerate(p.groups):
                s, v = _series(p.records, "forget", risk, g)
                ax.plot(s, v, color=cmap(k), label=g)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_title(f"{m}: {risk} per parameter group")
            ax.set_xlabel("optimiser step")
            if j == 0 and len(p.groups) <= 12:
                ax.legend(fontsize=7)
            elif len(p.groups) > 12:  # a deep model: colour = depth, on a colour bar instead of 30+ legend rows
                _depth_colorbar(plt, fig, ax, cmap, p.groups)
    return save_figure(fig, path)


def _depth_colorbar(plt, fig, ax, cmap, groups: list[str]) -> None:
    """A colour bar naming the first, middle and last parameter groups (embedding … head)."""
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, len(groups) - 1))
    ticks = sorted({0, len(groups) // 2, len(groups) - 1})
    bar = fig.colorbar(sm, ax=ax, ticks=ticks)
    bar.ax.set_yticklabels([groups[t] for t in ticks], fontsize=7)


def _plot_pointwise(results: dict[str, dict], path: Path) -> Path:
    plt = pyplot()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 4), squeeze=False, gridspec_kw={"wspace": 0.4})
    for j, (m, r) in enumerate(results.items()):
        ax = axes[0][j]
        recs = [x for x in r["probe"].records if x.get("pointwise")]
        for rec in (recs[0], recs[-1]) if len(recs) > 1 else recs:
            ax.scatter(rec["pointwise"]["e_u"], rec["pointwise"]["e_r"], s=10, label=f"step {rec['step']}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel("point-wise e_u")
        ax.set_ylabel("point-wise e_r")
        ax.set_title(m)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Squeezing report


def squeeze_report(results: dict[str, dict], run, meta: dict, judge: str | None = None) -> list[Path]:
    """squeezing.json / .csv / .png; with the samples' Similarity to the target per likelihood band (the seed's
    reading of the bands: embedding proxy, or the ``judge`` backend), when it can be computed."""
    from unlearnkit.analysis.squeezing import as_rows, band_similarity

    rows, doc = [], {"meta": meta, "methods": {}}
    for m, r in results.items():
        p = r["probe"]
        rows += as_rows(m, p.records)
        try:
            r["band_similarity"] = band_similarity(p.samples, judge)
        except UnlearnkitError as e:  # the proxy's wheel is missing, a backend is unreachable …
            r["band_similarity"] = {"note": str(e)}
        doc["methods"][m] = {"params": r["params"], "sampling": p.sampling, "records": p.records,
                             "samples": p.samples, "error": r["error"], "train_steps": r["log"]["steps"],
                             "band_similarity": r["band_similarity"], "similarity_judge": judge or "proxy:embedding"}
    files = [run.write_json("squeezing.json", doc), write_csv(run.layout.file("squeezing.csv"), rows)]
    files.append(_plot_squeeze(results, run.layout.file("squeezing.png")))
    return files


squeezing_figures = figure_section(  # The report's squeezing bands (``squeezing.json``).
    "squeezing", order=800, file="squeezing.json", needs="methods", draw=F.squeezing_figure, title="Squeezing effect",
    caption=("Change since step 0 of the mean per-token log-prob of the forget answers (target), their "
             "paraphrases, and answers sampled from θ_o in high / mid / low likelihood bands. Target and "
             "paraphrase should fall (↓); a method that pushes mass onto θ_o's own high-likelihood answers "
             "(high band rising) squeezes rather than forgets."))


def _plot_squeeze(results: dict[str, dict], path: Path) -> Path:
    from unlearnkit.analysis.squeezing import GROUPS

    plt = pyplot()
    n = len(results)
    fig, axes = plt.subplots(2, n, figsize=(4.8 * n, 7.6), squeeze=False, gridspec_kw={"hspace": 0.4, "wspace": 0.35})
    colors = {"target": "black", "paraphrase": "grey", "high": "tab:red", "mid": "tab:orange", "low": "tab:blue"}
    for j, (m, r) in enumerate(results.items()):
        recs = r["probe"].records
        last = recs[-1]["step"] if recs else 0
        for i, upto in enumerate((last, max(3, last // 4))):  # the whole run; its first quarter enlarged
            ax = axes[i][j]
            part = [x for x in recs if x["step"] <= upto]
            for g in GROUPS:
                if not part or part[0][g]["tok"] is None:
                    continue
                v0 = part[0][g]["tok"]
                ax.plot([x["step"] for x in part], [x[g]["tok"] - v0 for x in part], color=colors[g], marker="o",
                        ms=3, ls="--" if g in ("target", "paraphrase") else "-", label=f"{g} (n={part[0][g]['n']})")
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_title(m if i == 0 else f"{m}: steps 0–{upto}")
            ax.set_xlabel("optimiser step")
            ax.set_ylabel("Δ mean per-token log-prob since step 0")
            if i == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Squeezing effect: target, paraphrase and θ_o samples (high/mid/low likelihood under θ_o)")
    return save_figure(fig, path)

# ---------------------------------------------------------------------------------------------
# Tables and per-method summaries


def gradient_table(res: dict) -> str:
    from unlearnkit.results.tables import format_table

    rows = []
    for m, r in res.items():
        recs = r["probe"].records
        for rec in (recs[0], recs[len(recs) // 2], recs[-1]) if len(recs) > 2 else recs:
            f = rec["effects"]["forget"]
            emb_share = _share(f["e_r"], "embedding")
            rows.append([m, rec["step"], f["e_u"]["total"], f["e_r"]["total"], emb_share,
                         rec["effects"].get("total", {}).get("e_r", {}).get("total")])
    return format_table(["method", "step", "e_u (forget term)", "e_r (forget term)", "|e_r| share embedding",
                         "e_r (forget+retain)"], rows)


def _share(d: dict[str, float], group: str) -> float:
    tot = sum(abs(v) for g, v in d.items() if g != "total")
    return abs(d.get(group, 0.0)) / tot if tot else 0.0


def squeeze_table(res: dict) -> str:
    from unlearnkit.analysis.squeezing import GROUPS
    from unlearnkit.results.tables import format_table

    rows = []
    for m, r in res.items():
        recs = r["probe"].records
        first, last = recs[0], recs[-1]
        rows.append([m, last["step"], *[(last[g]["tok"] - first[g]["tok"]) if first[g]["tok"] is not None else None
                                       for g in GROUPS], f"{r['probe'].sampling.get('kept')}/{r['probe'].sampling.get('drawn')}"])
    sims = [[m, *[r.get("band_similarity", {}).get(b) for b in ("high", "mid", "low")]] for m, r in res.items()
            if "note" not in r.get("band_similarity", {"note": ""})]
    text = ("Change of the mean per-token log-prob from step 0 to the last step:\n"
            + format_table(["method", "steps", *GROUPS, "samples kept"], rows))
    if sims:
        text += ("\n\nSimilarity of θ_o's sampled answers to the target, per likelihood band (higher = differs more "
                 "in meaning):\n" + format_table(["method", "high", "mid", "low"], sims, digits=3))
    return text


def gradient_summary(r: dict) -> dict[str, float]:
    """The last probe of a method: e_u and e_r of the forget term (and of forget + retain term)."""
    rec = r["probe"].records[-1]
    f = rec["effects"]["forget"]
    out = {"step": float(rec["step"]), "e_u": f["e_u"]["total"], "e_r": f["e_r"]["total"]}
    if "total" in rec["effects"]:
        out["e_r_total"] = rec["effects"]["total"]["e_r"]["total"]
    return out


def squeeze_summary(r: dict) -> dict[str, float | None]:
    """Change of each group's mean per-token log-prob from step 0 to the last step."""
    from unlearnkit.analysis.squeezing import GROUPS

    recs = r["probe"].records
    first, last = recs[0], recs[-1]
    return {g: (last[g]["tok"] - first[g]["tok"]) if first[g]["tok"] is not None else None for g in GROUPS}
