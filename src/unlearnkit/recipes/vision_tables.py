"""The tables of ``unlearnkit run vision``: one seed-layout table per scenario (UA, RA, TA, MIA, Gap ↓, TIME ↓)
from the finished entries of a run, with TARF's identification note."""

from __future__ import annotations

from unlearnkit.data.scenarios import TITLES, build_scenario
from unlearnkit.metrics.vision import GAP_KEYS
from unlearnkit.recipes.vision_config import VisionSetting
from unlearnkit.results.tables import column, render_tables, row, table_spec

DISPLAY = {"retrain": "Retrain (ref.)", "ft": "FT", "rl": "RL", "ga": "GA", "iu": "IU", "bs": "BS",
           "l1_sparse": "L1-sparse", "salun": "SalUn", "scrub": "SCRUB", "tarf": "TARF"}


def write_tables(st: VisionSetting) -> str:
    """One seed-layout table per scenario from the finished entries of this config (mean over seeds;
    with several seeds the Gap cell also shows the standard deviation)."""
    specs, values = [], {}
    for name in st.cfg.scenarios:
        sc = build_scenario(st.ds, name, st.cfg.scenario)
        per: dict[str, list[str]] = {}
        for m in ["original", *st.cfg.methods]:
            for seed in st.cfg.seeds:
                info = st.entry(sc, m, seed)
                if st.run.status(info) == "done":
                    per.setdefault(m, []).append(info.name)
                    values[info.name] = st.run.record(info.name).aggregates
        specs.append(_scenario_spec(st, name, per))
    text = render_tables(specs, values)
    st.run.write_summary(specs, text)
    return text


def _scenario_spec(st: VisionSetting, name: str, per: dict[str, list[str]]) -> dict:
    cols = [column(k, k) for k in GAP_KEYS] + [column("Gap ↓", "Gap", sd=True), column("TIME (s) ↓", "TIME")]
    rows = []
    if per.get("original"):
        rows.append(row("Original θ_o", per["original"], ["TIME"]))
    for m in st.cfg.methods:
        if per.get(m):
            rows.append(row(DISPLAY.get(m, m), per[m], ["Gap"] if m == "retrain" else []))
    first = next((e for es in per.values() for e in es), None)
    desc = st.run.record(first).extra.get("description") if first else "(no finished entries)"
    n = len({st.run.record(e).entry.get("seed") for es in per.values() for e in es})
    title = f"{TITLES[name]} — {desc}" + (f" (mean of {n} seeds; Gap as mean ± sd)" if n > 1 else "")
    notes = _tarf_notes([st.run.record(e) for e in per.get("tarf", [])])
    return table_spec(cols, rows, title=title, digits=2, label_seeds=False, notes=notes) | {"corner": "Method"}


def _tarf_notes(recs: list) -> list[str]:
    import numpy as np

    recs = [r for r in recs if "identified" in r.extra.get("log", {})]
    if not recs:
        return []
    log0 = recs[0].extra["log"]
    recs = sorted(recs, key=lambda r: r.entry.get("seed"))
    per_seed = "; ".join(f"seed {r.entry.get('seed')}: {r.extra['log']['identified']}" for r in recs)
    p = np.mean([r.extra["log"]["precision"] for r in recs])
    rc = np.mean([r.extra["log"]["recall"] for r in recs])
    return [f"  TARF identification ({log0.get('identification_rule', '?')}, m = {log0.get('m')}, "
            f"variant {log0.get('variant')}): hidden target classes {log0['hidden_truth']}; identified {per_seed}; "
            f"precision {p:.0f} %, recall {rc:.0f} %"]
