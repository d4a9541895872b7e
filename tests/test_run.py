"""`unlearnkit run` end to end on the tiny benchmark: table, files, resume, kill, changed config,
NaN, failures, several seeds, save_models=false, presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from unlearnkit.config import load_config
from unlearnkit.errors import UnlearnkitError
from unlearnkit.recipes.lm import RunConfig, run_benchmark, validate_methods
from unlearnkit.results.index import RunIndex
from unlearnkit.results.layout import entry_name

from .conftest import tiny_build_config

ROOT = Path(__file__).resolve().parents[1]


def tiny_run(**over) -> RunConfig:
    data = {"build": tiny_build_config().model_dump(), "methods": ["ga", "gd"],
            "defaults": {"lr": 1e-3, "epochs": 2, "batch_size": 4}, "eval": {"max_new_tokens": 24}}
    data.update(over)
    return RunConfig.model_validate(data)


@pytest.fixture(scope="module")
def finished(tiny_models):
    return run_benchmark(tiny_run(name="e2e"), say=lambda s: None)


def test_run_produces_the_table_and_every_file(finished):
    run, table = finished.run, finished.table
    assert not finished.failures and list(finished.results) == ["Original", "Retrain", "ga", "gd"]
    for col in ("ES-exact retain ↑", "ES-exact unlearn ↓", "ES-perturb retain ↑", "ES-perturb unlearn ↓", "MU ↑",
                "FQ (ln p) ↑", "PrivLeak", "unlearn s"):
        assert col in table
    for entry in ("original", "retrain", "ga__s0", "gd__s0"):
        res = json.loads(run.layout.result_file(entry).read_text())
        assert res["aggregates"]["forget.es_exact"]["n"] == 10 and res["provenance"]["libraries"]["torch"]
        assert res["entry"]["hash"] and run.layout.per_sample(entry).is_file()
    for entry in ("ga__s0", "gd__s0"):
        log = json.loads(run.layout.log(entry).read_text())
        assert log["steps"] and "forget" in log["steps"][0] and log["wall_time"] > 0
        assert (run.layout.model(entry) / "model.safetensors").is_file()
    assert json.loads(run.layout.config.read_text())["methods"] == ["ga", "gd"]
    assert run.layout.table.read_text().strip() == table
    ga = finished.results["ga"][0].value("forget.es_exact")
    assert f"{ga:.4f}" in table.splitlines()[4]


def test_the_index_holds_every_entry_and_runs_show_prints_the_same_table(finished, capsys):
    from unlearnkit.cli import main

    with RunIndex() as ix:
        entries = {e.entry: e for e in ix.entries("e2e")}
        metrics = ix.metrics("e2e")
    assert set(entries) == {"original", "retrain", "ga__s0", "gd__s0"}
    assert all(e.status == "done" and e.hash for e in entries.values())
    assert entries["ga__s0"].method == "ga" and entries["ga__s0"].seed == 0
    assert metrics["ga__s0"]["forget.es_exact"].value == finished.results["ga"][0].value("forget.es_exact")
    assert metrics["ga__s0"]["forget.es_exact"].higher_is_better is False
    assert main(["runs", "show", "e2e"]) == 0
    assert finished.table in capsys.readouterr().out


def test_unlearning_lowers_forget_extraction(finished):
    orig = finished.results["Original"][0]
    assert orig.value("forget.es_exact") > 0.9
    assert finished.results["ga"][0].value("forget.es_exact") < 0.5 * orig.value("forget.es_exact")
    assert finished.results["Retrain"][0].value("fq") == 1.0


def test_tables_split_the_rows_into_titled_tables(finished):
    """The same finished run printed as two tables (each with Original and Retrain): nothing recomputed."""
    out = run_benchmark(tiny_run(name="e2e", tables={"GA column": ["ga"], "GD column": ["gd"]}), say=lambda s: None)
    first, second = out.table.split("\n\n")
    assert first.startswith("GA column\n") and "| ga " in first and "| gd " not in first and "| Original" in first
    assert second.startswith("GD column\n") and "| gd " in second and "| ga " not in second and "| Retrain" in second
    assert len(out.run.summary()["tables"]) == 2


def test_rerun_skips_finished_entries(finished, monkeypatch):
    import unlearnkit.recipes.lm.entries as L

    monkeypatch.setattr(L, "unlearn", lambda *a, **k: pytest.fail("recomputed a finished method"))
    said = []
    out = run_benchmark(tiny_run(name="e2e"), say=said.append)
    assert "ga__s0: finished earlier, skipped" in said and out.table == finished.table


def test_a_changed_config_recomputes_exactly_the_changed_entries_and_says_so(finished, monkeypatch):
    """Same run name, gd's learning rate changed: ga, Original and Retrain are reused; gd is redone."""
    import unlearnkit.recipes.lm.entries as L

    calls = []
    real = L.unlearn

    def spy(model, tok, spec, params, *a, **k):
        calls.append((spec.name, params.lr))
        return real(model, tok, spec, params, *a, **k)

    monkeypatch.setattr(L, "unlearn", spy)
    said = []
    out = run_benchmark(tiny_run(name="e2e", method_params={"gd": {"lr": 5e-4}}), say=said.append)
    assert calls == [("gd", 5e-4)]
    assert "ga__s0: finished earlier, skipped" in said
    assert any(s.startswith("gd__s0: its inputs changed") and "params.lr" in s for s in said), said
    rec = json.loads(out.run.layout.result_file("gd__s0").read_text())
    assert rec["entry"]["inputs"]["params"]["lr"] == 5e-4
    assert out.results["ga"][0].value("mu") == finished.results["ga"][0].value("mu")
    run_benchmark(tiny_run(name="e2e"), say=lambda s: None)  # back to the fixture's config for later tests


