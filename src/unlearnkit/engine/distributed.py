"""Several processes of one job (``torchrun`` / ``accelerate launch``): who am I, split the work, gather it back.

Every process runs the same recipe code in the same order. The rules that keep them in step:

- **work is split, results are gathered**: :func:`shard` gives this process its share of a list
  (round robin, so a length-sorted list stays balanced); :func:`gather` returns every process's
  share to every process;
- **decisions and writes happen on the main process**: :func:`on_main` waits for every process
  (a barrier), runs a function on the main process only and hands its result (or its exception)
  to all of them — every write of the results layer and every model save goes through it, so a
  file exists for every process as soon as the call returns, and no process can read a half-done
  state;
- **file locks are taken by the main process only** (:func:`unlearnkit.io.locked`), so a process
  never blocks on a lock its main process holds while the main process waits for it.

The launcher's environment decides everything: ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (set by
torchrun and accelerate launch) and the accelerate configuration's ``ACCELERATE_USE_FSDP`` /
``ACCELERATE_USE_DEEPSPEED`` (:func:`strategy`). The process group is created lazily through
``accelerate`` (gloo on a CPU, nccl on GPUs). One process: every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch

from unlearnkit.errors import UnlearnkitError

T = TypeVar("T")
Strategy = Literal["single", "ddp", "fsdp", "deepspeed"]


def world_size() -> int:
    """Number of processes of this job (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise UnlearnkitError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number: start several processes "
                              "with torchrun or accelerate launch, which set it") from None


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def strategy() -> Strategy:
    """How training is distributed: from the accelerate configuration (``accelerate launch --config_file
    configs/accelerate/X.yaml`` exports it; with torchrun set ``ACCELERATE_USE_FSDP=true``)."""
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        return "deepspeed"
    if _flag("ACCELERATE_USE_FSDP"):
        if os.environ.get("FSDP_VERSION", "2") != "2":
            raise UnlearnkitError("unlearnkit shards with FSDP2: set fsdp_version: 2 in the accelerate config "
                                  "(configs/accelerate/fsdp.yaml) or FSDP_VERSION=2")
        return "fsdp"
    return "ddp" if world_size() > 1 else "single"


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def device() -> torch.device:
    """This process's device: its own GPU (``cuda:LOCAL_RANK``) when there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def init() -> None:
    """Create the process group (once) when the launcher started several processes."""
    if world_size() == 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if "MASTER_ADDR" not in os.environ:
        raise UnlearnkitError("WORLD_SIZE > 1 but MASTER_ADDR is not set: start the processes with torchrun "
                              "(torchrun --nproc_per_node N -m unlearnkit …) or accelerate launch")
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def barrier() -> None:
    if world_size() > 1:
        init()
        torch.distributed.barrier()


def gather(obj: T) -> list[T]:
    """Every process's ``obj``, in rank order, on every process (``[obj]`` with one process)."""
    if world_size() == 1:
        return [obj]
    init()
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast(obj: T) -> T:
    """The main process's ``obj`` on every process."""
    if world_size() == 1:
        return obj
    init()
    box = [obj if is_main() else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


_in_main_only = [False]  # inside on_main's function on the main process: nested calls just run


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on the main process only, after every process arrived; every process gets its result
    (or raises its exception). Nested calls (a write inside a write) run directly."""
    if world_size() == 1 or _in_main_only[0]:
        return fn()
    barrier()
    out: tuple[str, Any] = ("ok", None)
    if is_main():
        _in_main_only[0] = True
        try:
            out = ("ok", fn())
        except Exception as e:  # handed to every process, so none waits forever
            out = ("error", e)
        finally:
            _in_main_only[0] = False
    kind, value = broadcast(out)
    if kind == "error":
        raise value
    return value


def shard(items: list[T]) -> list[T]:
    """This process's share of ``items`` (round robin: items r, r + n, r + 2n, …)."""
    return items[rank()::world_size()] if world_size() > 1 else items


def reduce_mean(values: list[float]) -> list[float]:
    """Element-wise mean of ``values`` over the processes."""
    if world_size() == 1 or not values:
        return values
    init()
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(t)
    return (t / world_size()).tolist()


def all_true(flag: bool) -> bool:
    """True when ``flag`` is True on every process."""
    if world_size() == 1:
        return flag
    init()
    t = torch.tensor([0.0 if flag else 1.0], device=_comm_device())
    torch.distributed.all_reduce(t)
    return float(t.item()) == 0.0


def _comm_device() -> torch.device:
    return device() if torch.distributed.get_backend() == "nccl" else torch.device("cpu")


def main_first(fn: Callable[[], T]) -> T:
    """``fn()`` on the main process first (e.g. it builds data into the cache; its exception reaches every
    process), then on the others, which find the result cached. ``fn`` must not use collectives."""
    out = on_main(fn)
    return out if is_main() else fn()


def describe() -> dict[str, Any]:
    """For provenance: how many processes produced a result, and how training was distributed."""
    return {"processes": world_size(), "strategy": strategy()}
