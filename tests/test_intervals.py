"""The spread beside every number: golden values of the interval arithmetic (t over seeds, percentile bootstrap
over eval samples, paired differences), the composite metrics recomputed on resamples with the evaluation's own
functions, the ``value ± half-width`` cells of run tables, and the ``*`` / ``~`` marks of `runs compare` and the
HTML report (docs/metrics.md, "Intervals and noise")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unlearnkit import metrics as M
from unlearnkit.engine.mia import add_mia_aucs
from unlearnkit.engine.result import EvalResult, aggregate_of
from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.intervals import (
    Interval,
    bootstrap,
    inside_noise,
    overlap,
    paired_difference,
    percentile_interval,
    resample_indices,
    t_interval,
)
from unlearnkit.results.eval import write_eval
from unlearnkit.results.intervals import add_intervals, entry_interval
from unlearnkit.results.noise import LEGEND, REPLICATES_FILE
from unlearnkit.results.store import EntryInfo, Run
from unlearnkit.results.tables import column, lm_columns, render_tables, row, table_spec, tables_as_data
from unlearnkit.tasks import get_task
from unlearnkit.tasks.tofu_eval import MU_PARTS, compare_to_reference
from unlearnkit.tasks.tofu_eval import tofu_statistic as bootstrap_statistic

TOFU = get_task("tofu")
T_975_2 = 4.302652729749462  # scipy.stats.t.ppf(0.975, 2)
T_975_1 = 12.706204736174694  # scipy.stats.t.ppf(0.975, 1)


# ---------------------------------------------------------------------------------------------
# the interval arithmetic


def test_t_interval_of_three_seeds() -> None:
    """values [1, 2, 3]: mean 2, sd = sqrt(((1−2)² + 0 + (3−2)²) / 2) = 1, t_{0.975, 2} = 4.302653,
    half-width 4.302653 · 1 / √3 = 2.484138 → [−0.484138, 4.484138]."""
    iv = t_interval([1.0, 2.0, 3.0])
    assert iv.value == 2.0 and iv.method == "t" and iv.n == 3
    assert iv.half_width == pytest.approx(T_975_2 / math.sqrt(3)) == pytest.approx(2.4841377, abs=1e-7)
    assert (iv.lo, iv.hi) == pytest.approx((2.0 - 2.4841377, 2.0 + 2.4841377), abs=1e-7)


def test_t_interval_of_two_seeds() -> None:
    """values [0.2, 0.4]: mean 0.3, sd = sqrt((0.1² + 0.1²) / 1) = 0.141421, t_{0.975, 1} = 12.706205,
    half-width 12.706205 · 0.141421 / √2 = 12.706205 · 0.1 = 1.270620."""
    iv = t_interval([0.2, 0.4])
    assert iv.value == pytest.approx(0.3) and iv.half_width == pytest.approx(T_975_1 * 0.1) == pytest.approx(1.2706205)


def test_t_interval_needs_two_seeds_and_a_level_in_0_1() -> None:
    with pytest.raises(UnlearnkitError, match="at least two values"):
        t_interval([1.0])
    with pytest.raises(UnlearnkitError, match="level must lie in"):
        t_interval([1.0, 2.0], level=95)


def test_percentile_bootstrap_by_hand() -> None:
    """values [1, 2, 4] (mean 7/3), seed 0, 4 resamples. resample_indices draws (pinned: the same on every
    machine and for every entry of these sizes) [1 2 0], [2 0 2], [1 0 0], [1 0 0] → resampled values
    [2 4 1], [4 1 4], [2 1 1], [2 1 1] → means 7/3, 3, 4/3, 4/3; sorted 4/3, 4/3, 7/3, 3.
    numpy's linear quantile at q sits at position q · (4 − 1): q = 0.025 → 0.075, between 4/3 and 4/3 → 4/3;
    q = 0.975 → 2.925 → 7/3 + 0.925 · (3 − 7/3) = 2.95. Half-width (2.95 − 4/3) / 2 = 0.808333."""
    idx = resample_indices({"a": 3}, resamples=4, seed=0)["a"]
    assert idx.tolist() == [[1, 2, 0], [2, 0, 2], [1, 0, 0], [1, 0, 0]]
    v = np.array([1.0, 2.0, 4.0])
    iv, reps = bootstrap(lambda i: v[i["a"]].mean(axis=-1), {"a": 3}, 7 / 3, resamples=4, seed=0)
    assert reps.tolist() == pytest.approx([7 / 3, 3.0, 4 / 3, 4 / 3])
    assert (iv.lo, iv.hi, iv.value) == pytest.approx((4 / 3, 2.95, 7 / 3))
    assert iv.half_width == pytest.approx(0.8083333) and iv.method == "bootstrap" and iv.n == 4


def test_resampling_is_deterministic_and_per_eval_set() -> None:
    a = resample_indices({"forget": 40, "holdout": 40})
    b = resample_indices({"holdout": 40, "forget": 40, "retain": 7})
    assert a["forget"].shape == (1000, 40) and np.array_equal(a["forget"], b["forget"])
    assert not np.array_equal(a["forget"], a["holdout"])  # the sets are resampled independently
    assert not np.array_equal(a["forget"], resample_indices({"forget": 40}, seed=1)["forget"])
    with pytest.raises(UnlearnkitError, match="no samples"):
        resample_indices({"forget": 0})


def test_a_statistic_that_does_not_reproduce_the_value_gets_no_interval() -> None:
    """The bootstrap first evaluates the statistic on the samples as they are: the mean of [1, 2, 4] is 7/3, so
    a statistic for "2.0" computes another metric and there is no interval rather than a wrong one."""
    v = np.array([1.0, 2.0, 4.0])
    iv, reps = bootstrap(lambda i: v[i["a"]].mean(axis=-1), {"a": 3}, 2.0)
    assert iv is None and reps.size == 0


def test_non_finite_replicates_give_no_interval() -> None:
    assert percentile_interval(1.0, [1.0, np.nan, 2.0]) is None
    assert percentile_interval(1.0, [1.0, 2.0]) == Interval(1.0, 1.025, 1.975, "bootstrap", 2)


def test_inside_the_noise_paired_and_by_overlap() -> None:
    """Replicates a = [1, 2, 3, 4, 5] and b = a − 0.5 (the same resamples, each 0.5 lower): their own intervals
    [1.1, 4.9] and [0.6, 4.4] overlap, but every paired difference is 0.5, so the difference's interval is
    [0.5, 0.5], which excludes 0: outside the noise. Without replicates the overlap decides: [0, 1] and [1, 2]
    touch (inside), [0, 1] and [1.01, 2] do not (outside); no interval → None."""
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = a - 0.5
    ia, ib = percentile_interval(3.0, a), percentile_interval(2.5, b)
    assert (ia.lo, ia.hi, ib.lo, ib.hi) == pytest.approx((1.1, 4.9, 0.6, 4.4)) and overlap(ia, ib)
    assert paired_difference(a, b) == pytest.approx((0.5, 0.5))
    assert inside_noise(ia, ib, a, b) is False and inside_noise(ia, ib) is True
    assert inside_noise(ia, ib, a, a[::-1]) is True  # differences −4 … 4: contains 0
    one, two, three = (Interval(0.5, 0.0, 1.0, "t", 2), Interval(1.5, 1.0, 2.0, "t", 2),
                       Interval(1.5, 1.01, 2.0, "t", 2))
    assert inside_noise(one, two) is True and inside_noise(one, three) is False and inside_noise(one, None) is None


# ---------------------------------------------------------------------------------------------
# the project's aggregate functions on (resamples, samples) rows


def test_aggregates_of_rows_are_the_aggregates_of_each_row() -> None:
    """truth_ratio_retain [[0.5, 2], [0, 1]] = [mean(0.5, 0), mean(1, 0)] = [0.25, 0.5];
    truth_ratio_forget [[0.5, 2]] = mean(min(0.5, 2), min(2, 0.5)) = 0.5; harmonic means of the components
    (1, 0.5, 0.25) and (1, 0, 0.5): 3 / (1 + 2 + 4) = 3/7 and 0 (a zero component)."""
    assert M.truth_ratio_retain([[0.5, 2.0], [0.0, 1.0]]).tolist() == [0.25, 0.5]
    assert M.truth_ratio_forget([[0.5, 2.0]]).tolist() == [0.5]
    hm = M.harmonic_mean([np.array([1.0, 1.0]), np.array([0.5, 0.0]), np.array([0.25, 0.5])])
    assert hm.tolist() == pytest.approx([3 / 7, 0.0])
    assert isinstance(M.truth_ratio_retain([0.5, 2.0]), float)  # one evaluation: still a float


def test_mia_auc_rows_equal_sklearn_row_by_row_with_ties() -> None:
    rng = np.random.default_rng(3)
    mem, non = rng.integers(0, 4, (50, 12)).astype(float), rng.integers(0, 4, (50, 9)).astype(float)
    rows = M.mia_auc(mem, non)
    assert rows.shape == (50,)
    assert rows == pytest.approx([M.mia_auc(m, n) for m, n in zip(mem, non)], abs=1e-12)
    assert M.privleak(np.array([0.6, 0.4]), np.array([0.5, 0.5])).tolist() == pytest.approx([-20.0, 20.0])
    assert np.isnan(M.privleak(np.array([0.6]), np.array([1.0]))[0])  # undefined replicate: NaN, not an error


def test_forget_quality_rows_equal_the_test_row_by_row() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(0, 1, (20, 15)), rng.lognormal(0.5, 1, (20, 15))
    fq = M.forget_quality(a, b)
    assert fq.log_pvalue == pytest.approx([M.forget_quality(x, y).log_pvalue for x, y in zip(a, b)], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# composite metrics recomputed from resampled per-sample values (paired with θ_r)


def synthetic(seed: int, shift: float = 0.0, n: int = 30, m: int = 15) -> EvalResult:
    """A TOFU evaluation with hand-chosen per-sample values and its aggregates by the evaluation's functions."""
    rng = np.random.default_rng(seed)

    def unit(k: int) -> list[float]:
        return np.clip(rng.random(k) + shift, 0.0, 1.0).tolist()

    def mia(k: int, centre: float) -> dict:
        return {f"mia_{a}": rng.normal(centre, 1.0, k).tolist() for a in ("loss", "zlib", "min_k", "min_k_plus_plus")}

    def qa(k: int) -> dict:
        return {"es_exact": unit(k), "es_perturb": unit(k), "em": unit(k), "prob": unit(k), "para_prob": unit(k),
                "truth_ratio": rng.lognormal(shift, 1.0, k).tolist(), "rouge": unit(k)}

    def util(k: int) -> dict:
        return {"norm_prob": unit(k), "truth_ratio": rng.lognormal(-1.0, 1.0, k).tolist(), "rouge": unit(k)}

    res = EvalResult(forget="forget10")
    res.per_sample = {"forget": {**qa(n), **mia(n, 1.0 + shift)}, "retain": qa(n), "holdout": mia(n, 0.0),
                      "ra": util(m), "wf": util(m)}
    for role, names in (("forget", ("es_exact", "es_perturb", "truth_ratio")),
                        ("retain", ("es_exact", "es_perturb", "prob", "rouge", "truth_ratio")),
                        ("ra", ("norm_prob", "rouge", "truth_ratio")), ("wf", ("norm_prob", "rouge", "truth_ratio"))):
        for name in names:
            res.add(f"{role}.{name}", aggregate_of(f"{role}.{name}", res.per_sample), len(res.per_sample[role][name]),
                    True)
    add_mia_aucs(res)
    res.add("mu", M.model_utility({p: res.value(k) for p, k in MU_PARTS.items()}), n + 2 * m, True)
    return res