def test_a_saved_theta_u_is_reused_only_with_the_same_hash(finished, monkeypatch):
    """Results gone but θ_u saved: the same hash reuses θ_u (no unlearning); an altered θ_u is redone."""
    import unlearnkit.recipes.lm.entries as L

    run = finished.run
    run.layout.result_file("ga__s0").unlink()
    monkeypatch.setattr(L, "unlearn", lambda *a, **k: pytest.fail("θ_u was not reused"))
    said = []
    run_benchmark(tiny_run(name="e2e"), say=said.append)
    assert "ga__s0: θ_u found, evaluating" in said
    monkeypatch.undo()
    run.layout.result_file("ga__s0").unlink()
    weights = run.layout.model("ga__s0") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    said = []
    run_benchmark(tiny_run(name="e2e"), say=said.append)
    assert any("altered since it was made" in s for s in said) and "ga__s0: unlearning with ga (none retain term)" in said


def test_killed_run_resumes_without_recomputing(tiny_models, tmp_path):
    """SIGKILL right after the first method finished; the restart keeps it and completes the rest."""
    cfg = tiny_run(name="killed").model_dump()
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "UNLEARNKIT_KILL_AFTER_ENTRY": "ga__s0"}
    cmd = [sys.executable, "-m", "unlearnkit", "run", "--config", str(path)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == -9, first.stderr[-2000:]
    run_dir = Path(os.environ["UNLEARNKIT_HOME"]) / "runs" / "killed"
    ga_result = run_dir / "results" / "ga__s0" / "results.json"
    assert ga_result.is_file() and not (run_dir / "results" / "gd__s0").exists()
    assert not (run_dir / "summary.json").exists()
    stamp = ga_result.stat().st_mtime_ns
    env.pop("UNLEARNKIT_KILL_AFTER_ENTRY")
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "ga__s0: finished earlier, skipped" in second.stdout
    assert ga_result.stat().st_mtime_ns == stamp
    assert (run_dir / "results" / "gd__s0" / "results.json").is_file()
    assert not list(run_dir.rglob("*.tmp"))
    assert "| gd " in second.stdout and f"results: {run_dir}" in second.stdout


def _register_nan_method():
    from unlearnkit.methods import MethodSpec, register
    from unlearnkit.methods.llm.base import LMObjective, LMParams
    from unlearnkit.methods.llm.ga import ga_forget

    def nan_forget(inp):
        loss, terms = ga_forget(inp)
        return loss * torch.tensor(float("nan")), terms

    register(MethodSpec(name="nantest", domain="llm", summary="test only", params=LMParams, fn=LMObjective(nan_forget)))


def test_nan_loss_stops_that_method_is_skipped_on_rerun_and_retried_on_request(tiny_models):
    from unlearnkit.methods import METHODS

    _register_nan_method()
    try:
        said = []
        out = run_benchmark(tiny_run(name="nan", methods=["nantest", "ga"]), say=said.append)
        assert "ga" in out.results and "nantest" in out.failures and "loss became nan" in out.failures["nantest"]
        assert any("STOPPED" in s and "continuing with the other methods" in s for s in said)
        log = json.loads(out.run.layout.log("nantest__s0").read_text())
        assert "loss became nan" in log["error"]
        assert "nantest (failed)" in out.table
        with RunIndex() as ix:
            assert {e.entry: e.status for e in ix.entries("nan")}["nantest__s0"] == "failed"
        said = []
        run_benchmark(tiny_run(name="nan", methods=["nantest", "ga"]), say=said.append)
        assert any(s.startswith("nantest__s0: failed earlier") and "--retry-failed" in s for s in said)
        said = []
        run_benchmark(tiny_run(name="nan", methods=["nantest", "ga"]), say=said.append, retry_failed=True)
        assert any(s.startswith("nantest__s0: unlearning with") for s in said)
    finally:
        METHODS._items.pop("llm:nantest")


def test_several_seeds_average_into_one_row_and_save_models_false_keeps_only_digests(tiny_models):
    out = run_benchmark(tiny_run(name="seeds", methods=["ga"], seeds=[0, 1], save_models=False,
                                 defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4}), say=lambda s: None)
    rs = out.results["ga"]
    assert len(rs) == 2 and rs[0].value("forget.es_exact") != rs[1].value("forget.es_exact")
    mean = (rs[0].value("forget.es_exact") + rs[1].value("forget.es_exact")) / 2
    row = next(line for line in out.table.splitlines() if line.startswith("| ga"))
    assert "ga (mean of 2 seeds)" in row and f"{mean:.4f}" in row
    for s in (0, 1):
        assert not out.run.layout.model(f"ga__s{s}").exists()
        assert len(out.run.layout.model_digest(f"ga__s{s}").read_text().strip()) == 16


