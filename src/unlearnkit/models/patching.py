"""Patching: θ_o with the tensors of some parameter groups taken from θ_u.

    θ_{o←u}[g] = θ_u on the tensors of the groups g,  θ_o everywhere else

Groups are those of :mod:`unlearnkit.models.layers` (embedding, each transformer layer, head).
Used by the layer-wise patching sweep (``unlearnkit layers``) and by CRU.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator

import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.adapters import is_peft, merged_tensors
from unlearnkit.models.layers import LayerMap, locate_layers


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (each tied tensor once) and persistent buffers, by name (a LoRA-adapted model: its merged
    tensors under the plain model's names — read-only, see :func:`unlearnkit.models.adapters.merged_tensors`)."""
    if is_peft(model):
        return merged_tensors(model)
    out = dict(model.named_parameters())
    persistent = set(model.state_dict())
    out.update({n: b for n, b in model.named_buffers() if n in persistent})
    return out


def group_tensor_names(model: torch.nn.Module, groups: Iterable[str], layer_map: LayerMap | None = None) -> list[str]:
    lm = layer_map or locate_layers(model)
    want = set(groups)
    unknown = want - set(lm.groups())
    if unknown:
        raise UnlearnkitError(f"unknown parameter group(s) {sorted(unknown)}: the model has {', '.join(lm.groups())}")
    return [n for n in _tensors(model) if lm.group_of(n) in want]


def check_same_architecture(a: torch.nn.Module, b: torch.nn.Module) -> None:
    ta, tb = _tensors(a), _tensors(b)
    if set(ta) != set(tb) or any(ta[n].shape != tb[n].shape for n in ta):
        raise UnlearnkitError("θ_u and θ_o have different architectures (tensor names or shapes differ): patch an "
                              "unlearned model with the original it was made from")


@contextlib.contextmanager
def patched(original: torch.nn.Module, unlearned: torch.nn.Module, groups: Iterable[str],
            layer_map: LayerMap | None = None) -> Iterator[torch.nn.Module]:
    """``original`` with the tensors of ``groups`` copied from ``unlearned``; restored on exit."""
    if is_peft(original):
        raise UnlearnkitError("patching writes into θ_o, which here carries LoRA adapters: pass the plain θ_o (the "
                              "adapted model can be θ_u)")
    check_same_architecture(original, unlearned)
    names = group_tensor_names(original, groups, layer_map)
    to, tu = _tensors(original), _tensors(unlearned)
    saved = {n: to[n].detach().clone() for n in names}
    try:
        with torch.no_grad():
            for n in names:
                to[n].copy_(tu[n])
        yield original
    finally:
        with torch.no_grad():
            for n in names:
                to[n].copy_(saved[n])


def patched_copy(original: torch.nn.Module, unlearned: torch.nn.Module, groups: Iterable[str],
                 layer_map: LayerMap | None = None) -> torch.nn.Module:
    """A new model: θ_o with ``groups`` from θ_u (the inputs are not modified)."""
    with patched(original, unlearned, groups, layer_map) as m:
        return copy.deepcopy(m)


def relative_change(original: torch.nn.Module, unlearned: torch.nn.Module,
                    layer_map: LayerMap | None = None) -> dict[str, float]:
    """Per group ‖θ_u − θ_o‖ / ‖θ_o‖ over its tensors: how far unlearning moved each group."""
    lm = layer_map or locate_layers(original)
    to, tu = _tensors(original), _tensors(unlearned)
    num: dict[str, float] = {g: 0.0 for g in lm.groups()}
    den: dict[str, float] = {g: 0.0 for g in lm.groups()}
    for n, t in to.items():
        if not t.is_floating_point():
            continue
        g = lm.group_of(n)
        num[g] += float((tu[n].double() - t.double()).square().sum())
        den[g] += float(t.double().square().sum())
    return {g: (num[g] / den[g]) ** 0.5 if den[g] else 0.0 for g in lm.groups()}


def transformer_layers(layer_map: LayerMap, layers: Iterable[int] | None = None) -> list[str]:
    idx = list(range(layer_map.n_layers)) if layers is None else [layer_map.check_layer(int(i)) for i in layers]
    return [f"layer.{i}" for i in idx]
