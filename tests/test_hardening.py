"""Nothing lost, nothing silently wrong, nothing executed: integrity of every cached artefact,
concurrent writers and runs, a full disk, crafted pickles, hub names (docs/reliability.md)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from unlearnkit.cli import main
from unlearnkit.errors import UnlearnkitError

from .conftest import tiny_build_config

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# integrity: altered pass / generation / model / data are detected, discarded and rebuilt


@pytest.fixture()
def evaluated(tiny_models):
    """θ_o evaluated once with its cache (a private model id so other tests' caches are untouched)."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.io import home
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks.tofu_eval import evaluate

    model, tok = load_model(tiny_models.original)
    src, cfg = QASource(tiny_models.data_dir), EvalConfig(max_new_tokens=16)
    mid = f"integrity-{os.getpid()}-{id(model)}"
    first = evaluate(model, tok, src, cfg, model_id=mid)
    return lambda: evaluate(model, tok, src, cfg, model_id=mid), first, home() / "cache" / "eval" / mid


def test_an_altered_pass_is_detected_and_recomputed(evaluated, capsys):
    """Log-probs shifted by −1 but still a valid file: the checksum catches it; the rerun equals the first run."""
    from unlearnkit.engine.passes import TokenStats

    again, first, cache = evaluated
    p = sorted(cache.glob("pass-*.npz"))[0]
    st = TokenStats.from_bytes(p.read_bytes())
    p.write_bytes(TokenStats(st.offsets, st.logprob - 1.0, st.correct, st.z).to_bytes())
    capsys.readouterr()
    res = again()
    err = capsys.readouterr().err
    assert "unusable" in err and "does not match its checksum" in err and err.count("\n") == 1
    assert res.value("mu") == first.value("mu") and res.value("forget.prob") == first.value("forget.prob")
    assert TokenStats.from_bytes(p.read_bytes()).logprob.tolist() == st.logprob.tolist()


def test_an_altered_or_truncated_generation_is_detected_and_recomputed(evaluated, capsys):
    again, first, cache = evaluated
    g = sorted(cache.glob("gen-*.json"))[0]
    g.write_text(json.dumps(["forged answer"] * len(json.loads(g.read_text()))))
    res = again()
    assert "unusable" in capsys.readouterr().err
    assert res.generations == first.generations
    g.write_bytes(g.read_bytes()[:5])  # truncated: the same, never a traceback on every rerun
    assert again().generations == first.generations


def test_an_altered_model_and_altered_data_are_rebuilt(tmp_path, monkeypatch, capsys):
    """A fresh home with a very small build: flip bytes of θ_o's weights and of a data split; the next build says
    so in one line each, rebuilds them, and the rebuilt files are byte-identical to the first ones."""
    from unlearnkit.models.build import build_models

    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    cfg = tiny_build_config(base={"epochs": 2}, finetune={"epochs": 2})
    ms = build_models(cfg)
    weights = ms.original / "model.safetensors"
    good_weights = weights.read_bytes()
    weights.write_bytes(good_weights[:-16] + bytes(16))
    split = ms.data_dir / "forget10.json"
    good_split = split.read_bytes()
    split.write_bytes(good_split.replace(b"a", b"b", 3))
    capsys.readouterr()
    again = build_models(cfg)
    err = capsys.readouterr().err
    assert "cached model" in err and "embedded data" in err and err.count("\n") == 2
    assert (again.original / "model.safetensors").read_bytes() == good_weights
    assert (again.data_dir / "forget10.json").read_bytes() == good_split


def test_stale_temporaries_of_dead_processes_are_removed_and_interrupted_swaps_restored(tmp_path, monkeypatch):
    from unlearnkit.io import cleanup_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f".x.json.{dead}.abc123.tmp").write_text("half")
    (tmp_path / "models" / f".base-1.{dead}.zz.tmp").mkdir(parents=True)
    (tmp_path / "models" / f".orig-2.old-{dead}.ab12").mkdir()  # a swap killed between its two renames
    (tmp_path / "models" / f".orig-2.old-{dead}.ab12" / "w").write_text("old")
    (tmp_path / "runs" / f".mine.json.{os.getpid()}.abc.tmp").write_text("in use")  # ours: kept
    os.utime(tmp_path / "runs" / f".x.json.{dead}.abc123.tmp", (0, 0))
    os.utime(tmp_path / "models" / f".base-1.{dead}.zz.tmp", (0, 0))
    os.utime(tmp_path / "models" / f".orig-2.old-{dead}.ab12", (0, 0))
    assert cleanup_stale_temps(tmp_path) == 3
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["orig-2"]
    assert (tmp_path / "models" / "orig-2" / "w").read_text() == "old"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f".mine.json.{os.getpid()}.abc.tmp"]