def test_grad_accum_keeps_the_schedule_length_in_optimiser_steps():
    """8 batches, epochs 2: grad_accum 1 → 16 optimiser steps, grad_accum 4 → 4 steps; a linear schedule
    ends at lr·(1 − (total−1)/total)… the last logged lr is the same fraction of the peak in both."""
    from unlearnkit.engine.train import schedule_length, train_loop

    def run(grad_accum: int):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        data = [(torch.randn(2, 3), torch.randn(2, 1)) for _ in range(8)]
        log = train_loop(model, data, lambda m, b: (torch.nn.functional.mse_loss(m(b[0]), b[1]), {}), lr=0.1,
                         epochs=2, grad_accum=grad_accum, schedule="linear", max_grad_norm=None)
        return log, schedule_length(8, grad_accum, 2, None)

    log1, total1 = run(1)
    log4, total4 = run(4)
    assert (total1, total4) == (16, 4) and len(log1.steps) == 16 and len(log4.steps) == 4
    assert log1.steps[-1]["lr"] == pytest.approx(0.0) and log4.steps[-1]["lr"] == pytest.approx(0.0)
    assert log4.steps[1]["lr"] == pytest.approx(0.1 * (1 - 2 / 4))  # after 2 of 4 steps: half way down


def test_bf16_precision_autocasts_the_loss_on_a_cpu_and_keeps_float32_weights():
    """precision="bf16" on a CPU: each loss is computed under bf16 autocast (a Linear's output is bfloat16) while the
    weights, their gradients' owner and the optimiser stay float32; "auto" on a CPU computes in float32. An unknown
    precision is a one-line error naming the choices."""
    from unlearnkit.engine.train import train_loop

    def run(precision: str):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        seen = []

        def loss_fn(m, b):
            out = m(b[0])
            seen.append(out.dtype)
            return torch.nn.functional.mse_loss(out.float(), b[1]), {}

        train_loop(model, [(torch.randn(2, 3), torch.randn(2, 1))] * 2, loss_fn, lr=0.1, epochs=1,
                   precision=precision)
        return seen, model.weight.dtype

    assert run("bf16") == ([torch.bfloat16] * 2, torch.float32)
    assert run("auto") == ([torch.float32] * 2, torch.float32)
    with pytest.raises(UnlearnkitError, match="precision='fp8': use one of auto, bf16"):
        run("fp8")


