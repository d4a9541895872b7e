"""LoRA adapters (``peft``): train low-rank ΔW = (α/r)·B·A on a frozen base instead of every weight.

Any language-model method trains adapters when its params carry a ``peft`` section
(:class:`LoraSpec`: rank, alpha, dropout, target modules or ``all-linear``). The pieces:

- :func:`add_lora` wraps a model in place (``peft.get_peft_model``; the base weights are frozen);
- :class:`AdaptersOff` is θ_o for the methods that need the original model: the *same* network
  with its adapters switched off — no second copy of the weights;
- :class:`Adapter` holds the trained factors; ``delta(name)`` is ΔW of one base weight, computed as
  peft merges it, ``(B @ A) · scaling``. Merging (:meth:`Adapter.merge_into`), loading a saved
  adapter (:func:`load_adapter_model`) and calibration mixing (:mod:`unlearnkit.models.mixing`)
  all use this one formula, so θ_o + ΔW is the same tensor wherever it is formed, and mixing on
  adapters equals mixing with the merged weights bit for bit.

On disk an adapter is peft's own format (``adapter_config.json`` + ``adapter_model.safetensors``,
loadable with ``PeftModel.from_pretrained``) plus ``unlearnkit_adapter.json``, which names the base
model and its fingerprint (so a changed base is an error, and the directory's fingerprint covers
its base). ``peft.save_merged: true`` saves the merged weights as the directory's model and the adapter in
``adapter/`` inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_META = "unlearnkit_adapter.json"
_PREFIX = "base_model.model."  # peft's name of the wrapped model's parameters


class LoraSpec(StrictModel):
    """The ``peft`` section of a method's params: train LoRA adapters instead of every weight."""

    r: int = Field(8, ge=1, le=4096, description="rank of the adapters")
    alpha: float = Field(16.0, gt=0, description="scaling numerator: ΔW = (alpha / r)·B·A")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="module names to adapt (e.g. [q_proj, v_proj]) or all-linear (every linear layer "
        "but the output head)")
    save_merged: bool = Field(False, description="also save the merged weights θ_o + ΔW beside the adapter")


def require_peft():
    try:
        import peft
    except ImportError:
        raise UnlearnkitError("LoRA (a `peft` section in the params) needs the peft package: pip install peft") from None
    return peft


def is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def add_lora(model: torch.nn.Module, spec: LoraSpec, seed: int = 0) -> torch.nn.Module:
    """``model`` wrapped with fresh LoRA adapters (a ``PeftModel``; ``model`` itself gains the adapter layers and its
    own weights are frozen). The adapters' initial values are fixed by ``seed`` and leave the global RNG as it was."""
    peft = require_peft()
    if is_peft(model):
        raise UnlearnkitError("the model already carries adapters: pass the plain model (unlearnkit adds them)")
    cfg = peft.LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, bias="none",
                          target_modules=spec.target_modules, task_type="CAUSAL_LM")
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            wrapped = peft.get_peft_model(model, cfg)
        except ValueError as e:
            raise UnlearnkitError(f"peft.target_modules={spec.target_modules!r} matches no module of this model "
                                  f"({str(e).splitlines()[0][:120]}): name linear layers such as q_proj, v_proj, or "
                                  "use all-linear") from None
    return wrapped


class AdaptersOff(torch.nn.Module):
    """θ_o without a copy: calls the adapted network with its adapters disabled, in eval mode, without gradients.

    Attribute lookups (``config``, ``get_decoder`` …) reach the wrapped model; :func:`unlearnkit.models.layers.unwrap`
    sees through it, so hooks on its transformer layers (RMU) land on the shared layers."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "wrapped", model)  # not a submodule: its weights are not this module's

    def forward(self, *args, **kwargs):
        m = self.wrapped
        was = m.training
        m.eval()
        try:
            with m.disable_adapter(), torch.no_grad():
                return m(*args, **kwargs)
        finally:
            m.train(was)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "wrapped"), name)


def peft_model_of(model: torch.nn.Module) -> torch.nn.Module:
    """The ``PeftModel`` inside engine wrappers (DDP, DeepSpeed: ``.module``)."""
    while not is_peft(model) and isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    return model


def _weight_name(key: str) -> str | None:
    """peft's saved key of a lora_A factor → the name of the base weight it adapts (None for other keys)."""
    if not key.endswith(".lora_A.weight"):
        return None
    name = key[: -len(".lora_A.weight")] + ".weight"
    return name[len(_PREFIX):] if name.startswith(_PREFIX) else name