def test_atomic_dir_keeps_the_old_directory_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    from unlearnkit import io

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real = os.replace
    calls = []

    def watch(a, b):
        calls.append((Path(a).name, Path(b).name, sorted(p.name for p in tmp_path.iterdir())))
        return real(a, b)

    monkeypatch.setattr(io.os, "replace", watch)
    with io.atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (final / "new.txt").read_text() == "new" and not (final / "old.txt").exists()
    aside = calls[0][1]
    assert calls[0][0] == "out" and aside.startswith(".out.old-")  # first the old one moves aside …
    assert calls[1][1] == "out" and aside in calls[1][2]  # … and is still there when the new one moves in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------------------------------------
# concurrency


INDEX_WRITER = textwrap.dedent("""
    import sys
    from unlearnkit.results.store import EntryInfo, Run
    run = Run.open("lm", "shared", {"writer": sys.argv[1]})
    for i in range(int(sys.argv[2])):
        e = EntryInfo(name=f"w{sys.argv[1]}-{i}", hash=str(i), method="m", seed=i)
        run.write(e, {"forget.es_exact": float(i), "mu": 0.5})
""")


def test_two_processes_writing_the_index_at_once_lose_nothing(tmp_path):
    env = {**os.environ, "UNLEARNKIT_HOME": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", INDEX_WRITER, w, "60"], env=env, stderr=subprocess.PIPE, text=True)
             for w in ("a", "b")]
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    from unlearnkit.results.index import RunIndex

    with RunIndex(tmp_path / "index.sqlite") as ix:
        entries = ix.entries("shared")
        metrics = ix.metrics("shared")
    assert len(entries) == 120 and all(e.status == "done" for e in entries)
    assert metrics["wa-59"]["forget.es_exact"].value == 59.0 and metrics["wb-0"]["mu"].value == 0.5
    assert len(list((tmp_path / "runs" / "shared" / "results").iterdir())) == 120


def test_three_runs_on_one_home_never_crash_and_compute_each_entry_once(tiny_models, tmp_path):
    from .test_run import tiny_run

    cfg = tiny_run(name="three", methods=["ga", "gd"], defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4}).model_dump()
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "unlearnkit", "run", "--config", str(path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for _ in range(3)]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1500:] for _, e in outs]
    said = "".join(o for o, _ in outs)
    assert said.count("ga__s0: unlearning with") == 1 and said.count("gd__s0: unlearning with") == 1
    tables = [o[o.index("| method"):o.index("results:")] for o, _ in outs]
    assert tables[0] == tables[1] == tables[2]
    run_dir = Path(os.environ["UNLEARNKIT_HOME"]) / "runs" / "three"
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# a full disk


