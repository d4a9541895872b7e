"""configs/cru_table.yaml lays out the seed's CRU table (issue #21): its rows, their bases and weights."""

from __future__ import annotations

from pathlib import Path

from unlearnkit.config import load_config
from unlearnkit.methods.llm.posthoc import is_post_hoc
from unlearnkit.methods.unlearn import make_params, resolve
from unlearnkit.recipes.lm import RunConfig, validate_methods
from unlearnkit.results.layout import entry_name

PRESET = Path(__file__).resolve().parents[1] / "configs" / "cru_table.yaml"
NPO_COLUMN = ["npo", "rt@npo", "flat", "tnpo", "wtnpo", "altpo", "cru@npo"]
GA_COLUMN = ["ga", "ga+kl@1x", "ga+kl@10x", "ga+kl@20x", "wga", "satimp", "cru@ga"]


def _preset():
    cfg = load_config(RunConfig, PRESET)
    return cfg, validate_methods(cfg)


def test_rows_are_the_seeds_two_columns_in_order():
    cfg, methods = _preset()
    assert cfg.methods == NPO_COLUMN + GA_COLUMN
    assert len({entry_name(m, s) for m in cfg.methods for s in cfg.seeds}) == len(cfg.methods) * len(cfg.seeds)
    assert [methods[m][0].name for m in cfg.methods] == [
        "npo", "rt", "flat", "tnpo", "wtnpo", "altpo", "cru", "ga", "ga", "ga", "ga", "wga", "satimp", "cru"]


def test_post_hoc_rows_reuse_their_columns_unlearned_model():
    """+RT and CRU edit the θ_u of the column's base, made with exactly the params of the base's own row,
    so the run reuses that entry's saved θ_u instead of training it again."""
    cfg, methods = _preset()
    for row, base in (("rt@npo", "npo"), ("cru@npo", "npo"), ("cru@ga", "ga")):
        spec, params = methods[row]
        assert is_post_hoc(spec) and params.base == base
        base_spec, base_retain = resolve(params.base)
        rebuilt = make_params(base_spec, {**cfg.defaults, **params.base_params, "seed": params.seed}, base_retain)
        assert rebuilt.model_dump() == methods[base][1].model_dump(), row
        assert cfg.methods.index(base) < cfg.methods.index(row)


def test_kl_rows_weight_the_kl_retain_term_1_10_20_times_on_ga():
    cfg, methods = _preset()
    for row, alpha in (("ga+kl@1x", 1.0), ("ga+kl@10x", 10.0), ("ga+kl@20x", 20.0)):
        spec, params = methods[row]
        assert spec.name == "ga" and params.retain == "kl" and params.alpha == alpha and params.gamma == 1.0
    assert methods["ga"][1].retain is None and methods["ga"][0].fn.default_retain == "none"
    assert all(methods[m][1].lr == cfg.defaults["lr"] for m in cfg.methods if not is_post_hoc(methods[m][0]))


def test_the_preset_prints_the_two_columns_as_two_tables():
    from unlearnkit.results.tables import render_tables

    cfg, _ = _preset()
    assert list(cfg.tables) == ["NPO column", "GA column"]
    assert cfg.tables["NPO column"] == NPO_COLUMN and cfg.tables["GA column"] == GA_COLUMN
    import pytest

    from unlearnkit.config import validate
    from unlearnkit.errors import UnlearnkitError

    with pytest.raises(UnlearnkitError, match="tables list methods that are not in"):
        validate(RunConfig, {"methods": ["ga"], "tables": {"x": ["npo"]}})
    assert render_tables  # the rendering itself is covered by the run tests
