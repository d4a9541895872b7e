"""``unlearnkit attack --run``: every entry of a finished run attacked, recovery per attack, cached and resumable;
the protocol's split; the checks the attack suite must pass on the tiny models."""

from __future__ import annotations

import pytest

from unlearnkit.errors import UnlearnkitError
from unlearnkit.metrics.robustness import recovery
from unlearnkit.recipes.attack import AttackRunConfig, attack_run, split_halves

from .conftest import tiny_build_config


@pytest.fixture(scope="module")
def finished(tiny_models):
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    cfg = RunConfig.model_validate({"build": tiny_build_config().model_dump(), "methods": ["ga"],
                                    "defaults": {"lr": 1e-3, "epochs": 1, "batch_size": 4}, "name": "atk",
                                    "eval": {"max_new_tokens": 8}, "intervals": False})
    return run_benchmark(cfg, say=lambda s: None).run


@pytest.fixture(scope="module")
def attacked(finished):
    cfg = AttackRunConfig(attacks=["quant8", "paraphrase", "relearn"], metrics=["es", "prob"],
                          attack_params={"relearn": {"steps": 2, "batch_size": 4}})
    said: list[str] = []
    return attack_run(finished, cfg, say=said.append), cfg, said


def test_the_split_gives_the_attacker_one_half_and_measures_the_other():
    """6 records: an even seed trains on 0-2 and measures 3-5; an odd seed the reverse; retain_train is cut to the
    attacker's count (3)."""
    ev = [{"i": i} for i in range(6)]
    tr = [{"t": i} for i in range(6)]
    h = split_halves(ev, tr, [{"r": i} for i in range(10)], [{"e": 0}], seed=0)
    assert [r["t"] for r in h.train] == [0, 1, 2] and [r["i"] for r in h.sets["forget"]] == [3, 4, 5]
    assert len(h.retain_train) == 3 and h.sets["retain"] == [{"e": 0}]
    h1 = split_halves(ev, tr, [], [], seed=1)
    assert [r["t"] for r in h1.train] == [3, 4, 5] and [r["i"] for r in h1.sets["forget"]] == [0, 1, 2]


def test_every_entry_is_attacked_and_recovery_is_recomputed_from_the_stored_values(attacked):
    """Rows Original, Retrain, ga__s0; each recovery equals (m_a − m_u) / (m_o − m_u) of the stored forget ES;
    Original's is undefined (its own gap is 0); the worst column is the highest recovery."""
    out, cfg, _ = attacked
    assert list(out.values) == ["original", "retrain", "ga__s0"]
    assert set(out.values["ga__s0"]) == {"none", "quant8", "paraphrase", "relearn"}
    m_o = out.values["original"]["none"]["forget.es"]
    for entry, per in out.recoveries.items():
        for a in cfg.attacks:
            v = out.values[entry]
            assert per[a] == recovery(v[a]["forget.es"], v["none"]["forget.es"], m_o), (entry, a)
    assert all(r is None for r in out.recoveries["original"].values())
    assert "recovery relearn" in out.table and "worst" in out.table and "Retrain" in out.table
    assert (out.run.layout.root / "attacks.json").is_file()


def test_eight_bit_rounding_keeps_the_original_models_forget_es(attacked):
    """8-bit round-to-nearest moves each weight by at most half a step (max|w_row| / 254): θ_o's forget ES on the
    held-out half stays within 0.02."""
    out, _, _ = attacked
    v = out.values["original"]
    assert abs(v["quant8"]["forget.es"] - v["none"]["forget.es"]) <= 0.02


def test_a_second_call_reuses_every_attacked_entry(attacked, finished):
    """Same config → every (entry, condition) is done: nothing is measured again and the values are identical."""
    out, cfg, _ = attacked
    said: list[str] = []
    again = attack_run(finished, cfg, say=said.append)
    assert again.values == out.values and not any(": " in s and "forget.es" in s for s in said)


