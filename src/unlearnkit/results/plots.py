"""Plots written next to their data (matplotlib, Agg backend, PNG, atomic)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
    _plt().close(fig)


def plot_alpha_curves(curves: dict[str, dict], metric: str, path: Path) -> None:
    """Retain metric and forget ES-exact vs α per method, with each method's target and chosen α."""
    plt = _plt()
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
    save_figure(fig, path)


def plot_scatter_grid(data: dict[str, dict[str, tuple[list, list]]], pcc: dict, path: Path, title: str) -> None:
    """Rows: metrics; columns: interventions; each panel: metric before vs after over the model pool."""
    plt = _plt()
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
    save_figure(fig, path)
