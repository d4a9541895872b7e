"""Experiment trackers: every optimiser step's loss terms, learning rate and epoch reach TensorBoard, MLflow
(local file store) and W&B (offline, when installed) — read back from what each wrote — and training
with a tracker is bit for bit training without one."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from unlearnkit.engine.steplog import log_metrics, step_sinks
from unlearnkit.engine.trackers import Tracker, check_tracker, flat_config
from unlearnkit.engine.train import train_loop
from unlearnkit.errors import UnlearnkitError

PARAMS = {"lr": 0.1, "epochs": 2, "nested": {"gamma": 1.0, "list": [1, 2]}, "retain": None}


def _train(**kw):
    """A linear model on 3 fixed batches × 2 epochs with a linear schedule; loss terms forget and retain."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 4, generator=g) for _ in range(3)]

    def loss_fn(m, b):
        out = m(b)
        forget, retain = (out ** 2).mean(), out.abs().mean()
        return forget + 0.5 * retain, {"forget": float(forget.detach()), "retain": float(retain.detach())}

    log = train_loop(model, batches, loss_fn, lr=0.1, epochs=2, schedule="linear", desc="toy", **kw)
    return model, log


def _strip(log) -> list[dict]:
    return [{k: v for k, v in s.items() if k != "wall"} for s in log.steps]


@pytest.fixture(scope="module")
def plain():
    return _train()


def test_a_tracker_changes_nothing_in_training(plain, tmp_path):
    pytest.importorskip("tensorboard")
    with Tracker("tensorboard", tmp_path, "proj", "toy__s0", PARAMS):
        model, log = _train()
    assert _strip(log) == _strip(plain[1]) and len(log.steps) == 6
    assert torch.equal(model.weight, plain[0].weight) and torch.equal(model.bias, plain[0].bias)


def test_tensorboard_holds_every_step(plain, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Tracker("tensorboard", tmp_path, "proj", "toy__s0", PARAMS) as t:
        _train()
        log_metrics({"eval/forget.es_exact": 0.25})  # evaluation during training: at the current step
    assert t.step == 6
    acc = EventAccumulator(str(tmp_path / "tensorboard" / "toy__s0"))
    acc.Reload()
    steps = plain[1].steps
    for key in ("loss", "forget", "retain", "lr", "epoch"):
        got = acc.Scalars(f"train/{key}")
        assert [e.step for e in got] == [1, 2, 3, 4, 5, 6]
        assert [e.value for e in got] == pytest.approx([float(s[key]) for s in steps], rel=1e-6), key
    # the learning rate as the step log records it: the linear schedule's value after each of the 6 steps
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx([0.1 * (1 - k / 6) for k in range(1, 7)])
    assert [(e.step, e.value) for e in acc.Scalars("eval/forget.es_exact")] == [(6, 0.25)]
    assert "train/wall" not in acc.Tags()["scalars"]


def test_mlflow_file_store_holds_every_step_and_the_hyperparameters(plain, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with Tracker("mlflow", tmp_path, "my-run", "toy__s0", PARAMS):
        _train()
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # restored
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.get_experiment_by_name("my-run")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "toy__s0" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.1" and run.data.params["nested.gamma"] == "1.0"
    assert run.data.params["nested.list"] == "[1, 2]" and run.data.params["retain"] == "None"
    steps = plain[1].steps
    for key in ("loss", "forget", "retain", "lr", "epoch"):
        hist = sorted(client.get_metric_history(run.info.run_id, f"train/{key}"), key=lambda m: m.step)
        assert [m.step for m in hist] == [1, 2, 3, 4, 5, 6]
        assert [m.value for m in hist] == pytest.approx([float(s[key]) for s in steps], rel=1e-6), key


def test_wandb_offline_run_holds_every_step(plain, tmp_path, monkeypatch):
    if importlib.util.find_spec("wandb") is None:
        pytest.skip("wandb is not installed (pip install wandb)")
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_SILENT"):
        monkeypatch.delenv(k, raising=False)
    with Tracker("wandb", tmp_path, "my-run", "toy__s0", PARAMS):
        _train()
    assert "WANDB_MODE" not in os.environ
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    history = wandb_history(run_dir)
    losses = {h["_step"]: h["train/loss"] for h in history if "train/loss" in h}
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    assert [losses[k] for k in sorted(losses)] == pytest.approx([s["loss"] for s in plain[1].steps], rel=1e-6)


def wandb_history(run_dir) -> list[dict]:
    """The history rows of an offline W&B run: its ``.wandb`` file is a LevelDB-style log (a 7-byte
    ``:W&B`` header, then 32 KiB blocks of records with a 7-byte header each: CRC, length, kind
    full/first/middle/last) of ``wandb_internal_pb2.Record`` messages."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, records, part = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or kind == 0:  # the end of a block is padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        part = chunk if kind in (1, 2) else part + chunk
        if kind in (1, 4):
            records.append(part)
    rows = []
    for raw in records:
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
    return rows


def test_continual_stages_share_one_step_axis(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Tracker("tensorboard", tmp_path, "proj", "toy__s0") as t:
        _train()
        _train()  # a second training loop in the same session (the next continual stage)
    assert t.step == 12
    acc = EventAccumulator(str(tmp_path / "tensorboard" / "toy__s0"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))


def test_step_sinks_nest_and_an_explicit_log_step_is_called_too():
    class Sink:
        def __init__(self):
            self.steps, self.logged = [], []

        def log_step(self, rec):
            self.steps.append(rec["step"])

        def log(self, values, step=None):
            self.logged.append((values, step))

    outer, inner, seen = Sink(), Sink(), []
    with step_sinks(outer):
        with step_sinks(inner):
            _train(log_step=lambda r: seen.append(r["step"]))
            log_metrics({"eval/x": 1.0}, step=6)
        _train(max_steps=2)
    assert inner.steps == seen == [1, 2, 3, 4, 5, 6] and outer.steps == [1, 2, 3, 4, 5, 6, 1, 2]
    assert inner.logged == outer.logged == [({"eval/x": 1.0}, 6)]
    log_metrics({"eval/x": 2.0})  # no sink active: nothing happens


def test_tracker_errors_name_the_fix(monkeypatch):
    with pytest.raises(UnlearnkitError, match="unknown tracker 'comet': use one of tensorboard, wandb, mlflow"):
        check_tracker("comet")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UnlearnkitError, match="tracker=wandb needs the 'wandb' package: pip install wandb"):
        check_tracker("wandb")
    check_tracker(None)


def test_hyperparameters_are_flattened_to_scalars():
    assert flat_config(PARAMS) == {"lr": 0.1, "epochs": 2, "nested.gamma": 1.0, "nested.list": "[1, 2]",
                                   "retain": "None"}
