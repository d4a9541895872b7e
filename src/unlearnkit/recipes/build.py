"""``unlearnkit data build`` and ``unlearnkit models build``: the embedded benchmark and its models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unlearnkit.config import BuildConfig
from unlearnkit.data import fictitious
from unlearnkit.models.build import ModelSet, build_models
from unlearnkit.results.store import prepare_output_dir


def build_data(cfg: BuildConfig, out: str | None = None, force: bool = False) -> Path:
    """The embedded fictitious-facts data in TOFU's layout (cached, or written to ``out``)."""
    if out:
        d = Path(out).expanduser()
        if d.exists() and any(d.iterdir()) and not (d / "meta.json").is_file():
            prepare_output_dir(d, "data", False)  # refuses a non-empty directory that is not ours
        fictitious.write(fictitious.generate(cfg.data), d)
        return d
    return fictitious.build(cfg.data, force=force)


def build_model_set(cfg: BuildConfig, force: bool = False, say: Callable[[str], None] = lambda s: None) -> ModelSet:
    return build_models(cfg, force=force, say=say)
