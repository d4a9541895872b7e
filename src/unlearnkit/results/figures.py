"""The report's figures, drawn from what runs store (their tables' values and their JSON files).

Each function takes plain data and returns a matplotlib figure (the report turns it into an inline
SVG); none reads files or knows about HTML. The data shapes are those the recipes write:
``curves.json`` (calibration), ``pcc.json`` (reliability), ``sweep.json``, ``g_effect.json``,
``layers.json``, ``squeezing.json``, ``continual.json``, and the vision entries' aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unlearnkit.results.plots import pyplot

REF_STYLE = {"original": ("*", "black", 220), "retrain": ("D", "tab:green", 90)}


@dataclass
class Point:
    """One row of a run table placed on the trade-off plot."""

    label: str
    x: float  # utility (MU)
    y: float  # forget metric (forget ES-exact)
    kind: str = "method"  # method | original | retrain
    alpha: float | None = None  # calibrated rows: the mixing coefficient
    group: str = ""  # the run it comes from (several runs overlaid)


def tradeoff_figure(panels: Sequence[tuple[str, list[Point]]], xlabel: str, ylabel: str):
    """Side-by-side panels (raw, calibrated) of forget metric vs utility; Original ★ and Retrain ◆ marked,
    each method a labelled dot (with its α when calibrated); several runs in several colours."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False, sharex=True,
                             sharey=True)
    groups = sorted({p.group for _, pts in panels for p in pts})
    methods = list(dict.fromkeys(p.label for _, pts in panels for p in pts if p.kind not in REF_STYLE))
    by_method = len(groups) == 1  # one run: a colour per method (the same in every panel); several: per run
    colours = {k: f"C{i}" for i, k in enumerate(methods if by_method else groups)}
    for ax, (title, pts) in zip(axes[0], panels):
        for p in pts:
            if p.kind in REF_STYLE:
                marker, colour, size = REF_STYLE[p.kind]
                ax.scatter([p.x], [p.y], marker=marker, s=size, color=colour, edgecolor="white", zorder=3,
                           label=f"{p.label}{' (' + p.group + ')' if len(groups) > 1 else ''}")
                continue
            colour = colours[p.label if by_method else p.group]
            ax.scatter([p.x], [p.y], s=46, color=colour, zorder=3)
            text = p.label + (f" (α={p.alpha:.2f})" if p.alpha is not None else "")
            ax.annotate(text, (p.x, p.y), textcoords="offset points", xytext=(5, 4), fontsize=8, color=colour)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if len(groups) > 1:
            handles += [plt.Line2D([], [], marker="o", ls="", color=colours[g]) for g in groups]
            labels += groups
        if handles:
            ax.legend(handles, labels, fontsize=7, loc="best")
    axes[0][0].set_ylabel(ylabel)
    return fig