@pytest.fixture(scope="module")
def evals() -> dict[str, EvalResult]:
    ref = compare_to_reference(synthetic(0), synthetic(0))
    out = {"retrain": ref}
    for i, name in enumerate(("original", "ga__s0", "gd__s0"), start=1):
        out[name] = compare_to_reference(synthetic(i, 0.1 * i), ref)
    return out


def _resampled(res: EvalResult, idx: dict[str, np.ndarray], b: int) -> dict:
    """Per-sample lists of resample ``b`` (one row of the indices), for the one-evaluation functions."""
    return {role: {k: [v[i] for i in idx[role][b]] for k, v in ps.items()} for role, ps in res.per_sample.items()
            if role in idx}


def test_mu_replicates_are_mu_of_the_resampled_samples(evals) -> None:
    """Replicate b of MU = model_utility of the nine aggregates of resample b, computed one evaluation at a time
    (the functions `unlearnkit run` reports with) — the bootstrap re-implements nothing."""
    res = evals["gd__s0"]
    sizes, stat = bootstrap_statistic("mu", res, evals["retrain"])
    assert sizes == {"retain": 30, "ra": 15, "wf": 15}
    idx = resample_indices(sizes)
    reps = stat(idx)
    for b in (0, 1, 999):
        ps = _resampled(res, idx, b)
        assert reps[b] == pytest.approx(M.model_utility({p: aggregate_of(k, ps) for p, k in MU_PARTS.items()}),
                                        abs=1e-12)
    identity = {r: np.arange(n)[None, :] for r, n in sizes.items()}
    assert stat(identity)[0] == pytest.approx(res.value("mu"), abs=1e-12)


