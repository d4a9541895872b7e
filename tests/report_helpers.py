"""Runs of every kind written through the results API with hand-chosen numbers, in the exact file
formats the recipes write (for the report tests: no model is trained)."""

from __future__ import annotations

from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run
from unlearnkit.results.tables import SECONDS, column, failed_row, lm_columns, render_tables, row, table_spec
from unlearnkit.tasks import get_task

# entry → (MU, forget ES-exact, retain ES-exact)
LM_VALUES = {"original": (0.90, 1.00, 1.00), "retrain": (0.92, 0.17, 0.98),
             "ga__s0": (0.10, 0.02, 0.05), "ga__s1": (0.20, 0.04, 0.07), "gd__s0": (0.70, 0.20, 0.45)}
CAL_VALUES = {"original": (0.90, 1.00, 1.00, None), "retrain": (0.92, 0.17, 0.98, None),
              "ga__s0": (0.85, 0.60, 0.90, 0.30), "ga__s1": (0.84, 0.62, 0.91, 0.32), "gd__s0": (0.80, 0.35, 0.90, 0.75)}


def _aggregates(mu: float, forget: float, retain: float, seconds: float | None) -> dict:
    agg = {"mu": Metric(mu, 10, True), "forget.es_exact": Metric(forget, 10, False),
           "retain.es_exact": Metric(retain, 10, True), "privleak": Metric(5.0, 10, None)}
    if seconds is not None:
        agg[SECONDS] = Metric(seconds, None, False)
    return agg


def lm_run(name: str = "lm-synthetic", calibrated: bool = True, shift: float = 0.0, judged: bool = False) -> Run:
    """Original, Retrain, ga (2 seeds), gd, a failed kl; optionally a calibration setting with α-curves."""
    cfg = {"methods": ["ga", "gd", "kl"], "seeds": [0, 1]}
    run = Run.open("lm", name, cfg)
    values = {}
    for e, (mu, f, r) in LM_VALUES.items():
        method = e.split("__")[0]
        agg = _aggregates(mu + shift, f, r, None if "__" not in e else 1.5)
        if judged:  # what `unlearnkit judge` adds: judge and proxy scores in [0, 1]
            agg.update({"judge.naturalness": Metric(1.0 - f / 2, 10, True), "proxy.similarity": Metric(f, 10, True)})
        rec = run.write(EntryInfo(name=e, hash=f"h-{e}", method=method, seed=0 if "__" not in e else int(e[-1])),
                        agg,
                        per_sample_rows=[{"index": 0, "forget.es_exact": f}], provenance=provenance(cfg, seed=0))
        values[e] = rec.aggregates
    run.write_log("ga__s0", {"steps": [{"step": 1, "loss": 1.0}]})
    base = [row("Original", ["original"], [SECONDS]), row("Retrain", ["retrain"], [SECONDS])]
    extra = [column("Nat ↑", "judge.naturalness"), column("Sim proxy ↑", "proxy.similarity")] if judged else []
    spec = table_spec(lm_columns(get_task("tofu").columns, extra=extra), base + [row("ga", ["ga__s0", "ga__s1"]), row("gd", ["gd__s0"]),
                                                      failed_row("kl", "loss became nan at step 3")])
    run.write_summary([spec], render_tables([spec], values), provenance=provenance(cfg))
    if calibrated:
        _calibration(run, base)
    return run


def _calibration(run: Run, base: list[dict]) -> Run:
    cal_cfg = {"metric": "retain.es_exact", "tau": 0.9}
    child = run.child("calibration", "retain.es_exact-tau0.9", cal_cfg)
    values, curves = {}, {}
    for e, (mu, f, r, a) in CAL_VALUES.items():
        agg = _aggregates(mu, f, r, None)
        if a is not None:
            agg["alpha"] = Metric(a, None, None)
            curves[e] = {"alpha": [0.0, 0.5, a], "retain": [1.0, 0.8, 0.9], "grid_alpha": [0.0, 0.5, 1.0],
                         "forget_es_exact": [1.0, 0.5, 0.1], "chosen_alpha": a, "target": 0.9}
        values[e] = child.write(EntryInfo(name=e, hash=f"c-{e}", method=e.split("__")[0]), agg,
                                per_sample_rows=[{"index": 0}]).aggregates
    spec = table_spec(lm_columns(get_task("tofu").columns, seconds=False, extra=[column("α", "alpha")]),
                      base + [row("ga", ["ga__s0", "ga__s1"]), row("gd", ["gd__s0"])])
    child.write_summary([spec], render_tables([spec], values))
    child.write_json("curves.json", curves)
    return child


def reliability_run(name: str = "reliability-synthetic") -> Run:
    run = Run.open("reliability", name, {"interventions": ["relearn", "noise"]})
    pcc = {"forget": {"es_exact": {"relearn": 0.91, "noise": 0.42}, "mia": {"relearn": -0.2, "noise": 0.7}},
           "retain": {"es_exact": {"relearn": 0.95, "noise": 0.88}, "mia": {"relearn": 0.1, "noise": None}}}
    names = ["original", "ga-lr0.001-ep1", "ga-lr0.001-ep2"]
    flat = {f"{role}.{m}@{iv}": Metric(v, 3, True) for role, per in pcc.items() for m, ivs in per.items()
            for iv, v in ivs.items()}
    run.write(EntryInfo(name="pcc", hash="p", method="pcc"), flat, provenance=provenance({}), extra={"pool": names})
    run.write_json("pcc.json", {"pcc": pcc, "pool": names})
    run.write_summary([], "| metric | relearn |\n|---|---|\n| es_exact | 0.91 |")
    return run


