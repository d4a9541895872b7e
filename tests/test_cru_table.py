"""configs/cru_table.yaml (and its SmolLM2 twin) lay out the seed's CRU table: loaded through the real config loader
and resolved by the run's method resolution, each preset is the run its docs page's table describes — the same
columns and rows in the same order, the knobs the page states, the KL weights its row labels name — and its post-hoc
rows really reuse the θ_u of their column's base entry (the entry hash the run looks up equals the base row's)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from unlearnkit.config import load_config, validate
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods.llm.posthoc import is_post_hoc
from unlearnkit.recipes.lm import LMBench, RunConfig, base_of, method_entry, validate_methods
from unlearnkit.results.layout import entry_name

ROOT = Path(__file__).resolve().parents[1]
PRESETS = [("configs/cru_table.yaml", "docs/results/cru-table.md"),
           ("configs/cru_table_smollm2.yaml", "docs/results/cru-table-smollm2.md")]
IDS = ["tiny", "smollm2"]


def _preset(config: str):
    cfg = load_config(RunConfig, ROOT / config)
    return cfg, validate_methods(cfg)


def doc_tables(page: str) -> dict[str, list[str]]:
    """The page's column tables: title ("NPO column") → the row labels after Original/Retrain, as method names
    ("+RT (rt@npo)" → rt@npo, "FLAT" → flat, "CRU (cru@ga, k = 3: …)" → cru@ga)."""
    out: dict[str, list[str]] = {}
    for block in re.findall(r"((?:^\|.*\|\n)+)", (ROOT / page).read_text(encoding="utf-8"), flags=re.M):
        lines = block.splitlines()
        title = lines[0].split("|")[1].strip()
        m = re.fullmatch(r"(\w+ column)(?: \(SmolLM2\))?", title)
        if not m:
            continue
        labels = [line.split("|")[1].strip() for line in lines[2:]]
        out[m.group(1)] = [_method_of(label) for label in labels if label not in ("Original", "Retrain")]
    return out


def _method_of(label: str) -> str:
    named = re.search(r"\(([\w@+.-]+)[,)]", label)
    return named.group(1) if named else label.lower()


def doc_knobs(page: str) -> dict:
    """The shared knobs the page states for every row: 'lr 2e-4, 5 epochs, batch 8, …, seed 0'."""
    text = " ".join((ROOT / page).read_text(encoding="utf-8").split())
    lr, epochs, batch = re.search(r"lr ([\d.]+e-\d+), (\d+) epochs, batch (\d+)", text).groups()
    return {"lr": float(lr), "epochs": int(epochs), "batch_size": int(batch),
            "seed": int(re.search(r"seed (\d+)", text).group(1))}


@pytest.mark.parametrize(("config", "page"), PRESETS, ids=IDS)
def test_the_preset_is_the_table_its_docs_page_shows(config, page):
    """Same column tables, same rows in the same order; one entry per row; each row resolves to the objective its
    label names (`rt@npo` is RT, `ga+kl@10x` is GA with a KL retain term)."""
    cfg, methods = _preset(config)
    tables = doc_tables(page)
    assert list(tables) == ["NPO column", "GA column"]
    assert cfg.tables == tables
    assert cfg.methods == [m for ms in tables.values() for m in ms]
    assert len({entry_name(m, s) for m in cfg.methods for s in cfg.seeds}) == len(cfg.methods) * len(cfg.seeds)
    for m, (spec, params) in methods.items():
        name = m.split("@")[0].split("+")[0]
        assert spec.name == name, m
        if not is_post_hoc(spec):
            assert params.retain == (m.split("@")[0].split("+")[1] if "+" in m else None), m


@pytest.mark.parametrize(("config", "page"), PRESETS, ids=IDS)
def test_every_row_runs_at_the_knobs_its_docs_page_states(config, page):
    """Every training row — and the θ_u a post-hoc row starts from — gets the page's lr, epochs, batch and seed
    through the run's defaults; the KL rows' α is the multiple their label names (+1×/10×/20×KL)."""
    cfg, methods = _preset(config)
    knobs = doc_knobs(page)
    assert cfg.forget == "forget10" and cfg.seeds == [knobs["seed"]]
    for m, (spec, params) in methods.items():
        trained = base_of(cfg, spec, params)[1] if is_post_hoc(spec) else params
        assert {k: getattr(trained, k) for k in knobs} == knobs, m
    kl_rows = [m for m in cfg.methods if m.startswith("ga+kl@")]
    assert len(kl_rows) == 3
    for m in kl_rows:
        times = float(re.fullmatch(r"ga\+kl@(\d+)x", m).group(1))
        spec, params = methods[m]
        assert (spec.name, params.retain, params.alpha, params.gamma) == ("ga", "kl", times, 1.0), m
    assert methods["ga"][1].retain is None and methods["ga"][0].fn.default_retain == "none"


@pytest.mark.parametrize(("config", "page"), PRESETS, ids=IDS)
def test_post_hoc_rows_reuse_the_entry_of_their_columns_base(config, page):
    """+RT and CRU edit the θ_u of their column's Unlearned row: the entry the run looks up for the base (hash of
    method, params, models, data and evaluation settings) is exactly that row's own entry, listed before them."""
    cfg, methods = _preset(config)
    bench = SimpleNamespace(fingerprints={"original": "θ_o", "reference": "θ_r", "data": "data"},
                            dtype="float64", prompt=None)
    bench.eval_inputs = lambda c: LMBench.eval_inputs(bench, c)
    post_hoc = [m for m, (spec, _) in methods.items() if is_post_hoc(spec)]
    assert post_hoc == ["rt@npo", "cru@npo", "cru@ga"]
    for row in post_hoc:
        spec, params = methods[row]
        column = next(title for title, ms in cfg.tables.items() if row in ms)
        assert params.base == cfg.tables[column][0]
        looked_up = method_entry(bench, cfg, params.base, *base_of(cfg, spec, params))
        own = method_entry(bench, cfg, params.base, *methods[params.base])
        assert (looked_up.name, looked_up.hash) == (own.name, own.hash), row
        assert method_entry(bench, cfg, row, spec, params).hash != own.hash
        assert cfg.methods.index(params.base) < cfg.methods.index(row)


def test_tables_naming_a_method_outside_the_run_are_refused():
    with pytest.raises(UnlearnkitError, match="tables list methods that are not in"):
        validate(RunConfig, {"methods": ["ga"], "tables": {"x": ["npo"]}})