def pcc_figure(pcc: dict[str, dict[str, dict[str, float | None]]], n_models: int):
    """One panel per data set (forget, retain): per metric, one bar per intervention (Pearson r)."""
    plt = pyplot()
    roles = list(pcc)
    fig, axes = plt.subplots(1, len(roles), figsize=(6.5 * len(roles), 4), squeeze=False)
    for ax, role in zip(axes[0], roles):
        metrics = list(pcc[role])
        interventions = sorted({iv for m in metrics for iv in pcc[role][m]})
        width = 0.8 / max(1, len(interventions))
        x = np.arange(len(metrics))
        for k, iv in enumerate(interventions):
            vals = [pcc[role][m].get(iv) for m in metrics]
            ax.bar(x + k * width - 0.4 + width / 2, [np.nan if v is None else v for v in vals], width, label=iv)
        ax.set_xticks(x, metrics, rotation=30, ha="right", fontsize=8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
        ax.set_ylabel("Pearson r before vs after ↑")
        ax.set_title(f"{role} data ({n_models} models)", fontsize=11)
    axes[0][0].legend(fontsize=7, ncol=2)
    return fig


def sweep_figure(sweep: dict):
    """One panel per knob: calibrated forget ES-exact of each variant (bars, α on top), the origin dashed."""
    plt = pyplot()
    rows = sweep.get("all") or []
    origin = rows[0] if rows else None
    knobs = [k for k in dict.fromkeys(r[0] for r in rows[1:])]
    fig, axes = plt.subplots(1, max(1, len(knobs)), figsize=(3.2 * max(1, len(knobs)), 3.6), squeeze=False,
                             sharey=True)
    for ax, knob in zip(axes[0], knobs):
        part = [r for r in rows[1:] if r[0] == knob]
        names = [r[6].split("@", 1)[-1] for r in part]
        bars = ax.bar(range(len(part)), [r[2] for r in part], color="tab:blue")
        for b, r in zip(bars, part):
            ax.annotate(f"α={r[5]:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                        va="bottom", fontsize=7)
        if origin is not None:
            ax.axhline(origin[2], color="black", ls="--", lw=1, label=f"origin (α={origin[5]:.2f})")
        ax.set_xticks(range(len(part)), names, fontsize=8)
        ax.set_title(knob, fontsize=11)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("calibrated forget ES-exact ↓")
    return fig


def _g_series(records: list[dict], term: str, risk: str) -> tuple[list, list]:
    pts = [(r["step"], r["effects"][term][risk]["total"]) for r in records if term in r.get("effects", {})]
    return [s for s, _ in pts], [v for _, v in pts]


def g_effect_figure(doc: dict):
    """e_u (forget data) and e_r (retain data) of each method's forget term (and of forget + retain) per step."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, risk, title in zip(axes, ("e_u", "e_r"), ("unlearning G-effect e_u (forget data)",
                                                     "retention G-effect e_r (retain data)")):
        for i, (m, d) in enumerate(doc.get("methods", {}).items()):
            recs = d.get("records") or []
            s, v = _g_series(recs, "forget", risk)
            ax.plot(s, v, marker="o", ms=3, color=f"C{i}", label=f"{m} (forget term)")
            s2, v2 = _g_series(recs, "total", risk)
            if s2:
                ax.plot(s2, v2, ls="--", color=f"C{i}", label=f"{m} (forget + retain)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel("optimiser step")
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=7)
    return fig


def layers_figure(doc: dict):
    """MU, FQ and forget ES-exact of θ_o with one group from θ_u, per group; θ_o and θ_u as lines."""
    plt = pyplot()
    units = list(doc.get("sweep", {}))
    x = np.arange(len(units))
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, title in zip(axes, ("mu", "fq_log_p", "forget_es_exact"),
                              ("MU ↑", "FQ (ln p) ↑", "forget ES-exact ↓")):
        ax.plot(x, [doc["sweep"][u].get(key) for u in units], marker="o", color="tab:purple",
                label="θ_o ← θ_u[group]")
        for name, colour in (("original", "tab:green"), ("unlearned", "tab:red")):
            ax.axhline(doc["baselines"][name][key], ls="--", color=colour, label="θ_o" if name == "original" else "θ_u")
        ax.set_xticks(x, [u.replace("layer.", "L") for u in units], rotation=45, fontsize=8)
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=7)
    return fig


def cru_figure(rep: dict):
    """CRU: MU and FQ of the k best-ranked groups on validation; θ_o, θ_u and CRU on the test half."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"wspace": 0.45})
    c = rep.get("candidates_validation") or []
    ax[0].plot([r["k"] for r in c], [r["mu"] for r in c], marker="o", label="MU ↑")
    twin = ax[0].twinx()
    twin.plot([r["k"] for r in c], [r["fq_log_p"] for r in c], marker="s", color="tab:red", label="FQ (ln p) ↑")
    ax[0].axvline(rep["k"], color="grey", ls=":")
    ax[0].set(xlabel="k (groups kept from θ_u)", ylabel="MU (validation)", title="choosing k on validation")
    twin.set_ylabel("FQ ln p (validation)", color="tab:red")
    t = rep["test"]
    for name, key, colour in (("θ_o", "original", "tab:green"), ("θ_u", "unlearned", "tab:red"),
                              (f"CRU k={rep['k']}", "cru", "tab:purple")):
        ax[1].scatter(t[key]["fq_log_p"], t[key]["mu"], s=60, color=colour, label=name)
    ax[1].set(xlabel="FQ (ln p), test half ↑", ylabel="MU, test half ↑", title="MU–FQ on the test half")
    ax[1].legend(fontsize=8)
    return fig


def _bands(rec: dict) -> list[str]:
    return [k for k, v in rec.items() if isinstance(v, dict) and "tok" in v]


def squeezing_figure(doc: dict):
    """Per method: change of the mean per-token log-prob since step 0 of the target answers, their
    paraphrases and θ_o's own samples in high / mid / low likelihood bands."""
    plt = pyplot()
    methods = doc.get("methods", {})
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(4.8 * max(1, len(methods)), 3.8), squeeze=False)
    colours = {"target": "black", "paraphrase": "grey", "high": "tab:red", "mid": "tab:orange", "low": "tab:blue"}
    for ax, (m, d) in zip(axes[0], methods.items()):
        recs = d.get("records") or []
        for g in _bands(recs[0]) if recs else []:
            if recs[0][g]["tok"] is None:
                continue
            v0, pts = recs[0][g]["tok"], [r for r in recs if r[g]["tok"] is not None]
            ax.plot([r["step"] for r in pts], [r[g]["tok"] - v0 for r in pts], marker="o", ms=3,
                    color=colours.get(g), ls="--" if g in ("target", "paraphrase") else "-",
                    label=f"{g} (n={recs[0][g].get('n')})")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(title=m, xlabel="optimiser step", ylabel="Δ mean log-prob per token")
        ax.legend(fontsize=7)
    return fig


CONTINUAL_PANELS = (("mu", "MU ↑"), ("retain_es_exact", "retain ES-exact ↑"),
                    ("forget_es_exact", "forget ES-exact ↓"), ("forget_es_done", "forget ES-exact, requests done ↓"),
                    ("fq_log_p", "FQ (ln p) ↑"))


def continual_figure(doc: dict):
    """One panel per metric, one line per method entry, x = stage (0 = θ_o)."""
    plt = pyplot()
    curves = doc.get("curves", {})
    fig, axes = plt.subplots(1, len(CONTINUAL_PANELS), figsize=(3.6 * len(CONTINUAL_PANELS), 3.4))
    for ax, (key, title) in zip(axes, CONTINUAL_PANELS):
        for e, stages in curves.items():
            pts = [(s["stage"], s[key]) for s in stages if s.get(key) is not None]
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", ms=3, label=e)
        ax.set(xlabel="stage (0 = θ_o)", title=title)
    axes[0].legend(fontsize=7)
    return fig


def gap_figure(scenarios: Sequence[tuple[str, list[tuple[str, float, float]]]]):
    """One panel per scenario: each method's Gap to Retrain (mean over seeds, ± sd as error bars)."""
    plt = pyplot()
    n = max(1, len(scenarios))
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.6), squeeze=False, sharey=True)
    for ax, (title, bars) in zip(axes[0], scenarios):
        ax.bar(range(len(bars)), [b[1] for b in bars], yerr=[b[2] for b in bars], capsize=3, color="tab:blue")
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=40, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0][0].set_ylabel("Gap to Retrain ↓")
    return fig


def judge_figure(rows: Sequence[tuple[str, dict[str, float]]], metrics: Sequence[str]):
    """Per table row (method), one bar per judge / proxy score (all in [0, 1], higher is better)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(rows) * max(1, len(metrics)) / 2, 3.4))
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(rows))
    for k, m in enumerate(metrics):
        ax.bar(x + k * width - 0.4 + width / 2, [r[1].get(m, np.nan) for r in rows], width, label=m)
    ax.set_xticks(x, [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score ↑")
    ax.legend(fontsize=7, ncol=2)
    return fig


def tarf_figure(rows: Sequence[tuple[str, float, float]]):
    """TARF's identification of the hidden target classes: precision and recall (%) per scenario."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.18, [r[1] for r in rows], 0.36, label="precision ↑")
    ax.bar(x + 0.18, [r[2] for r in rows], 0.36, label="recall ↑")
    ax.set_xticks(x, [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    return fig