def _full_disk(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_and_leaves_nothing_partial(tmp_path, monkeypatch, capsys):
    from unlearnkit import io

    out = tmp_path / "data"
    monkeypatch.setattr(io.os, "fsync", _full_disk)
    assert main(["data", "build", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on device while writing ") and err.count("\n") == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial or temporary file anywhere


def test_a_full_disk_inside_a_library_writer_leaves_nothing_partial(tmp_path):
    from unlearnkit.io import atomic_file

    def partial_then_full(path):
        Path(path).write_bytes(b"half an array")
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                           "\"No space left on device\" })")  # how safetensors reports it

    with pytest.raises(UnlearnkitError, match="no space left on device while writing .*weights.safetensors"):
        with atomic_file(tmp_path / "weights.safetensors") as tmp:
            partial_then_full(tmp)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# untrusted files: nothing they contain is executed


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_cifar_pickle_is_refused_without_running_it(tmp_path, monkeypatch, capsys):
    from .vision_helpers import write_cifar10

    marker = tmp_path / "PWNED"
    data = write_cifar10(tmp_path / "data")
    batch = pickle.loads((data / "data_batch_1").read_bytes())
    batch[b"data"] = _Payload(marker)
    (data / "data_batch_1").write_bytes(pickle.dumps(batch))
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path / "home"))
    assert main(["run", "vision", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "not a plain CIFAR batch file" in err and "refused global posix.system" in err and err.count("\n") == 1
    assert not marker.exists()


def test_pickled_model_weights_are_refused_without_running_them(tiny_models, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    d = tmp_path / "model"
    d.mkdir()
    for f in tiny_models.original.iterdir():
        if f.suffix == ".json" and f.name != "unlearnkit.json":
            (d / f.name).write_bytes(f.read_bytes())
    torch.save({"model.embed_tokens.weight": _Payload(marker)}, d / "pytorch_model.bin")
    assert main(["eval", "--model", str(d), "--data", str(tiny_models.data_dir), "--no-reference"]) == 2
    err = capsys.readouterr().err
    assert "has no .safetensors weights" in err and "--allow-pickle" in err and not marker.exists()


def test_the_torch_floor_defaults_to_safe_loading():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if d.startswith("torch>") or d.startswith("torch<"))
    assert ">=2.6" in spec  # torch 2.6 made weights_only=True the default of torch.load
    for p in (ROOT / "src" / "unlearnkit").rglob("*.py"):
        text = p.read_text()
        assert "pickle.load(" not in text, p  # only the restricted unpickler's .load()
        for line in text.splitlines():
            assert "torch.load(" not in line or "weights_only=True" in line, (p, line)


# ---------------------------------------------------------------------------------------------
# hub names


def _fake_hub_cache(root: Path, repo: str, model_dir: Path, commit: str = "a" * 40) -> None:
    """The on-disk layout of the Hugging Face hub cache: models--org--name/{refs/main, snapshots/<commit>/…}."""
    base = root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.is_file() and f.name not in ("unlearnkit.json",):
            (snap / f.name).write_bytes(f.read_bytes())
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)


HUB_CHECK = textwrap.dedent("""
    import sys, torch
    from unlearnkit.errors import UnlearnkitError
    from unlearnkit.models.lm import is_hub_name, load_model, split_revision
    assert is_hub_name("test-org/tiny-theta-o") and not is_hub_name("./x/y") and not is_hub_name("/abs/path")
    assert split_revision("test-org/tiny-theta-o@main") == ("test-org/tiny-theta-o", "main")
    model, _ = load_model("test-org/tiny-theta-o@main")
    ref, _ = load_model(sys.argv[1])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True))
    for name in ("test-org/missing", "./missing/model"):
        try:
            load_model(name)
        except UnlearnkitError as e:
            print("ERR", e)
""")


def test_hub_names_load_from_the_hub_cache_and_a_missing_one_says_what_it_tried(tiny_models, tmp_path):
    """``org/name`` (and ``org/name@revision``) load through the hub path — here from a test-written hub cache,
    offline; a hub name that is neither cached nor a local directory gets an error naming both."""
    _fake_hub_cache(tmp_path / "hub", "test-org/tiny-theta-o", tiny_models.original)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", HUB_CHECK, str(tiny_models.original)], env=env, cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    errs = [line for line in r.stdout.splitlines() if line.startswith("ERR")]
    assert "hub model 'test-org/missing'" in errs[0] and "no local directory of that name" in errs[0]
    assert "model path './missing/model' does not exist" in errs[1]


def test_a_tokenizer_with_the_same_size_but_another_vocabulary_is_refused(tiny_models, tmp_path):
    from unlearnkit.models.lm import load_model

    d = tmp_path / "m"
    d.mkdir()
    for f in tiny_models.original.iterdir():
        if f.is_file():
            (d / f.name).write_bytes(f.read_bytes())
    tj = json.loads((d / "tokenizer.json").read_text())
    vocab = tj["model"]["vocab"]
    a, b = sorted(k for k in vocab if len(k) > 3 and not k.startswith("<"))[:2]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # same size, two tokens swapped
    (d / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(UnlearnkitError, match="not the ones the model was saved with"):
        load_model(d)


def test_per_sample_arrays_never_unpickle(tmp_path):
    from unlearnkit.results.store import EntryInfo, Run

    run = Run.open_at(tmp_path / "r", "vision")
    run.write(EntryInfo("e", "h"), {"UA": 1.0}, per_sample_arrays={"x": np.arange(3)})
    with open(run.layout.per_sample("e", ".npz"), "wb") as f:  # replaced by an object array (needs unpickling)
        np.savez(f, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        run.per_sample_arrays("e")