def test_fq_and_privleak_resample_the_reference_with_the_same_indices(evals) -> None:
    """FQ replicate b = ln p of KS(model's forget truth ratios at indices b, θ_r's at the SAME indices b);
    PrivLeak replicate b = privleak(Min-K% AUC of the model on resample b, of θ_r on resample b). θ_r against
    itself: every replicate is 0 (p = 1, equal AUCs)."""
    res, ref = evals["ga__s0"], evals["retrain"]
    sizes, fq = bootstrap_statistic("fq_log_p", res, ref)
    idx = resample_indices(sizes)
    reps = fq(idx)
    for b in (0, 7):
        f, r = _resampled(res, idx, b), _resampled(ref, idx, b)
        assert reps[b] == pytest.approx(M.forget_quality(f["forget"]["truth_ratio"],
                                                         r["forget"]["truth_ratio"]).log_pvalue, abs=1e-9)
    sizes, pl = bootstrap_statistic("privleak", res, ref)
    assert sizes == {"forget": 30, "holdout": 30}
    idx = resample_indices(sizes)
    f, r = _resampled(res, idx, 3), _resampled(ref, idx, 3)
    assert pl(idx)[3] == pytest.approx(M.privleak(M.mia_auc(f["forget"]["mia_min_k"], f["holdout"]["mia_min_k"]),
                                                  M.mia_auc(r["forget"]["mia_min_k"], r["holdout"]["mia_min_k"])))
    for key in ("fq_log_p", "privleak"):
        iv, reps = entry_interval(TOFU, ref, ref, key)
        assert (iv.lo, iv.hi) == (0.0, 0.0) and not reps.any()