def analysis_run(name: str = "analyses-synthetic") -> Run:
    """A run holding every analysis file: sweep, G-effect, layers + CRU, squeezing, continual."""
    run = Run.open("gradient", name, {"command": "gradient"})
    run.write(EntryInfo(name="ga", hash="g", method="ga"), {"e_u": Metric(-1.5), "e_r": Metric(-0.3)})
    run.write_summary([], "G-effect table")
    run.write_json("sweep.json", {"all": [["origin", 0.9, 0.5, 0.6, 0.4, 0.5, "kl"],
                                          ["LR", 0.9, 0.3, 0.6, 0.4, 0.4, "kl@LR=0.0004"],
                                          ["LR", 0.9, 0.6, 0.6, 0.4, 0.7, "kl@LR=0.0001"],
                                          ["BS", 0.9, 0.45, 0.6, 0.4, 0.5, "kl@BS=4"]]})
    eff = lambda v: {"e_u": {"total": v, "layer.0": v / 2}, "e_r": {"total": -v / 4, "layer.0": -v / 8}}  # noqa: E731
    run.write_json("g_effect.json", {"methods": {"ga": {"records": [{"step": s, "effects": {"forget": eff(-s - 1.0)}}
                                                                   for s in range(4)]}}})
    summ = {"mu": 0.8, "fq_log_p": -3.0, "forget_es_exact": 0.5, "retain_es_exact": 0.9}
    run.write_json("layers.json", {"baselines": {"original": {**summ, "forget_es_exact": 1.0},
                                                 "unlearned": {**summ, "mu": 0.3, "forget_es_exact": 0.1}},
                                   "sweep": {"embedding": summ, "layer.0": {**summ, "mu": 0.6}, "head": summ},
                                   "cru": {"k": 1, "groups_from_unlearned": ["layer.0"],
                                           "candidates_validation": [{"k": 0, "mu": 0.8, "fq_log_p": -3.0},
                                                                     {"k": 1, "mu": 0.7, "fq_log_p": -1.0}],
                                           "test": {"original": summ, "unlearned": summ, "cru": summ}}})
    band = lambda v: {"tok": v, "n": 4}  # noqa: E731
    run.write_json("squeezing.json", {"methods": {"ga": {"records": [
        {"step": s, "target": band(-1.0 - s), "paraphrase": band(-1.5 - s / 2), "high": band(-0.5 + s / 10),
         "mid": band(-2.0), "low": band(None)} for s in range(3)]}}})
    run.write_json("continual.json", {"stages": 2, "curves": {"ga__s0": [
        {"stage": j, "mu": 0.9 - 0.2 * j, "retain_es_exact": 1.0 - 0.1 * j, "forget_es_exact": 1.0 - 0.4 * j,
         "forget_es_done": None if j == 0 else 0.2, "fq_log_p": -10.0 + 4 * j} for j in range(3)]}})
    return run


def vision_run(name: str = "vision-synthetic") -> Run:
    """Two scenarios × (Original, Retrain, FT with 2 seeds, TARF with identification)."""
    higher = {"UA": None, "RA": True, "TA": True, "MIA": None, "Gap": False, "TIME": False}
    run = Run.open("vision", name, {"methods": ["retrain", "ft", "tarf"]})
    specs, values = [], {}
    for sc, title in (("all_matched", "All matched"), ("data_mismatch", "Data mismatch")):
        per = {}
        for m, seeds, gap in (("original", [0], 30.0), ("retrain", [0], 0.0), ("ft", [0, 1], 4.0), ("tarf", [0], 2.0)):
            for s in seeds:
                e = f"{sc}__{m}__s{s}"
                agg = {"UA": 50.0, "RA": 90.0 + s, "TA": 80.0, "MIA": 40.0, "Gap": gap + s, "TIME": 1.0}
                extra = {"description": f"{title} scenario", "method": m}
                if m == "tarf":
                    extra["log"] = {"identified": ["beta"], "hidden_truth": ["beta", "gamma"], "precision": 100.0,
                                    "recall": 50.0}
                rec = run.write(EntryInfo(name=e, hash=f"v-{e}", method=m, seed=s, group=sc),
                                {k: Metric(v, None, higher[k]) for k, v in agg.items()}, extra=extra)
                values[e] = rec.aggregates
                per.setdefault(m, []).append(e)
        cols = [column(k, k) for k in ("UA", "RA", "TA", "MIA")] + [column("Gap ↓", "Gap", sd=True),
                                                                   column("TIME (s) ↓", "TIME")]
        rows = [row("Original θ_o", per["original"], ["TIME"]), row("Retrain (ref.)", per["retrain"], ["Gap"]),
                row("FT", per["ft"]), row("TARF", per["tarf"])]
        specs.append(table_spec(cols, rows, title=f"{title} — {title} scenario", digits=2, label_seeds=False)
                     | {"corner": "Method"})
    run.write_summary(specs, render_tables(specs, values))
    return run
