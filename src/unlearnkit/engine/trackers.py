"""Experiment trackers (TensorBoard, Weights & Biases, MLflow) through accelerate's tracker integration.

A :class:`Tracker` is one tracked training session (one run entry): an ``Accelerator(log_with=kind,
project_dir=...)`` whose trackers are started with ``init_trackers`` and the entry's hyperparameters,
fed with ``accelerator.log`` and finished at the end. Used as a step sink
(:mod:`unlearnkit.engine.steplog`), it logs every optimiser step of every training loop run inside
``with tracker:`` — each loss term under ``train/<term>`` (``train/loss`` is the total, ``train/forget``
and ``train/retain`` the two terms, then the method's own terms), the learning rate ``train/lr`` and the
epoch ``train/epoch`` — and whatever :func:`~unlearnkit.engine.steplog.log_metrics` sends (evaluation
during training, ``eval/<metric>``). Several loops in one session (the stages of a continual run) get
one continuous step axis.

Where the logs go, under ``directory`` (the run's ``trackers/``):

    tensorboard   tensorboard/<name>/events.out.tfevents.*   (``tensorboard --logdir DIR/tensorboard``)
    mlflow        mlruns/ — a local file store: experiment = project, run name = name
                  (``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri file:DIR/mlruns``)
    wandb         wandb/offline-run-*/ (offline mode; ``wandb sync`` uploads it later)

Accelerate logs on the main process only, so a multi-process run writes each record once.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

from unlearnkit.engine.steplog import StepRecord, step_sinks
from unlearnkit.engine.train import accelerator_on_cpu, mixed_precision
from unlearnkit.errors import UnlearnkitError

TrackerKind = Literal["tensorboard", "wandb", "mlflow"]
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
_NOT_LOGGED = ("step", "wall")  # the axis itself, and wall time (not a property of the training)


def check_tracker(kind: str | None) -> None:
    """Fail before any training when the tracker's package is missing."""
    if kind is None:
        return
    if kind not in PACKAGES:
        raise UnlearnkitError(f"unknown tracker {kind!r}: use one of {', '.join(PACKAGES)}")
    if importlib.util.find_spec(PACKAGES[kind]) is None:
        raise UnlearnkitError(f"tracker={kind} needs the {PACKAGES[kind]!r} package: pip install {PACKAGES[kind]} "
                              "(or drop tracker=)")


def flat_config(config: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as flat ``a.b`` keys with scalar values (what every tracker accepts)."""
    out: dict[str, Any] = {}
    for k, v in (config or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[key] = v if v is not None else "None"
        else:
            out[key] = str(v)
    return out


class Tracker:
    """One tracked session: ``with Tracker("tensorboard", run_dir / "trackers", "run", "ga__s0", params): …``."""

    def __init__(self, kind: str, directory: Path | str, project: str, name: str,
                 config: dict[str, Any] | None = None) -> None:
        check_tracker(kind)
        self.kind, self.directory, self.project, self.name = kind, Path(directory), project, name
        self.config = flat_config(config)
        self.step = 0  # the session's step axis (continuous across training loops)
        self._offset = 0  # steps of the loops finished before the current one
        self._loop_step = 0
        self._acc = None
        self._restore: dict[str, str | None] = {}
        self._sinks = None

    # ----------------------------------------------------------------------------------------
    # the session

    def start(self) -> Tracker:
        from accelerate import Accelerator

        self.directory.mkdir(parents=True, exist_ok=True)
        project_dir = self.directory / "tensorboard" if self.kind == "tensorboard" else self.directory
        self._environment()
        # as the training loops' accelerator (make_accelerator): accelerate's state is shared and set up by whichever
        # Accelerator comes first — a second precision would be refused, and a multi-process CPU run needs cpu=True
        self._acc = Accelerator(mixed_precision=mixed_precision(), log_with=self.kind, project_dir=str(project_dir),
                                cpu=accelerator_on_cpu())
        project, init = self._init_args()
        self._acc.init_trackers(project, config=self.config, init_kwargs=init)
        return self

    def _init_args(self) -> tuple[str, dict]:
        if self.kind == "tensorboard":  # logs in <project_dir>/<project name>: one directory per entry
            return self.name, {}
        if self.kind == "mlflow":
            return self.project, {"mlflow": {"run_name": self.name}}
        return self.project, {"wandb": {"name": self.name, "dir": str(self.directory), "mode": "offline"}}

    def _environment(self) -> None:
        """MLflow writes to the run's own file store; W&B stays offline. Undone by :meth:`close`."""
        env = {}
        if self.kind == "mlflow":
            import mlflow

            self._restore["mlflow_uri"] = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri mirrors it there
            mlflow.set_tracking_uri((self.directory / "mlruns").absolute().as_uri())
            env = {"MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow ≥ 3.x asks for this opt-in to its file store
        if self.kind == "wandb":
            env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(self.directory)}
        for k, v in env.items():
            self._restore[k] = os.environ.get(k)
            os.environ[k] = v

    def close(self) -> None:
        """Finish the trackers (flush and close their files). Not ``Accelerator.end_training``: that
        also tears down the process group, which the rest of a multi-process run still needs."""
        if self._acc is not None:
            for t in self._acc.trackers:
                t.finish()
            self._acc = None
            if self.kind == "wandb":  # run.finish() returns before W&B's service has written the run: wait for it
                import wandb

                wandb.teardown()
        for k, v in self._restore.items():
            if k == "mlflow_uri":
                import mlflow

                mlflow.set_tracking_uri(v)  # None: back to mlflow's default
            elif v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._restore = {}

    def __enter__(self) -> Tracker:
        self.start()
        self._sinks = step_sinks(self)
        self._sinks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._sinks.__exit__(*exc)
        finally:
            self.close()

    # ----------------------------------------------------------------------------------------
    # a step sink

    def log_step(self, record: StepRecord) -> None:
        """One optimiser step of a training loop: every loss term, the learning rate, the epoch."""
        if record["step"] <= self._loop_step:  # a new training loop started (next stage): continue the axis
            self._offset = self.step
        self._loop_step = record["step"]
        self.step = self._offset + record["step"]
        values = {f"train/{k}": float(v) for k, v in record.items()
                  if k not in _NOT_LOGGED and isinstance(v, (int, float))}
        self.log(values, self.step)

    def log(self, values: dict[str, float], step: int | None = None) -> None:
        if self._acc is None:
            raise RuntimeError("Tracker.log outside its session (use `with tracker:`)")
        self._acc.log({k: float(v) for k, v in values.items()}, step=self.step if step is None else step)