def test_what_cannot_be_recomputed_gets_no_interval(evals) -> None:
    res = evals["gd__s0"]
    assert bootstrap_statistic("fq_log_p", res, None) is None  # FQ needs θ_r's per-sample truth ratios
    assert bootstrap_statistic("unlearn_seconds", res, None) is None
    assert bootstrap_statistic("judge.naturalness", res, None) is None
    assert entry_interval(TOFU, res, evals["retrain"], "forget.em") == (None, pytest.approx(np.empty(0)))


def test_muse_and_wmdp_columns_get_their_intervals() -> None:
    """MUSE: VerbMem / KnowMem are means of per-sample ROUGE-L F1; PrivLeak and the Min-K% AUC use its own
    member / non-member sets (privleak_forget / privleak_holdout). WMDP: accuracy = mean of 0/1 correctness."""
    from unlearnkit.engine.mia import add_privleak

    rng = np.random.default_rng(5)

    def muse(shift: float) -> EvalResult:
        res = EvalResult(forget="forget")
        res.per_sample = {"verbmem": {"rouge": rng.random(12).tolist()}, "knowmem_forget": {"rouge": rng.random(9).tolist()},
                          "knowmem_retain": {"rouge": rng.random(9).tolist()},
                          "privleak_forget": {a: rng.normal(shift, 1, 10).tolist() for a in ("mia_loss", "mia_min_k")},
                          "privleak_holdout": {a: rng.normal(0, 1, 10).tolist() for a in ("mia_loss", "mia_min_k")}}
        for key in ("verbmem.rouge", "knowmem_forget.rouge", "knowmem_retain.rouge"):
            res.add(key, float(np.mean(res.per_sample[key.split(".")[0]]["rouge"])), 10, False)
        add_mia_aucs(res, "privleak_forget", "privleak_holdout")
        return res

    ref, res = muse(0.0), muse(1.0)
    add_privleak(res, ref, members="privleak_forget", nonmembers="privleak_holdout")
    task = get_task("muse")
    for _, metric in task.columns:
        iv, reps = entry_interval(task, res, ref, metric)
        assert iv is not None and reps.shape == (1000,) and iv.lo <= res.value(metric) <= iv.hi, metric
    wmdp = EvalResult(forget="forget")
    wmdp.per_sample = {"forget_mc": {"acc": [True, False, True, True]}}
    wmdp.add("forget_mc.acc", 0.75, 4, False)
    iv, _ = entry_interval(get_task("wmdp"), wmdp, None, "forget_mc.acc")
    assert 0.0 <= iv.lo <= 0.75 <= iv.hi <= 1.0


