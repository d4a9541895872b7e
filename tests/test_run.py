"""`unlearnkit run` end to end on the tiny benchmark: table, files, resume, kill, NaN, presets."""

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
from unlearnkit.run import RunConfig, entry_name, run_benchmark, validate_methods

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
    run, rows, failures, table = finished
    assert not failures and list(rows) == ["Original", "Retrain", "ga", "gd"]
    for col in ("ES-exact retain ↑", "ES-exact unlearn ↓", "ES-perturb retain ↑", "ES-perturb unlearn ↓", "MU ↑",
                "FQ (ln p) ↑", "PrivLeak", "unlearn s"):
        assert col in table
    for entry in ("original", "retrain", "ga__s0", "gd__s0"):
        res = json.loads((run.dir / "results" / entry / "results.json").read_text())
        assert res["aggregates"]["forget.es_exact"]["n"] == 10 and res["provenance"]["libraries"]["torch"]
        assert (run.dir / "results" / entry / "per_sample.jsonl").is_file()
    for entry in ("ga__s0", "gd__s0"):
        log = json.loads((run.dir / "logs" / f"{entry}.json").read_text())
        assert log["steps"] and "forget" in log["steps"][0] and log["wall_time"] > 0
        assert (run.dir / "models" / entry / "model.safetensors").is_file()
    assert json.loads((run.dir / "config.json").read_text())["methods"] == ["ga", "gd"]
    assert (run.dir / "table.md").read_text().strip() == table
    summary = json.loads((run.dir / "summary.json").read_text())
    assert summary["rows"]["ga"]["aggregates"]["forget.es_exact"] == rows["ga"][0][0].value("forget.es_exact")


def test_unlearning_lowers_forget_extraction(finished):
    _, rows, _, _ = finished
    orig = rows["Original"][0][0]
    assert orig.value("forget.es_exact") > 0.9
    assert rows["ga"][0][0].value("forget.es_exact") < 0.5 * orig.value("forget.es_exact")
    assert rows["Retrain"][0][0].value("fq") == 1.0


def test_rerun_skips_finished_entries(finished, monkeypatch):
    import unlearnkit.engine.unlearn as U

    monkeypatch.setattr(U, "unlearn", lambda *a, **k: pytest.fail("recomputed a finished method"))
    said = []
    run, rows, _, table = run_benchmark(tiny_run(name="e2e"), say=said.append)
    assert "ga__s0: finished earlier, skipped" in said and table == finished[3]


def test_killed_run_resumes_without_recomputing(tiny_models, tmp_path):
    """SIGKILL right after the first method finished; the restart keeps it and completes the rest."""
    cfg = tiny_run(name="killed").model_dump()
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "UNLEARNKIT_KILL_AFTER_ENTRY": "ga__s0"}
    cmd = [sys.executable, "-m", "unlearnkit.cli", "run", "--config", str(path)]
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


def test_nan_loss_stops_that_method_keeps_its_log_and_continues(tiny_models):
    from unlearnkit.methods import METHODS, MethodSpec, register
    from unlearnkit.methods.llm.base import LMObjective, LMParams
    from unlearnkit.methods.llm.ga import ga_forget

    def nan_forget(inp):
        loss, terms = ga_forget(inp)
        return loss * torch.tensor(float("nan")), terms

    register(MethodSpec(name="nantest", domain="llm", summary="test only", params=LMParams, fn=LMObjective(nan_forget)))
    try:
        said = []
        run, rows, failures, table = run_benchmark(tiny_run(name="nan", methods=["nantest", "ga"]), say=said.append)
    finally:
        METHODS._items.pop("llm:nantest")
    assert "ga" in rows and "nantest" in failures and "loss became nan" in failures["nantest"]
    assert any("STOPPED" in s and "continuing with the other methods" in s for s in said)
    log = json.loads((run.dir / "logs" / "nantest__s0.json").read_text())
    assert "loss became nan" in log["error"]
    assert "nantest (failed)" in table


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
    from unlearnkit.analysis.sweep import SweepConfig
    from unlearnkit.engine.unlearn import resolve

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


def test_unlearn_cli_saves_the_model_and_its_log(tiny_models, tmp_path, capsys):
    from unlearnkit.cli import main

    rc = main(["unlearn", "--method", "npo+kl", "--model", str(tiny_models.original), "--data", str(tiny_models.data_dir),
               "--out", str(tmp_path / "u"), "lr=1e-3", "epochs=1", "batch_size=4"])
    assert rc == 0
    log = json.loads((tmp_path / "u" / "train_log.json").read_text())
    assert log["params"]["retain"] == "kl" and log["steps"] and "retain" in log["steps"][0]
    assert (tmp_path / "u" / "model.safetensors").is_file()
    assert "θ_u:" in capsys.readouterr().out


def test_entry_names_are_filesystem_safe():
    assert entry_name("npo+kl", 3) == "npo_plus_kl__s3"
