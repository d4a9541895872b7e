"""Run independent entries — methods × seeds, sweep variants, reliability-pool members, vision scenarios —
one after another (``local``, the default) or as Ray tasks (``ray``), with the same results.

Every entry is a function of its inputs that writes its own result through the results layer (a
run entry, its θ_u, its log), so entries are independent and their order does not matter. With
``executor.kind=ray`` each becomes one Ray task with its CPU/GPU request, on an existing cluster
(``address``: ``auto`` or ``ray://host:10001``) or on a Ray instance started here; the tasks write
into the same ``$UNLEARNKIT_HOME``, which therefore has to be one shared filesystem for all nodes
(docs/scale.md: starting a cluster on Slurm or Kubernetes). Results equal the local executor's bit for
bit because each task runs the same code with the same torch thread count as the driver (``threads``).
Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError

T = TypeVar("T")
_ENV = ("UNLEARNKIT_HOME", "UNLEARNKIT_ALLOW_PICKLE", "HF_HUB_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM")


class ExecutorConfig(StrictModel):
    """How the independent entries of a run are executed (``executor.kind=ray executor.num_gpus=1``)."""

    kind: Literal["local", "ray"] = Field("local", description="local: one after another in this process; ray: one "
                                          "Ray task per entry")
    address: str | None = Field(None, description="Ray cluster to join (auto, ray://head:10001); None: a Ray "
                                "instance on this machine")
    num_cpus: float = Field(1.0, gt=0, description="CPUs each task requests")
    num_gpus: float = Field(0.0, ge=0, description="GPUs each task requests (1 for a model on its own GPU)")
    threads: int | None = Field(None, ge=1, le=4096, description="torch threads in a task (default: the driver's, "
                                "so results equal the local executor's)")


def run_entries(tasks: Sequence[Callable[[], T]], cfg: ExecutorConfig | None = None,
                done: Callable[[int, T], None] | None = None) -> list[T]:
    """Run every task; results in task order. ``done(i, result)`` is called as each task finishes."""
    cfg = cfg or ExecutorConfig()
    if cfg.kind == "local" or not tasks:
        out = []
        for i, task in enumerate(tasks):
            out.append(task())
            if done is not None:
                done(i, out[-1])
        return out
    return _run_on_ray(list(tasks), cfg, done)


def check(cfg: ExecutorConfig) -> None:
    """Fail before any work when the executor cannot run here (Ray missing, or several launched processes)."""
    if cfg.kind != "ray":
        return
    from unlearnkit.engine import distributed as dist

    if dist.world_size() > 1:
        raise UnlearnkitError("executor.kind=ray starts its own tasks: run the command in one process (not under "
                              "torchrun / accelerate launch), or use executor.kind=local")
    _ray_module()


def _ray_module():
    try:
        import ray
    except ImportError:
        raise UnlearnkitError('executor.kind=ray needs Ray: pip install -e ".[ray]" (or pip install ray), or use '
                              "executor.kind=local") from None
    return ray


def _run_on_ray(tasks: list[Callable[[], T]], cfg: ExecutorConfig, done) -> list[T]:
    import torch

    check(cfg)
    ray = _ray_module()
    if not ray.is_initialized():
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=True, configure_logging=False)
    env = {k: os.environ[k] for k in _ENV if k in os.environ}
    call = ray.remote(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, max_retries=0)(_call_in_task)
    threads = cfg.threads or torch.get_num_threads()
    refs = [call.remote(task, threads, env) for task in tasks]
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        i = index[ready[0]]
        out[i] = _get(ray, ready[0])
        if done is not None:
            done(i, out[i])
    return out


def _get(ray, ref):
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.as_instanceof_cause()
        if isinstance(cause, UnlearnkitError) or getattr(e, "cause", None) is not None:
            raise (e.cause if isinstance(getattr(e, "cause", None), BaseException) else cause) from None
        raise


def _call_in_task(task: Callable[[], T], threads: int, env: dict[str, str]) -> T:
    """Inside a Ray worker: the driver's home and settings, the driver's torch thread count, then the entry."""
    import torch

    os.environ.update(env)
    torch.set_num_threads(threads)
    return task()