# ---------------------------------------------------------------------------------------------
# run tables: value ± half-width, and the marks of comparisons


def _lm_run(name: str, evals: dict[str, EvalResult], eval_set: dict | None = None, ci: bool = True) -> Run:
    """A run written through the results API like `unlearnkit run` writes one (no model trained)."""
    run = Run.open("lm", name, {"methods": ["ga", "gd"]})
    for e, res in evals.items():
        write_eval(run, EntryInfo(name=e, hash=f"h-{name}-{e}", method=e.split("__")[0]), res, {})
    rows = [row("Original", ["original"]), row("Retrain", ["retrain"]), row("ga", ["ga__s0"]), row("gd", ["gd__s0"])]
    specs = [table_spec(lm_columns(TOFU.columns, seconds=False, ci=ci), rows)]
    if ci:
        add_intervals(run, specs, TOFU, evals, "retrain", eval_set or {"task": "tofu", "data": "d1", "forget": "f"})
    values = {e: r.aggregates for e, r in evals.items()}
    run.write_summary(specs, render_tables(specs, values))
    return run


def test_run_table_prints_value_plus_minus_half_width(tmp_path, monkeypatch, evals) -> None:
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    run = _lm_run("lm-ci", evals)
    spec = run.summary()["tables"][0]
    assert spec["intervals"]["resamples"] == 1000 and spec["intervals"]["seed"] == 0
    mu_iv, _ = entry_interval(TOFU, evals["gd__s0"], evals["retrain"], "mu")
    gd = next(r for r in spec["rows"] if r["label"] == "gd")
    assert gd["ci"]["mu"] == pytest.approx([mu_iv.lo, mu_iv.hi])
    text = run.layout.table.read_text()
    assert f"{evals['gd__s0'].value('mu'):.4f} ± {mu_iv.half_width:.4f}" in text
    assert "| Retrain  |" in text and "0.0000 ± 0.0000" in text  # FQ and PrivLeak of θ_r against itself
    data = tables_as_data(run.summary()["tables"], {e: r.aggregates for e, r in evals.items()})
    got = next(r for r in data[0]["rows"] if r["label"] == "gd")["intervals"]["mu"]
    assert got["method"] == "bootstrap" and got["half_width"] == pytest.approx(mu_iv.half_width)
    stored = np.load(run.layout.file(REPLICATES_FILE))
    assert stored["gd__s0|mu"].shape == (1000,) and "gd__s0|unlearn_seconds" not in stored.files


