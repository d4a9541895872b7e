"""Figures and CSV files written next to their data (matplotlib, Agg backend; every file atomic; in a job of several
processes the main process writes them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from unlearnkit.engine import distributed as dist
from unlearnkit.io import atomic_file, atomic_write_text


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path | str, dpi: int = 120) -> Path:
    """``fig.savefig`` to a temporary file beside ``path``, then moved into place."""
    path = Path(path)

    def save() -> None:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")

    try:
        dist.on_main(save)
    finally:
        pyplot().close(fig)
    return path


def write_csv(path: Path | str, rows: Sequence[dict]) -> Path:
    """Rows of dicts as CSV (columns = union of keys in first-seen order), atomically."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    dist.on_main(lambda: atomic_write_text(path, buf.getvalue()))
    return Path(path)


def svg_data_uri(fig) -> str:
    """The figure as an SVG ``data:`` URI (text kept as text, reproducible ids), and closed."""
    import base64

    plt = pyplot()
    buf = io.BytesIO()
    try:
        with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "unlearnkit"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_alpha_curves(curves: dict[str, dict], metric: str, path: Path) -> None:
    """Retain metric and forget ES-exact vs α per method, with each method's target and chosen α."""
    save_figure(alpha_curves_figure(curves, metric), path, dpi=110)


def alpha_curves_figure(curves: dict[str, dict], metric: str):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, c) in enumerate(curves.items()):
        color = f"C{i}"
        axes[0].plot(c["alpha"], c["retain"], "o-", color=color, label=name)
        axes[0].axvline(c["chosen_alpha"], color=color, ls=":", lw=1)
        axes[1].plot(c["grid_alpha"], c["forget_es_exact"], "o-", color=color, label=name)
        axes[1].axvline(c["chosen_alpha"], color=color, ls=":", lw=1)
    if curves:
        axes[0].axhline(next(iter(curves.values()))["target"], color="k", ls="--", lw=1, label="τ · θ_o")
    axes[0].set(xlabel="α  (0 = θ_o, 1 = θ_u)", ylabel=metric, title="retention along the mix")
    axes[1].set(xlabel="α", ylabel="forget ES-exact", title="unlearning along the mix")
    axes[0].legend(fontsize=8)
    return fig


def plot_scatter_grid(data: dict[str, dict[str, tuple[list, list]]], pcc: dict, path: Path, title: str) -> None:
    """Rows: metrics; columns: interventions; each panel: metric before vs after over the model pool."""
    plt = pyplot()
    metrics = list(data)
    interventions = list(next(iter(data.values()))) if data else []
    fig, axes = plt.subplots(len(metrics), len(interventions), figsize=(2.4 * len(interventions), 2.2 * len(metrics)),
                             squeeze=False)
    for r, m in enumerate(metrics):
        for c, iv in enumerate(interventions):
            ax = axes[r][c]
            x, y = data[m][iv]
            ax.scatter(x, y, s=8)
            p = pcc.get(m, {}).get(iv)
            ax.set_title(f"{iv}: r={p:.2f}" if p is not None else f"{iv}: r=n/a", fontsize=8)
            if c == 0:
                ax.set_ylabel(m, fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(title)
    save_figure(fig, path, dpi=110)
