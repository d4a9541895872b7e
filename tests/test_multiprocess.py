"""Several processes on a CPU (gloo), started by torchrun exactly as a user would (slow: each launch starts two Python
processes that import torch and transformers).

- ``unlearnkit eval`` with 2 processes gives the results.json and per-sample values of 1 process (≤ 1e-6; in fact
  identical: each batch is computed the same way, only on another process), and its provenance says 2 processes;
- ``unlearnkit unlearn`` with DDP: the processes draw different retain batches (digests in the training log, fixed
  by the seed), end with the same θ_u (equal weight checksums) and save it once;
- the same run with FSDP2 (``ACCELERATE_USE_FSDP=true``) gives DDP's θ_u within 1e-5 (max absolute difference of
  any weight; measured ≈ 6e-7 after 3 steps at lr 1e-3 — the gradient all-reduce and FSDP's reduce-scatter sum in
  different orders) and the same retain draws; LoRA adapters train under FSDP2 too;
- ``unlearnkit run`` under torchrun: the reference rows equal one process's, the method entry is written once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unlearnkit.cli import main

pytestmark = pytest.mark.slow
SRC = Path(__file__).resolve().parents[1] / "src"


def torchrun(args: list[str], tmp: Path, **env: str) -> str:
    """``torchrun --standalone --nproc_per_node 2 -m unlearnkit ARGS``; returns its output (fails on exit ≠ 0)."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", **env}
    full.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "unlearnkit", *args], cwd=tmp, env=full, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _weights(d: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(d / "model.safetensors"))


@pytest.fixture(scope="module")
def paths(tiny_models):
    return {"ORIGINAL": str(tiny_models.original), "REFERENCE": str(tiny_models.reference_for("forget10")),
            "DATA": str(tiny_models.data_dir)}


def test_two_process_eval_equals_one_process(paths, tmp_path):
    args = ["eval", "--model", paths["ORIGINAL"], "--reference", paths["REFERENCE"], "--data", paths["DATA"],
            "max_new_tokens=8", "cache=false", "batch_size=8", "generation_batch_size=8"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    torchrun([*args, "--out", str(tmp_path / "two")], tmp_path)
    one, two = (json.loads((tmp_path / d / "results" / "model" / "results.json").read_text()) for d in ("one", "two"))
    assert one["provenance"]["distributed"]["processes"] == 1 and two["provenance"]["distributed"]["processes"] == 2
    assert set(one["aggregates"]) == set(two["aggregates"]) and len(one["aggregates"]) > 20
    for k, a in one["aggregates"].items():
        va, vb = a["value"], two["aggregates"][k]["value"]
        assert (va is None and vb is None) or abs(va - vb) <= 1e-6, k
    rows = [(tmp_path / d / "results" / "model" / "per_sample.jsonl").read_text() for d in ("one", "two")]
    assert rows[0] == rows[1]


@pytest.fixture(scope="module")
def ddp_and_fsdp(paths, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mp")
    args = ["unlearn", "--method", "npo+kl", "--model", paths["ORIGINAL"], "--data", paths["DATA"], "lr=1e-3",
            "batch_size=4", "max_steps=3"]
    torchrun([*args, "--out", str(tmp / "ddp")], tmp)
    torchrun([*args, "--out", str(tmp / "fsdp")], tmp, ACCELERATE_USE_FSDP="true", FSDP_VERSION="2")
    return tmp


def test_ddp_processes_draw_different_retain_batches_and_agree_on_theta_u(ddp_and_fsdp, paths):
    d = ddp_and_fsdp / "ddp"
    log = json.loads((d / "train_log.json").read_text())
    info = log["distributed"]
    assert info["processes"] == 2 and info["strategy"] == "ddp" and len(log["steps"]) == 3
    a, b = info["retain_draw_digests"]
    assert a != b  # each process its own retain batches
    assert info["replica_checksums"][0] == info["replica_checksums"][1]  # one θ_u
    rec = json.loads((d / "results" / "theta_u" / "results.json").read_text())
    assert rec["provenance"]["distributed"] == {"processes": 2, "strategy": "ddp"}
    original = _weights(Path(paths["ORIGINAL"]))
    theta_u = _weights(d)
    assert any(not torch.equal(original[k], theta_u[k]) for k in theta_u)
    from unlearnkit.models.lm import load_model

    load_model(d)  # θ_u is a loadable model directory


def test_fsdp_gives_the_ddp_theta_u(ddp_and_fsdp):
    ddp, fsdp = (json.loads((ddp_and_fsdp / s / "train_log.json").read_text()) for s in ("ddp", "fsdp"))
    assert fsdp["distributed"]["strategy"] == "fsdp"
    assert fsdp["distributed"]["retain_draw_digests"] == ddp["distributed"]["retain_draw_digests"]  # fixed by the seed
    a, b = _weights(ddp_and_fsdp / "ddp"), _weights(ddp_and_fsdp / "fsdp")
    assert set(a) == set(b)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5
    for x, y in zip(ddp["steps"], fsdp["steps"]):
        assert abs(x["loss"] - y["loss"]) <= 1e-5


def test_lora_under_fsdp_saves_one_adapter(paths, tmp_path):
    torchrun(["unlearn", "--method", "npo", "--model", paths["ORIGINAL"], "--data", paths["DATA"], "lr=1e-3",
              "batch_size=4", "max_steps=2", "peft.r=4", "--out", str(tmp_path / "lora")], tmp_path,
             ACCELERATE_USE_FSDP="true")
    from unlearnkit.models.adapters import is_adapter_dir
    from unlearnkit.models.lm import load_model

    d = tmp_path / "lora"
    assert is_adapter_dir(d)
    log = json.loads((d / "train_log.json").read_text())
    assert log["distributed"]["strategy"] == "fsdp" and len(log["steps"]) == 2
    assert log["distributed"]["replica_checksums"][0] == log["distributed"]["replica_checksums"][1]
    model, _ = load_model(d)
    base, _ = load_model(paths["ORIGINAL"])
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])}
    assert changed and all("proj" in n for n in changed)  # only the adapted linear layers moved


def test_run_under_torchrun(tiny_models, tmp_path):
    """The benchmark recipe in two processes: Original and Retrain (evaluation only) equal one process's values."""
    import yaml

    from .conftest import tiny_build_config

    cfg = {"build": json.loads(tiny_build_config().model_dump_json()), "methods": ["ga"],
           "defaults": {"lr": 1e-3, "batch_size": 4, "max_steps": 2}, "eval": {"max_new_tokens": 8, "cache": False}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", "--config", str(tmp_path / "run.yaml"), "name=mp-one"]) == 0
    out = torchrun(["run", "--config", str(tmp_path / "run.yaml"), "name=mp-two"], tmp_path,
                   UNLEARNKIT_HOME=os.environ["UNLEARNKIT_HOME"])
    assert out.count("| ga ") == 1  # the main process prints the table once
    from unlearnkit.results.store import Run

    one, two = Run.find("mp-one"), Run.find("mp-two")
    for entry in ("original", "retrain"):
        a, b = one.record(entry).aggregates, two.record(entry).aggregates
        assert {k: v["value"] for k, v in a.items()} == {k: v["value"] for k, v in b.items()}, entry
    rec = two.record("ga__s0")
    assert rec.provenance["distributed"]["processes"] == 2 and two.per_sample_rows("ga__s0")
