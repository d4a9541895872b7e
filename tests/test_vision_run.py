"""`unlearnkit run vision` end to end on a tiny synthetic set: tables, run directory, provenance,
resume, help and method list, one-line errors (presets: test_vision_presets.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from unlearnkit import cli
from unlearnkit.methods import methods_for
from unlearnkit.recipes.vision import METHOD_ORDER, PRESET_FILES, resolve_config
from unlearnkit.results.index import RunIndex

from .vision_helpers import single_thread  # noqa: F401 (autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["seeds=[0]", "data.synthetic.n_superclasses=3", "data.synthetic.classes_per_superclass=2", "data.synthetic.image_size=8",
        "data.synthetic.train_per_class=12", "data.synthetic.test_per_class=6", "model.width=4", "train.epochs=2",
        "train.batch_size=16", "unlearn_batch_size=16", "method_params.ft.epochs=2", "method_params.rl.epochs=2"]


def test_run_vision_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    assert cli.main(["run", "vision", *TINY]) == 0
    out = capsys.readouterr().out
    for title in ("All matched", "Target mismatch", "Model mismatch", "Data mismatch"):
        assert title in out
    assert out.count("| Retrain (ref.)") == 4 and out.count("| RL ") == 4
    assert "| Method " in out and "Gap ↓" in out and "TIME (s) ↓" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("results: ")
    rdir = Path(last.removeprefix("results: "))
    assert rdir.parent == tmp_path / "runs" and (rdir / "config.json").is_file()
    for sc in ("all_matched", "target_mismatch", "model_mismatch", "data_mismatch"):
        for m in ("reference", "original", "retrain", "ft", "ga", "rl"):
            rec = json.loads((rdir / "results" / f"{sc}__{m}__s0" / "results.json").read_text())
            assert (rdir / "results" / f"{sc}__{m}__s0" / "per_sample.npz").is_file()
            assert set(rec["aggregates"]) >= {"UA", "RA", "TA", "MIA", "TIME"}
            assert rec["entry"]["group"] == sc and rec["entry"]["seed"] == 0
            prov = rec["provenance"]
            assert prov["unlearnkit_version"] and prov["seed"] == 0 and prov["config"]["methods"]
            assert "torch" in prov["libraries"] and "device" in prov["hardware"]
    ft_path = rdir / "results" / "target_mismatch__ft__s0" / "results.json"
    ft = json.loads(ft_path.read_text())
    assert ft["aggregates"]["Gap"]["value"] >= 0 and ft["extra"]["params"]["epochs"] == 2
    with RunIndex() as ix:
        row = ix.run(rdir.name)
        assert row.kind == "vision" and row.done == 4 * 6
    stamp = ft_path.stat().st_mtime_ns
    # models are cached under home()/vision
    assert len(list((tmp_path / "vision").glob("original-*"))) == 2
    assert len(list((tmp_path / "vision").glob("reference-*"))) == 4

    # rerun: every entry is finished, nothing is recomputed
    assert cli.main(["run", "vision", *TINY]) == 0
    out2 = capsys.readouterr().out
    assert out2.count("finished earlier (skipped)") == 4
    assert ft_path.stat().st_mtime_ns == stamp
    # a changed method parameter redoes only that method's entries
    assert cli.main(["run", "vision", *TINY, "method_params.ga.epochs=1", "--scenarios", "all_matched"]) == 0
    out3 = capsys.readouterr().out
    assert "cached" in out3 and "seed 0 GA" in out3 and "seed 0 FT" not in out3


@pytest.mark.parametrize("args,match", [
    (["scenario.superclass=omega"], "superclass 'omega' does not exist"),
    (["--methods", "ft,nope"], "unknown vision method 'nope'"),
    (["method_params.ft.lr=-1"], "method_params.ft.lr"),
    (["scenario.forget_classes=[alpha-0,alpha-1]"], "covers all of"),
    (["--scenarios", "all_matchd"], "scenarios"),
    (["--dataset", "cifar10", "--data-dir", "EMPTY"], "no CIFAR10 files"),
])
def test_bad_input_is_one_line_error(args, match, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    args = [str(tmp_path) if a == "EMPTY" else a for a in args]
    assert cli.main(["run", "vision", *TINY, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert match in err


def test_help_names_what_the_run_accepts(capsys):
    """--help's dataset and model choices all resolve to a config, and its stated default methods are the run's."""
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "vision", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: unlearnkit run vision")
    datasets = re.search(r"--dataset \{([^}]*)\}", out).group(1).split(",")
    assert set(datasets) == set(PRESET_FILES)
    for d in datasets:
        assert resolve_config(None, flags={"data": {"dataset": d}}).data.dataset == d
    for arch in re.search(r"--model \{([^}]*)\}", out).group(1).split(","):
        assert resolve_config(None, flags={"model": {"arch": arch}}).model.arch == arch
    default = re.search(r"--methods LIST .*?\(default ([a-z0-9_,]+)\)", " ".join(out.split())).group(1).split(",")
    assert default == resolve_config().methods == ["retrain", "ft", "ga", "rl"]


def test_list_methods_lists_the_registered_methods_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    assert cli.main(["run", "vision", "--list-methods"]) == 0
    rows = [line.strip()[1:-1].split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]  # "|" in cells
    listed = {cells[0].strip(): cells[1].strip() for cells in rows}
    assert listed == {s.name: s.summary for s in methods_for("vision")}
    assert set(METHOD_ORDER) <= set(listed) and "npo" not in listed  # language-model methods are not listed
    assert sorted(resolve_config(None, ["methods=[all]"]).methods) == sorted(listed)  # `all` runs exactly these
    assert list(tmp_path.iterdir()) == []  # no run, no model, nothing written


def test_several_seeds_average_and_tarf_identification_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    args = [*TINY, "seeds=[0,1]", "--methods", "retrain,ft,tarf", "--scenarios", "target_mismatch",
            "method_params.tarf.epochs=2", "method_params.tarf.t1=0.5", "method_params.tarf.t0=1"]
    assert cli.main(["run", "vision", *args]) == 0
    out = capsys.readouterr().out
    assert "(mean of 2 seeds; Gap as mean ± sd)" in out and " ± " in out
    note = [line for line in out.splitlines() if "TARF identification" in line]
    assert len(note) == 1 and "seed 0:" in note[0] and "seed 1:" in note[0] and "recall" in note[0]
    rdir = Path(out.strip().splitlines()[-1].removeprefix("results: "))
    rec = json.loads((rdir / "results" / "target_mismatch__tarf__s1" / "results.json").read_text())
    assert set(rec["extra"]["log"]) >= {"identified", "hidden_truth", "precision", "recall", "identified_labels"}


def test_cifar10_from_a_local_directory_end_to_end(tmp_path, monkeypatch, capsys):
    """The real-data path (preset cifar10: augmentation on) on a tiny test-written CIFAR-10 copy."""
    from .vision_helpers import write_cifar10

    write_cifar10(tmp_path / "data", n_train_per_batch=20, n_test=30)
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path / "home"))
    args = ["--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--model", "cnn", "--methods", "retrain,ft",
            "seeds=[0]", "model.width=4", "train.epochs=1", "train.batch_size=32", "unlearn_batch_size=32",
            "method_params.ft.epochs=1"]
    assert cli.main(["run", "vision", *args]) == 0
    out = capsys.readouterr().out
    assert "cifar10 (100 train / 30 test images, 10 classes in 5 superclasses)" in out
    assert "forget class 'airplane'" in out and "all of superclass 'air_water'" in out
    assert out.count("| FT ") == 4


def test_fashion_mnist_from_a_local_directory_end_to_end(tmp_path, monkeypatch, capsys):
    """The real-images path (grey 28×28 IDX files, the tops/footwear/other hierarchy) on test-written files."""
    from .test_vision_fashion import write_fashion

    write_fashion(tmp_path / "fm", n_train=200, n_test=100)
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path / "home"))
    args = ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "fm"), "--methods", "retrain,ft,tarf",
            "--scenarios", "target_mismatch", "seeds=[0]", "data.fashion_mnist.train_per_class=20",
            "data.fashion_mnist.test_per_class=10", "model.width=4", "train.epochs=1", "method_params.ft.epochs=1",
            "method_params.tarf.epochs=2", "method_params.tarf.t1=0.5", "method_params.tarf.t0=1"]
    assert cli.main(["run", "vision", *args]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist (200 train / 100 test images, 10 classes in 3 superclasses)" in out
    assert "all of superclass 'tops'" in out and out.count("| TARF ") == 1


@pytest.mark.slow
def test_the_gpu_vision_script_runs_at_toy_size_on_a_cpu(tmp_path):
    """benchmarks/gpu_vision.py --toy: ResNet-18, every method, four scenarios, on a tiny CIFAR-10 copy."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "UNLEARNKIT_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_vision.py"), "--toy"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("| TARF ") == 4 and "toy cifar10 ResNet-18, 10 methods × 4 scenarios × 1 seeds" in r.stdout
