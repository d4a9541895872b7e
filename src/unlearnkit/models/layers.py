"""Where the transformer layers of a causal LM are, and which parameter group a tensor belongs to.

The decoder layer stack is discovered (the list of ``config.num_hidden_layers`` identical blocks),
not looked up at one fixed attribute path, so RMU's hook, G-effect groups, patching and CRU work on
every common family (tested: Llama, Qwen2, Qwen3, Gemma2, Gemma3, Mistral, Phi-3, GPT-NeoX,
OLMo-2, GPT-2).

The analyses of docs/analysis.md look at a model by **groups**: the embedding, each transformer layer,
and the head (everything after the last layer: final norm and an untied output projection).

    embedding   input (and positional) embeddings — with tied input/output embeddings
                (Llama-style tiny models, GPT-2) the output projection is this same tensor,
                so it is counted here, once
    layer.<l>   every tensor of transformer layer l (attention, MLP, norms)
    head        final norm and, if untied, the output projection (lm_head)

Layers are found by the attribute path of the model family's layer list
(:data:`LAYER_PATHS`); a model whose layers are not at any known path is a clear error naming
the supported families.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnkit.errors import UnlearnkitError

# attribute path of the ModuleList of transformer layers → the families that use it
LAYER_PATHS: dict[str, str] = {
    "model.layers": "Llama, Mistral, Mixtral, Qwen2/Qwen3, Gemma/Gemma2/Gemma3, Phi, Phi-3, OLMo, StableLM",
    "model.decoder.layers": "OPT",
    "transformer.h": "GPT-2, GPT-J, GPT-Neo, Falcon, BLOOM",
    "gpt_neox.layers": "GPT-NeoX, Pythia",
    "transformer.blocks": "MPT",
}
EMBED_MARKERS = ("embed", "wte", "wpe")  # name fragments of embedding tensors outside the layers
OUTPUT_HEADS = ("lm_head", "embed_out")  # top-level names of output projections


def supported_families() -> str:
    return "; ".join(LAYER_PATHS.values())


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


_ENGINES = ("DistributedDataParallel", "DeepSpeedEngine", "FullyShardedDataParallel", "DataParallel")


def unwrap(model: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    """The plain transformers model inside wrappers — DDP / DeepSpeed engines (``.module``), PEFT
    (``get_base_model()``), the adapters-off view (``.wrapped``) — and the name prefix of its tensors in
    ``model`` (e.g. ``base_model.model.`` under PEFT)."""
    prefix = ""
    while True:
        inner = model.__dict__.get("wrapped")  # models.adapters.AdaptersOff (not a submodule: no prefix)
        if isinstance(inner, torch.nn.Module):
            model = inner
            continue
        sub = model._modules.get("module")
        if isinstance(sub, torch.nn.Module) and type(model).__name__ in _ENGINES:
            model, prefix = sub, prefix + "module."
            continue
        if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
            base = model.get_base_model()
            name = next((n for n, m in model.named_modules() if m is base), None)
            model, prefix = base, prefix + (name + "." if name else "")
            continue
        return model, prefix


@dataclass(frozen=True)
class LayerMap:
    """The transformer layers of one model: ``prefix`` + ``<l>.`` names the tensors of layer l.

    ``outer`` is the name prefix a wrapper adds (``base_model.model.`` under PEFT, ``module.`` under
    DDP): names with it are grouped like the plain model's; a LoRA factor belongs to the group of the
    weight it adapts."""

    path: str  # e.g. "model.layers", inside the unwrapped model
    n_layers: int
    families: str
    tied_embeddings: bool
    outer: str = ""

    @property
    def prefix(self) -> str:
        return self.path + "."

    def _plain(self, name: str) -> str:
        return name[len(self.outer):] if self.outer and name.startswith(self.outer) else name

    def layer_of(self, name: str) -> int | None:
        name = self._plain(name)
        if not name.startswith(self.prefix):
            return None
        head = name[len(self.prefix):].split(".", 1)[0]
        return int(head) if head.isdigit() else None

    def group_of(self, name: str) -> str:
        """Group of a parameter/buffer name: ``embedding``, ``layer.<l>`` or ``head``."""
        name = self._plain(name)
        layer = self.layer_of(name)
        if layer is not None:
            return f"layer.{layer}"
        if name.split(".")[0] in OUTPUT_HEADS:
            return "embedding" if self.tied_embeddings else "head"  # tied: the input embedding's tensor
        if any(m in part for part in name.split(".")[:-1] for m in EMBED_MARKERS):
            return "embedding"
        return "head"

    def groups(self) -> list[str]:
        return ["embedding", *(f"layer.{i}" for i in range(self.n_layers)), "head"]

    def check_layer(self, layer: int) -> int:
        if not 0 <= layer < self.n_layers:
            raise UnlearnkitError(
                f"layer {layer} does not exist: the model has {self.n_layers} transformer layers "
                f"(indices 0..{self.n_layers - 1})"
            )
        return layer


def locate_layers(model: torch.nn.Module) -> LayerMap:
    """Find the decoder layer stack of ``model``: the ``ModuleList`` of ``config.num_hidden_layers``
    blocks of one type (the known paths of :data:`LAYER_PATHS` first, then any such list — so a new
    family works without a code change)."""
    model, outer = unwrap(model)
    want = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    known = [(path, families, _get(model, path)) for path, families in LAYER_PATHS.items()]
    found = [(name, "discovered", mod) for name, mod in model.named_modules() if isinstance(mod, torch.nn.ModuleList)]
    for path, families, layers in [*known, *found]:
        if (isinstance(layers, torch.nn.ModuleList) and len(layers) > 0 and (want is None or len(layers) == want)
                and len({type(b) for b in layers}) == 1):
            inp = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
            out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
            tied = inp is not None and out is not None and out.weight is inp.weight
            return LayerMap(path=path, n_layers=len(layers), families=families, tied_embeddings=tied, outer=outer)
    kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise UnlearnkitError(
        f"cannot locate the transformer layers of a {kind!r} model: no list of {want} identical blocks "
        f"(supported families: {supported_families()}; layer lists at {', '.join(LAYER_PATHS)})"
    )


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The model's list of transformer blocks (see :func:`locate_layers`; wrappers are seen through)."""
    return _get(unwrap(model)[0], locate_layers(model).path)


def param_groups(model: torch.nn.Module, layer_map: LayerMap | None = None,
                 trainable_only: bool = True) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """Parameters by group (each tensor once, even when tied), in model order."""
    lm = layer_map or locate_layers(model)
    out: dict[str, list[tuple[str, torch.nn.Parameter]]] = {g: [] for g in lm.groups()}
    for name, p in model.named_parameters():  # named_parameters() yields a tied tensor once
        if trainable_only and not p.requires_grad:
            continue
        out[lm.group_of(name)].append((name, p))
    return out