@dataclass
class Adapter:
    """Trained LoRA factors in peft's saved form (CPU tensors) and their peft config."""

    state: dict[str, torch.Tensor]  # peft keys (…q_proj.lora_A.weight / lora_B.weight)
    config: dict  # peft's LoraConfig as a dict (adapter_config.json)

    @classmethod
    def of(cls, model) -> Adapter:
        peft = require_peft()
        state = {k: v.detach().to("cpu", copy=True).contiguous()
                 for k, v in peft.get_peft_model_state_dict(model).items()}
        config = model.peft_config["default"].to_dict()
        bad = [k for k in state if ".lora_A." not in k and ".lora_B." not in k]
        if bad:
            raise UnlearnkitError(f"adapter tensor {bad[0]!r} is not a LoRA factor of a linear layer: unlearnkit "
                                  "supports LoRA on linear layers (target_modules of nn.Linear)")
        return cls(state, {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()})

    def scaling(self, name: str) -> float:
        cfg = self.config
        short = name.rsplit(".", 1)[0]
        r = next((v for k, v in (cfg.get("rank_pattern") or {}).items() if short.endswith(k)), cfg["r"])
        alpha = next((v for k, v in (cfg.get("alpha_pattern") or {}).items() if short.endswith(k)), cfg["lora_alpha"])
        return alpha / (r ** 0.5) if cfg.get("use_rslora") else alpha / r

    def targets(self) -> dict[str, str]:
        """Base weight name → the peft key prefix of its factors."""
        return {w: k[: -len(".lora_A.weight")] for k in self.state if (w := _weight_name(k)) is not None}

    def delta(self, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
        """ΔW of base weight ``name``: (B @ A) · scaling, as peft merges it (on ``like``'s device)."""
        key = self.targets()[name]
        a, b = self.state[key + ".lora_A.weight"], self.state[key + ".lora_B.weight"]
        if like is not None:
            a, b = a.to(like.device), b.to(like.device)
        return (b @ a) * self.scaling(name)

    @torch.no_grad()
    def merge_into(self, model: torch.nn.Module) -> None:
        """W += ΔW for every adapted weight of the plain ``model`` (in place)."""
        params = dict(model.named_parameters())
        for name in self.targets():
            if name not in params:
                raise UnlearnkitError(f"the adapter adapts {name!r}, which this model does not have: merge it into the "
                                      "base model it was trained on")
            w = params[name]
            w.data += self.delta(name, w).to(w.dtype)

    def save(self, path: Path, base: str | None, base_fingerprint: str | None) -> None:
        """peft's adapter files plus the base it belongs to (``unlearnkit_adapter.json``)."""
        from safetensors.torch import save_file

        from unlearnkit.io import atomic_write_json, to_home_relative

        path.mkdir(parents=True, exist_ok=True)
        save_file(self.state, str(path / ADAPTER_WEIGHTS), metadata={"format": "pt"})
        atomic_write_json(path / ADAPTER_CONFIG, {**self.config, "base_model_name_or_path": base})
        atomic_write_json(path / ADAPTER_META, {"base": to_home_relative(base) if base else None,
                                                "base_fingerprint": base_fingerprint})

    @classmethod
    def load(cls, path: Path) -> Adapter:
        from safetensors.torch import load_file

        try:
            config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            state = load_file(str(path / ADAPTER_WEIGHTS))
        except (OSError, ValueError) as e:
            raise UnlearnkitError(f"{str(path)!r} holds no readable LoRA adapter ({type(e).__name__}): save it with "
                                  "unlearnkit (or peft's save_pretrained)") from None
        if config.get("peft_type") not in (None, "LORA"):
            raise UnlearnkitError(f"{str(path)!r} holds a {config.get('peft_type')} adapter: only LoRA is supported")
        return cls(state, config)


def is_adapter_dir(path: str | Path) -> bool:
    p = Path(path).expanduser()
    return p.is_dir() and (p / ADAPTER_CONFIG).is_file() and not (p / "config.json").is_file()


def adapter_base(path: str | Path) -> tuple[str, str | None]:
    """(base model path or hub name, its recorded fingerprint) of a saved adapter."""
    from unlearnkit.io import from_home_relative, read_json_or_none

    p = Path(path).expanduser()
    meta = read_json_or_none(p / ADAPTER_META) or {}
    base = meta.get("base") or (read_json_or_none(p / ADAPTER_CONFIG) or {}).get("base_model_name_or_path")
    if not base:
        raise UnlearnkitError(f"the adapter in {str(p)!r} does not name its base model: add base_model_name_or_path to "
                              f"{ADAPTER_CONFIG}")
    return from_home_relative(base), meta.get("base_fingerprint")


def merged_tensors(model) -> dict[str, torch.Tensor]:
    """The tensors of an adapted model as the plain model would name them, adapted weights merged (W + ΔW, new
    tensors; the model is not changed): how patching and CRU see through a ``PeftModel``."""
    adapter = Adapter.of(model)
    base = model.get_base_model()
    persistent = set(base.state_dict())
    out: dict[str, torch.Tensor] = {}
    for n, t in [*base.named_parameters(), *((n, b) for n, b in base.named_buffers() if n in persistent)]:
        if ".lora_" in n:
            continue
        plain = n.replace(".base_layer.", ".")
        out[plain] = t.detach() + adapter.delta(plain, t).to(t.dtype) if plain in adapter.targets() else t
    return out