def test_stored_replicates_are_reused_while_the_entries_are_unchanged(tmp_path, monkeypatch, evals) -> None:
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    run = _lm_run("lm-cache", evals)
    first = run.layout.table.read_text()

    def no_bootstrap(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr("unlearnkit.results.intervals.entry_interval", no_bootstrap)
    assert _lm_run("lm-cache", evals).layout.table.read_text() == first


def test_seed_rows_get_the_t_interval_and_old_specs_render_as_before() -> None:
    """Row ga averages 0.2 and 0.4 → 0.3000 ± 1.2706 (t_{0.975,1} · 0.1414 / √2); a ``ci`` row of one entry without
    a stored interval, and every cell of a spec without ``ci`` (runs made before intervals), print as before."""
    values = {"ga__s0": {"mu": 0.2}, "ga__s1": {"mu": 0.4}, "gd__s0": {"mu": 0.7}}
    rows = [row("ga", ["ga__s0", "ga__s1"]), row("gd", ["gd__s0"])]
    new = render_tables([table_spec([column("MU ↑", "mu", ci=True)], rows)], values)
    old = render_tables([table_spec([column("MU ↑", "mu")], rows)], values)
    assert "| ga (mean of 2 seeds) | 0.3000 ± 1.2706 |" in new and "| gd                   |          0.7000 |" in new
    assert "| ga (mean of 2 seeds) | 0.3000 |" in old and "±" not in old
    assert render_tables([table_spec([column("Gap ↓", "mu", sd=True)], rows)], values).count("0.3000 ± 0.1414") == 1


def _shifted(res: EvalResult, by) -> EvalResult:
    """``res`` with its retain ES-exact samples moved by ``by`` (a number: the same for every sample; or one per
    sample), on the same samples."""
    out = EvalResult(forget=res.forget, notes=dict(res.notes))
    out.per_sample = {r: dict(ps) for r, ps in res.per_sample.items()}
    old = np.asarray(res.per_sample["retain"]["es_exact"])
    out.per_sample["retain"]["es_exact"] = (old + np.broadcast_to(by, old.shape)).tolist()
    out.aggregates = dict(res.aggregates)
    out.add("retain.es_exact", aggregate_of("retain.es_exact", out.per_sample), old.size, True)
    return out


def test_runs_compare_marks_the_best_and_what_lies_inside_its_noise(tmp_path, monkeypatch, capsys, evals) -> None:
    """Run A's gd is its ga with every retain ES-exact sample 0.02 higher; run B (the same eval samples) has ga
    0.001 above A's ga on every sample, and gd = A's gd. Retain ES-exact ↑: the best is A's gd (= B's gd, both
    ``*``); A's ga is 0.02 lower on every resample — the paired difference's interval is [0.02, 0.02], outside
    the noise, although the two intervals overlap almost entirely; B's ga likewise (0.019). With B on other eval
    samples (another pairing key) only overlap can decide for B's rows: B's ga becomes ``~``, A's ga stays
    unmarked (paired with A's gd, the first best row)."""
    from unlearnkit.cli import main

    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    ga = evals["ga__s0"]
    a = {"original": evals["original"], "retrain": evals["retrain"], "ga__s0": ga, "gd__s0": _shifted(ga, 0.02)}
    b = {**a, "ga__s0": _shifted(ga, 0.001)}
    _lm_run("run-a", a)
    _lm_run("run-b", b)
    assert main(["runs", "compare", "run-a", "run-b", "--metrics", "retain.es_exact", "--json"]) == 0
    rows = {r["label"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["run-a: gd"]["marks"] == {"retain.es_exact": "best"} == rows["run-b: gd"]["marks"]
    assert rows["run-a: ga"]["marks"] == {} and rows["run-b: ga"]["marks"] == {}
    assert rows["run-a: Original"]["marks"] == {}  # references never compete
    _lm_run("run-b", b, eval_set={"task": "tofu", "data": "d2", "forget": "f"})
    assert main(["runs", "compare", "run-a", "run-b", "--metrics", "retain.es_exact"]) == 0
    out = capsys.readouterr().out
    line = {r.split("|")[1].strip(): r for r in out.splitlines() if r.startswith("| run-")}
    assert line["run-b: ga"].rstrip(" |").endswith("~") and line["run-a: gd"].rstrip(" |").endswith("*")
    assert not line["run-a: ga"].rstrip(" |").endswith(("~", "*")) and out.rstrip().endswith(LEGEND)
    iv_a = entry_interval(TOFU, ga, evals["retrain"], "retain.es_exact")[0]
    assert f"{ga.value('retain.es_exact'):.4f} ± {iv_a.half_width:.4f} |" in line["run-a: ga"]


def test_runs_without_intervals_compare_as_before(tmp_path, monkeypatch, capsys, evals) -> None:
    from unlearnkit.cli import main

    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    _lm_run("old-a", evals, ci=False)
    _lm_run("old-b", evals, ci=False)
    assert main(["runs", "compare", "old-a", "old-b"]) == 0
    out = capsys.readouterr().out
    assert "±" not in out and "~" not in out and LEGEND not in out and " *" not in out


def test_report_marks_cells_inside_the_noise_of_the_best(tmp_path, monkeypatch, evals) -> None:
    from unlearnkit.recipes.report import report

    from .test_report import Page

    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    ga = evals["ga__s0"]
    jitter = np.where(np.arange(30) % 2 == 0, 0.01, -0.009)  # gd: mean +0.0005 above ga, sample by sample ±0.01
    _lm_run("rep", {"original": evals["original"], "retrain": evals["retrain"], "ga__s0": ga,
                    "gd__s0": _shifted(ga, jitter)})
    page_text = report(["rep"]).path.read_text(encoding="utf-8")
    table = Page(page_text).tables[0]
    header = [t for t, _ in table[0]]
    j = header.index("ES-exact retain ↑")
    cells = {r[0][0]: r[j] for r in table[1:]}
    assert "best" in cells["gd"][1] and "tie" in cells["ga"][1] and cells["ga"][0].endswith(" ~")
    assert "±" in cells["ga"][0] and "inside the noise" in page_text