def test_precision_enters_hashes_only_when_set():
    """Build recipes and method knobs dump ``precision`` only when it is not auto, so models and entries made before
    the knob existed keep their hashes; bf16 changes them (a model trained in bf16 is a different model)."""
    from unlearnkit.config import TrainRecipe
    from unlearnkit.methods.llm.base import LMParams

    assert "precision" not in TrainRecipe().model_dump() and "precision" not in LMParams().model_dump()
    assert TrainRecipe(precision="bf16").model_dump()["precision"] == "bf16"
    assert LMParams(precision="bf16").model_dump()["precision"] == "bf16"


def test_unknown_method_in_a_run_suggests_close_names():
    with pytest.raises(UnlearnkitError, match="Did you mean npo"):
        validate_methods(tiny_run(methods=["npp"]))


def test_invalid_hyperparameter_in_a_run_fails_before_training():
    with pytest.raises(UnlearnkitError, match="method 'ga': config key 'lr'"):
        validate_methods(tiny_run(defaults={"lr": -1}))
    with pytest.raises(UnlearnkitError, match="loss_selection"):
        validate_methods(tiny_run(method_params={"gd": {"loss_selection": 2}}))


@pytest.mark.parametrize("preset", sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("vision")))
def test_shipped_presets_are_valid(preset):
    """Every preset validates against the config of the command it is for (by file-name prefix)."""
    from unlearnkit.analysis.reliability import ReliabilityConfig
    from unlearnkit.methods.unlearn import resolve
    from unlearnkit.recipes.sweep import SweepConfig

    if preset.startswith("reliability"):
        cfg = load_config(ReliabilityConfig, ROOT / "configs" / preset)
        assert all(resolve(m) for m in cfg.methods)
    elif preset.startswith("sweep"):
        cfg = load_config(SweepConfig, ROOT / "configs" / preset)
        assert resolve(cfg.method)
    else:
        cfg = load_config(RunConfig, ROOT / "configs" / preset)
        assert validate_methods(cfg)


def test_default_preset_is_what_run_does():
    assert load_config(RunConfig, ROOT / "configs" / "default.yaml").model_dump() == RunConfig().model_dump()


def test_unlearn_cli_saves_the_model_and_its_log_and_never_wipes_out(tiny_models, tmp_path, capsys):
    from unlearnkit.cli import main

    out = tmp_path / "u"
    args = ["unlearn", "--method", "npo+kl", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir),
            "--out", str(out), "lr=1e-3", "epochs=1", "batch_size=4"]
    assert main(args) == 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["params"]["retain"] == "kl" and log["steps"] and "retain" in log["steps"][0]
    assert (out / "model.safetensors").is_file()
    assert "θ_u:" in capsys.readouterr().out
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out  # same output: resumed
    assert main([*args[:-3], "lr=5e-4", "epochs=1", "batch_size=4"]) == 2  # another config: refused
    assert "another configuration" in capsys.readouterr().err and (out / "model.safetensors").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main([*args[:8], str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep me" and "not an unlearnkit output" in capsys.readouterr().err


def test_entry_names_are_filesystem_safe():
    assert entry_name("npo+kl", 3) == "npo_plus_kl__s3"
    assert entry_name("kl@TS=2", 0) == "kl_at_TS-2__s0"
    assert entry_name("ft", 1, "all_matched") == "all_matched__ft__s1"


@pytest.mark.parametrize("bad", ["../../escape", "/abs/path", "a/b", ".hidden", ""])
def test_run_names_are_one_safe_path_component(bad):
    with pytest.raises(Exception, match="not allowed"):
        tiny_run(name=bad)
