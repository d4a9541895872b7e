"""Layer-wise patching sweep (docs/analysis.md; seed: "On the Fragility of Latent Knowledge"): tables and plots.

θ_o with the tensors of one group g (a transformer layer, or the embedding / the head) taken from
θ_u (:mod:`unlearnkit.models.patching`); the sweep evaluates FQ, MU and forget ES of θ_{o←u}[l]
for every layer l; the seed finds a U-shape in MU (middle layers hurt utility most). The sweep and
CRU's selection are :func:`unlearnkit.methods.llm.cru.layer_sweep` / :func:`~unlearnkit.methods.llm.cru.cru`;
``unlearnkit layers`` is :func:`unlearnkit.recipes.analyses.run_layers`. The report's section of
``layers.json`` (:mod:`unlearnkit.results.sections`) is at the end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unlearnkit.errors import UnlearnkitError
from unlearnkit.results import figures as F
from unlearnkit.results.html import Figure
from unlearnkit.results.sections import RunData, report_section, svg_figure


def layers_table(doc: dict) -> str:
    from unlearnkit.results.tables import format_table

    rel = doc.get("relative_change", {})
    rows = [["θ_o", *_vals(doc["baselines"]["original"]), None],
            ["θ_u", *_vals(doc["baselines"]["unlearned"]), None]]
    rows += [[f"θ_o ← θ_u[{u}]", *_vals(v), rel.get(u)] for u, v in doc["sweep"].items()]
    return format_table(["model", "MU ↑", "FQ (ln p) ↑", "ES-exact forget ↓", "ES-exact retain ↑",
                         "‖Δθ_g‖/‖θ_o,g‖"], rows)


def _vals(s: dict) -> list[float]:
    return [s["mu"], s["fq_log_p"], s["forget_es_exact"], s["retain_es_exact"]]


def cru_table(rep: dict) -> str:
    from unlearnkit.results.tables import format_table

    t = rep["test"]
    rows = [[name, *_vals(t[key])] for name, key in (("θ_o", "original"), ("θ_u", "unlearned"),
                                                     (f"CRU (k={rep['k']})", "cru"))]
    return (f"CRU keeps {rep['k']} group(s) from θ_u: {', '.join(rep['groups_from_unlearned']) or '-'} "
            f"(k chosen on the validation half); test half:\n"
            + format_table(["model", "MU ↑", "FQ (ln p) ↑", "ES-exact forget ↓", "ES-exact retain ↑"], rows))


def cru_sweep_doc(report: dict) -> dict:
    """A CRU entry's report (``extra.post_hoc`` of a run's ``cru`` entry) as a layer-sweep document for
    :func:`write_layer_outputs`: its patching sweep on the validation half, with θ_o and θ_u on that half taken
    from the k = 0 and k = K candidates. Needs k chosen on validation (with a given k only one candidate exists)."""
    cands = {c["k"]: c for c in report.get("candidates_validation", [])}
    n = len(report["units"])
    if 0 not in cands or n not in cands:
        raise UnlearnkitError(f"this CRU report has candidates k = {sorted(cands)} only: θ_o (k = 0) and θ_u "
                              f"(k = {n}) on the validation half exist only when k is chosen there (leave k unset)")
    keys = ("mu", "fq_log_p", "forget_es_exact", "retain_es_exact")
    return {"half": "validation", "baselines": {"original": {k: cands[0][k] for k in keys},
                                                "unlearned": {k: cands[n][k] for k in keys}},
            "sweep": report["sweep_validation"]}


def write_layer_outputs(doc: dict, run) -> list[Path]:
    """layers.json / layers.csv / layers.png (and cru.csv / cru.png) into the analysis run."""
    from unlearnkit.results.plots import pyplot, save_figure, write_csv

    out = run.layout.file

    rows = [{"model": "original", **doc["baselines"]["original"]}, {"model": "unlearned", **doc["baselines"]["unlearned"]}]
    rows += [{"model": f"patch:{u}", **v, "relative_change": doc.get("relative_change", {}).get(u)}
             for u, v in doc["sweep"].items()]
    files = [run.write_json("layers.json", doc), write_csv(out("layers.csv"), rows)]
    plt = pyplot()
    units = list(doc["sweep"])
    x = np.arange(len(units))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, title in zip(axes, ("mu", "fq_log_p", "forget_es_exact"),
                              ("MU ↑", "FQ (ln p) ↑", "forget ES-exact ↓"), strict=True):
        ax.plot(x, [doc["sweep"][u][key] for u in units], marker="o", color="tab:purple", label="θ_o ← θ_u[group]")
        ax.axhline(doc["baselines"]["original"][key], ls="--", color="tab:green", label="θ_o")
        ax.axhline(doc["baselines"]["unlearned"][key], ls="--", color="tab:red", label="θ_u")
        step = max(1, len(units) // 12)  # a deep model (32 groups) gets every few labels, not an overlapping row
        ax.set_xticks(x[::step], [u.replace("layer.", "L") for u in units][::step], rotation=45)
        ax.set_title(title)
        ax.legend(fontsize=7)
    half = f" ({doc['half']} half)" if doc.get("half") else ""
    fig.suptitle(f"Layer-wise patching: θ_o with one group taken from θ_u{half}")
    files.append(save_figure(fig, out("layers.png")))
    if "cru" in doc:
        rep = doc["cru"]
        files.append(write_csv(out("cru.csv"), [{k: (",".join(v) if isinstance(v, list) else v) for k, v in c.items()}
                                                  for c in rep["candidates_validation"]]))
        fig, ax = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"wspace": 0.45})
        c = rep["candidates_validation"]
        ax[0].plot([r["k"] for r in c], [r["mu"] for r in c], marker="o", label="MU")
        ax2 = ax[0].twinx()
        ax2.plot([r["k"] for r in c], [r["fq_log_p"] for r in c], marker="s", color="tab:red", label="FQ (ln p)")
        ax[0].axvline(rep["k"], color="grey", ls=":")
        ax[0].set_xlabel("k (groups kept from θ_u, best-ranked first)")
        ax[0].set_ylabel("MU (validation)")
        ax2.set_ylabel("FQ ln p (validation)", color="tab:red")
        ax[0].set_title("CRU: choosing k on validation")
        t = rep["test"]
        for name, key, col in (("θ_o", "original", "tab:green"), ("θ_u", "unlearned", "tab:red"),
                               (f"CRU k={rep['k']}", "cru", "tab:purple")):
            ax[1].scatter(t[key]["fq_log_p"], t[key]["mu"], s=60, color=col, label=name)
        ax[1].set_xlabel("FQ (ln p), test half")
        ax[1].set_ylabel("MU, test half")
        ax[1].set_title("MU–FQ trade-off on the test half")
        ax[1].legend(fontsize=8)
        files.append(save_figure(fig, out("cru.png")))
    return files


@report_section("layers", order=700, reads=("layers.json",))
def layers_figures(rd: RunData) -> list[Figure]:
    """The report's layer-wise patching figure and, with a CRU selection, the CRU figure (``layers.json``)."""
    doc = rd.file("layers.json")
    if not doc or not doc.get("sweep"):
        return []
    out = [svg_figure(F.layers_figure(doc), "Layer-wise patching",
                      "θ_o with one parameter group (embedding, layer L_i, head) taken from θ_u: MU (↑ better), FQ "
                      "(↑ better) and forget ES-exact (↓ better) per group; dashed lines: θ_o and θ_u. A group that "
                      "moves forget ES toward θ_u while keeping MU near θ_o carries the forgetting.")]
    if isinstance(doc.get("cru"), dict) and doc["cru"].get("test"):
        out.append(svg_figure(F.cru_figure(doc["cru"]), "CRU",
                              "Left: MU and FQ on the validation half when the k best-ranked groups come from θ_u "
                              "(the chosen k dotted). Right: θ_o, θ_u and the CRU model on the test half; up and "
                              "right is better."))
    return out
