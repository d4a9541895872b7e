"""Sharded training (FSDP2, DeepSpeed ZeRO-3) without giving up the plain model the caller holds.

The caller's model stays a plain ``nn.Module`` throughout. For a sharded strategy the training loop
builds a **shadow**: a structural copy of the model whose parameters *alias* the caller's storage (no
copy is made), then shards it — ``fully_shard`` (FSDP2) or a ZeRO-3 engine — which copies each
process's shard to its device and leaves the caller's tensors untouched. Training updates the shards;
:func:`write_back` gathers them tensor by tensor into the caller's model at the end (and before each
epoch-end callback), so after :func:`unlearnkit.engine.train.train_loop` every process holds the same
θ_u in the same object, exactly as with one process or DDP. On a GPU the caller's copy waits on the
CPU while the shards train (:func:`park`).

The frozen reference model θ_o of the methods that need one is sharded the same way
(:func:`frozen_reference`): a sharded shadow with gradients off — never a full copy per process.

FSDP2 is applied here (one ``fully_shard`` unit per transformer block, named by the model's
``_no_split_modules``, plus the root), on GPUs and on CPUs alike (accelerate's own FSDP needs GPUs);
ZeRO-3 goes through accelerate's DeepSpeed integration (not run in this repository's tests: they have
no GPU — see docs/scale.md).
"""

from __future__ import annotations

import copy
import os

import torch

from unlearnkit.engine import distributed as dist
from unlearnkit.errors import UnlearnkitError


def shadow(model: torch.nn.Module, trainable: bool = True) -> torch.nn.Module:
    """A copy of ``model``'s structure whose parameters share the caller's storage (no tensor is copied;
    buffers are cloned, they are small). Sharding the shadow replaces its parameters, never the caller's."""
    memo: dict[int, object] = {}
    for p in model.parameters():
        if id(p) not in memo:
            memo[id(p)] = torch.nn.Parameter(p.detach(), requires_grad=p.requires_grad and trainable)
    for b in model.buffers():
        memo.setdefault(id(b), b.detach().clone())
    return copy.deepcopy(model, memo)


def _fsdp_units(model: torch.nn.Module) -> list[torch.nn.Module]:
    names = set(getattr(model, "_no_split_modules", None) or [])
    units = [m for m in model.modules() if type(m).__name__ in names and m is not model]
    if not units:  # no declared blocks: every block of the longest list of identical modules
        lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0
                 and len({type(x) for x in m}) == 1]
        units = list(max(lists, key=len)) if lists else []
    return units


def fsdp_shard(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2 ``fully_shard`` on every transformer block and on the root, over all processes, in place."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    dist.init()
    dev = dist.device()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    mesh = init_device_mesh(dev.type, (dist.world_size(),))
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if dev.type == "cuda" and torch.cuda.is_bf16_supported() else MixedPrecisionPolicy()
    reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() not in ("false", "0", "no_shard")
    for unit in _fsdp_units(model):
        fully_shard(unit, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    fully_shard(model, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
    return model


def sharded(model: torch.nn.Module, strategy: str) -> torch.nn.Module:
    """The trainable shadow of ``model`` for a sharded strategy (FSDP2 applied; ZeRO-3 is applied by
    ``accelerator.prepare``)."""
    s = shadow(model)
    return fsdp_shard(s) if strategy == "fsdp" else s


def frozen_reference(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen θ_o for the objective: a plain copy with one process or DDP, a sharded shadow under FSDP2 or
    ZeRO-3 (each process holds its shard only)."""
    strategy = dist.strategy()
    if strategy == "fsdp":
        return fsdp_shard(shadow(model, trainable=False)).eval()
    if strategy == "deepspeed":
        return _deepspeed_reference(shadow(model, trainable=False))
    return copy.deepcopy(model).eval().requires_grad_(False)


def _deepspeed_reference(model: torch.nn.Module) -> torch.nn.Module:
    """ZeRO-3 inference engine for a frozen model (the pattern of TRL's ``prepare_deepspeed``). Not run here."""
    import deepspeed
    from accelerate.state import AcceleratorState

    plugin = AcceleratorState().deepspeed_plugin
    if plugin is None:
        raise UnlearnkitError("ACCELERATE_USE_DEEPSPEED is set but accelerate has no DeepSpeed plugin: launch with "
                              "accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml")
    cfg = copy.deepcopy(plugin.deepspeed_config)
    for key in ("optimizer", "scheduler", "train_batch_size", "gradient_accumulation_steps"):
        cfg.pop(key, None)
    cfg["train_micro_batch_size_per_gpu"] = 1  # never trains; the value only has to be concrete
    zero = cfg.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        cfg["zero_optimization"] = zero = {"stage": 0}
    hidden = getattr(getattr(model, "config", None), "hidden_size", None) or 4096
    auto = {"reduce_bucket_size": hidden * hidden, "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
            "stage3_param_persistence_threshold": 10 * hidden}
    for k, v in list(zero.items()):
        if v == "auto":
            zero[k] = auto.get(k, 0)
    engine, *_ = deepspeed.initialize(model=model, config=cfg)
    engine.eval()
    return engine


@torch.no_grad()
def write_back(trained: torch.nn.Module, model: torch.nn.Module, strategy: str) -> None:
    """Copy the sharded shadow's weights into the caller's ``model``, tensor by tensor (collective: every
    process calls it; at most one gathered tensor is held at a time)."""
    target = dict(model.named_parameters())
    if strategy == "deepspeed":
        import deepspeed

        module = getattr(trained, "module", trained)
        for name, p in module.named_parameters():
            with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
                target[name].copy_(p.detach().to(target[name].device, target[name].dtype))
        return
    from torch.distributed.tensor import DTensor

    for name, p in trained.named_parameters():
        full = p.full_tensor() if isinstance(p, DTensor) else p
        target[name].copy_(full.detach().to(target[name].device, target[name].dtype))


def park(model: torch.nn.Module) -> torch.device | None:
    """Move the caller's full copy off the GPU while its shards train (returns where it was)."""
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cuda":
        return None
    model.to("cpu")
    return p.device


def replica_checksum(model: torch.nn.Module) -> float:
    """Σ over every weight (float64): equal on every process when the processes hold the same θ."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum().item() for p in model.parameters()))
