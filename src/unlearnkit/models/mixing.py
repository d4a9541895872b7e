"""Model mixing θ(α) = (1−α)·θ_o + α·θ_u over every floating-point parameter and buffer.

θ_u may be a saved LoRA adapter: then θ_u = θ_o + ΔW tensor by tensor (:mod:`unlearnkit.models.adapters`),
so θ(α) = θ_o + α·ΔW up to the rounding of lerp — the same tensors, bit for bit, as mixing with the
merged weights saved beside the adapter (``peft.save_merged``).

The mix is written into ONE working model in place; θ_o and θ_u are read tensor by tensor
(memory-mapped safetensors files, or state dicts already in memory), so no third full copy of
the weights is materialised. ``torch.lerp`` is exact at the end points: α = 0 gives θ_o and
α = 1 gives θ_u bit for bit. Used by calibration (:mod:`unlearnkit.analysis.calibration`).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Mapping

import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.adapters import ADAPTER_WEIGHTS, Adapter, adapter_base, is_adapter_dir


class _Tensors:
    """Read-only access to a model's tensors: a state dict, the safetensors files of a directory, or a saved LoRA
    adapter (its base's tensors, each adapted weight as base + ΔW — the arithmetic of merging)."""

    def __init__(self, source: Path | str | Mapping[str, torch.Tensor], stack: ExitStack) -> None:
        if isinstance(source, Mapping):
            self._get = source.__getitem__
            self.keys = set(source.keys())
            return
        if is_adapter_dir(source):
            self._adapted(source, stack)
            return
        from safetensors import safe_open

        files = sorted(f for f in Path(source).glob("*.safetensors") if f.name != ADAPTER_WEIGHTS)
        if not files:
            raise UnlearnkitError(f"{str(source)!r} holds no .safetensors weights to mix")
        handles = {}
        for f in files:
            h = stack.enter_context(safe_open(str(f), framework="pt"))
            for k in h.keys():
                handles[k] = h
        self.keys = set(handles)
        self._get = lambda k: handles[k].get_tensor(k)

    def _adapted(self, source: Path | str, stack: ExitStack) -> None:
        adapter = Adapter.load(Path(source).expanduser())
        base = _Tensors(adapter_base(source)[0], stack)
        targets = adapter.targets()
        missing = sorted(set(targets) - base.keys)
        if missing:
            raise UnlearnkitError(f"the adapter in {str(source)!r} adapts {missing[0]!r}, which its base model does not "
                                  "have: it was trained on another model")
        self.keys = base.keys

        def get(k: str) -> torch.Tensor:
            w = base.get(k)
            return w + adapter.delta(k, w).to(w.dtype) if k in targets else w

        self._get = get

    def get(self, k: str) -> torch.Tensor:
        return self._get(k)


def _model_tensors(model) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, by the names used in saved weights (tied tensors once)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            out[name] = t
    return out


class Mixer:
    """Writes θ(α) = lerp(θ_o, θ_u, α) into ``model`` (which has the shared architecture)."""

    def __init__(self, model, theta_o, theta_u) -> None:
        self.model = model
        self._stack = ExitStack()
        self.o, self.u = _Tensors(theta_o, self._stack), _Tensors(theta_u, self._stack)
        if self.o.keys != self.u.keys:
            only = sorted(self.o.keys ^ self.u.keys)[:3]
            raise UnlearnkitError(f"cannot mix models of different architecture: tensors {only} exist in only one of them")
        tensors = _model_tensors(model)
        missing = [n for n, _ in model.named_parameters() if n in tensors and n not in self.o.keys]
        if missing:
            raise UnlearnkitError(f"cannot mix into this model: its tensor {missing[0]!r} is not in the mixed weights "
                                  "(different architecture)")
        # non-persistent buffers (e.g. rotary frequencies) are derived, not saved, and stay as they are
        self.targets = {n: t for n, t in tensors.items() if n in self.o.keys}
        for name in self.targets:
            a, b = self.o.get(name), self.u.get(name)
            if a.shape != self.targets[name].shape:
                raise UnlearnkitError(f"cannot mix into this model: {name!r} has shape {tuple(a.shape)} in the weights "
                                      f"but {tuple(self.targets[name].shape)} in the model (different architecture)")
            if a.shape != b.shape or a.dtype != b.dtype:
                raise UnlearnkitError(f"cannot mix models of different architecture: {name!r} has shape/dtype "
                                      f"{tuple(a.shape)}/{a.dtype} vs {tuple(b.shape)}/{b.dtype}")
        self.alpha: float | None = None

    @torch.no_grad()
    def set(self, alpha: float) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise UnlearnkitError(f"mixing factor α must be in [0, 1], got {alpha}")
        for name, t in self.targets.items():
            a = self.o.get(name)
            if not t.is_floating_point():
                t.copy_(a)
                continue
            b = self.u.get(name)
            t.copy_(torch.lerp(a.to(t.device), b.to(t.device), torch.tensor(alpha, dtype=a.dtype, device=t.device))
                    if a.is_floating_point() else a)
        self.alpha = alpha

    def close(self) -> None:
        self._stack.close()