def test_relearning_the_retrained_model_on_half_the_forget_set_raises_its_es_there(tiny_models):
    """θ_r never saw the forget set; 10 steps of SFT at the builder's learning rate on the attacker's half raise the
    forget ES measured on that same half (what relearning teaches, before asking whether it transfers)."""
    from unlearnkit.attacks import AttackTarget, apply_attack
    from unlearnkit.data.tofu import QASource
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import get_task

    model, tok = load_model(tiny_models.reference_for("forget10"))
    src = QASource(tiny_models.data_dir)
    h = split_halves(src.split("forget10_perturbed"), src.split("forget10"), [], [], seed=0)
    own = src.split("forget10_perturbed")[: len(h.train)]
    measure = lambda m: get_task("tofu").measure(m, tok, own, "forget", lambda i, r: r["question"], ["es"], 8)["es"]  # noqa: E731
    before = measure(model)
    attacked = apply_attack("relearn", AttackTarget(model, tok, {"forget": own}, forget_train=h.train, seed=0),
                            {"steps": 10, "lr": 4e-3, "fraction": 1.0, "batch_size": 4})
    assert measure(attacked.model) > before


def test_bad_input_is_one_line(finished):
    with pytest.raises(Exception, match="unknown attack 'quant3'; known: "):
        AttackRunConfig(attacks=["quant3"])
    with pytest.raises(Exception, match="recovery_metric 'rouge' is not measured"):
        AttackRunConfig(metrics=["es"], recovery_metric="rouge")
    with pytest.raises(Exception, match="attack_params.noise: 'noise' is not one of the attacks run"):
        AttackRunConfig(attacks=["quant8"], attack_params={"noise": {"rate": 0.1}})
    with pytest.raises(UnlearnkitError, match="metric 'mia2' is not measured under attack"):
        attack_run(finished, AttackRunConfig(metrics=["es", "mia2"]), say=lambda s: None)


def test_the_attack_command_prints_the_table(finished, capsys):
    from unlearnkit.cli import main

    assert main(["attack", "--run", "atk", "--attacks", "quant8", "metrics=[es,prob]"]) == 0
    out = capsys.readouterr().out
    assert "recovery quant8" in out and "ga__s0" in out
    assert main(["attack", "--run", "atk", "--attacks", "telepathy"]) == 2
    assert "unknown attack 'telepathy'" in capsys.readouterr().err


def test_a_run_without_saved_models_names_the_setting_that_keeps_them(finished, monkeypatch):
    import unlearnkit.recipes.attack as A

    monkeypatch.setattr(A, "is_saved_model", lambda d: False)
    with pytest.raises(UnlearnkitError, match="ga__s0 has no saved θ_u .*rerun it with save_models=true"):
        attack_run(finished, AttackRunConfig(attacks=["quant8"], metrics=["es"]), say=lambda s: None)


def test_run_with_attacks_prints_the_recovery_table_and_keeps_its_name(finished, capsys):
    """`unlearnkit run attacks=[quant8]`: after the run, every entry attacked and the recovery table printed; the
    option does not change the run's name (it says how to run, not what is computed); an unknown attack is refused
    before anything runs."""
    from unlearnkit.cli.commands import _after_run
    from unlearnkit.recipes.lm import RunConfig, run_name

    cfg = RunConfig.model_validate({**finished.config(), "attacks": ["quant8"]})
    _after_run(cfg, finished)
    out = capsys.readouterr().out
    assert "Attacked (recovery" in out and "recovery quant8" in out and "ga__s0" in out
    assert run_name(RunConfig()) == run_name(RunConfig(attacks=["quant8", "relearn"]))
    with pytest.raises(Exception, match="unknown attack 'telepathy'; known: "):
        RunConfig(attacks=["telepathy"])


def test_the_report_of_an_attack_setting_shows_the_recovery_table(attacked, tmp_path):
    """`unlearnkit report <run>~<attack setting>`: the section registered by analysis/attacks_report.py renders
    attacks.json as an entry × attack table whose cells are the stored recoveries (4 decimals), worst case last."""
    from unlearnkit.recipes.report import report

    out, cfg, _ = attacked
    html = (report([out.run.name], out=str(tmp_path / "r.html")).path).read_text()
    assert "Recovery of forget es under each attack" in html
    for a in cfg.attacks:
        assert f">{a}" in html
    worst = max(r for r in out.recoveries["ga__s0"].values() if r is not None)
    assert f"{worst:.4f}" in html
