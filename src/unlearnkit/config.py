"""Typed configuration: pydantic models, YAML files and dotted ``key=value`` overrides.

Every config is a :class:`StrictModel`: unknown keys and wrong types are errors, reported in
one line that names the key and the fix (``error: config key 'train.lr': Input should be
greater than 0 (got -1)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from unlearnkit.errors import UnlearnkitError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Unknown keys, wrong types and non-finite numbers (nan, inf) are validation errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


class OmitWhenDefault(StrictModel):
    """A config whose knobs named in ``omit_when_default`` (name → default) appear in dumps — and so in the hashes
    of models, entries and runs made from it — only when set: results made before a knob existed keep their hashes."""

    omit_when_default: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _omit_unset_knobs(self, handler):
        out = handler(self)
        if isinstance(out, dict):
            for k, default in self.omit_when_default.items():
                if out.get(k, default) == default:
                    out.pop(k, None)
        return out


# Bounded numeric types for knobs: anything outside is a validation error, not an overflow deep inside torch.
Seed = Annotated[int, Field(ge=0, le=2**31 - 1, description="random seed (0 … 2^31 − 1)")]
Epochs = Annotated[int, Field(ge=1, le=100_000)]
BatchSize = Annotated[int, Field(ge=1, le=1_000_000)]
LearningRate = Annotated[float, Field(gt=0, le=10.0, description="learning rate (0, 10]")]
# Precisions, each named once: how a model is *trained* (engine.train.cpu_autocast; weights stay float32, or float64
# for float64 models), the one dtype every model of a comparison is *evaluated* in (models.lm.resolve_dtype), and the
# weights of the embedded tiny model (TinyLlamaConfig.dtype).
Precision = Literal["auto", "bf16"]
EvalDtype = Literal["auto", "float32", "bfloat16", "float64"]
WeightsDtype = Literal["float32", "float64"]


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in (prefix, *e["loc"]) if x != "")
        got = e.get("input")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `unlearnkit run --help` lists the config files)"
            parts.append(f"config key {loc!r}: {msg}")
        else:
            parts.append(f"config key {loc!r}: {msg} (got {got!r})")
    return "; ".join(parts)


def validate(model: type[M], data: dict[str, Any], prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UnlearnkitError(format_validation_error(err, prefix)) from None


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["train.lr=1e-4", "methods=[ga,npo]"]`` → nested dict. Values are parsed as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UnlearnkitError(f"override {pair!r} is not of the form key=value (e.g. lr=1e-5)")
        key, raw = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise UnlearnkitError(f"override {pair!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UnlearnkitError(f"override {pair!r} conflicts with an earlier override")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not str(path).strip():
        raise UnlearnkitError("the config file path is empty: name a YAML file (presets in configs/)")
    if not p.is_file():
        raise UnlearnkitError(f"config file {str(p)!r} does not exist (see configs/ for presets)")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UnlearnkitError(f"config file {str(p)!r} is not a text file: give a YAML file (presets in configs/)") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UnlearnkitError(f"config file {str(p)!r} is not valid YAML ({first}): fix the file or use a preset in "
                              "configs/") from None
    if not isinstance(data, dict):
        raise UnlearnkitError(f"config file {str(p)!r} must hold a mapping at the top level")
    return data


def load_config(model: type[M], path: str | Path | None, overrides: list[str] | None = None) -> M:
    data = load_yaml(path) if path is not None else {}
    data = deep_merge(data, parse_overrides(overrides or []))
    return validate(model, data)


# ---------------------------------------------------------------------------------------------
# Shared configs of the language-model pipeline


class FactsConfig(StrictModel):
    """The embedded fictitious-facts benchmark (TOFU layout)."""

    seed: Seed = 0
    n_subjects: int = Field(100, ge=10, le=100_000, description="trained subjects (below 100, forget01 and "
                            "forget05 round up to one subject: for smoke tests)")
    facts_per_subject: int = Field(4, ge=1, le=10)
    n_perturbed: int = Field(3, ge=3, le=6)
    n_real_authors: int = Field(30, ge=5, le=40)
    n_world_facts: int = Field(30, ge=5, le=40)
    retain_eval_size: int | None = Field(
        None, ge=1, description="records in retain_perturbed; default = size of forget10"
    )


class TinyLlamaConfig(StrictModel):
    """Architecture of the embedded Llama-style causal LM."""

    hidden_size: int = Field(128, ge=16)
    num_hidden_layers: int = Field(4, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(352, ge=16)
    max_position_embeddings: int = Field(128, ge=32)
    vocab_size: int = Field(2048, ge=300, description="size of the locally trained tokenizer")
    dtype: WeightsDtype = Field(
        "float64", description="weights (initialised, trained, saved and evaluated in it): float64 makes the embedded "
        "benchmark's table the same on every CPU kernel path and thread count (docs/benchmark.md, Determinism); "
        "float32 steps are about 1.7-2x faster and its digits move with the CPU")

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyLlamaConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        return self


class TrainRecipe(OmitWhenDefault):
    """Supervised fine-tuning recipe (used for base, original and reference models)."""

    lr: LearningRate = 1e-3
    epochs: Epochs = 10
    batch_size: BatchSize = 32
    grad_accum: int = Field(1, ge=1, le=100_000)
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    schedule: Literal["linear", "constant", "cosine"] = "cosine"
    seed: Seed = 0
    precision: Precision = Field(
        "auto", description="auto = bf16 mixed precision on a GPU that has it, float32 on a CPU; bf16 = bf16 autocast "
        "on a CPU too (float32 weights; ~1.7x faster where the CPU has native bf16)")

    omit_when_default: ClassVar[dict[str, Any]] = {"precision": "auto"}  # models built before keep their hash


class BuildConfig(StrictModel):
    """What `unlearnkit models build` builds."""

    data: FactsConfig = FactsConfig()
    pretrained: str | None = Field(
        None, description="start from this pretrained causal LM (hub name, local directory, GGUF file, or a short name "
        "such as smollm2-135m) instead of training the tiny Llama from scratch; `model` is then ignored")
    prompt: str | dict | None = Field(
        None, description="prompt format the models are built with (a preset: plain, chatml, smollm2, "
        "openunlearning-llama3; or fields); None = the tokenizer's chat template if it has one")
    model: TinyLlamaConfig = TinyLlamaConfig()
    base: TrainRecipe = TrainRecipe(lr=2e-3, epochs=40, batch_size=16)
    finetune: TrainRecipe = TrainRecipe(lr=2e-3, epochs=20, batch_size=16)
    replay_utility: bool = Field(
        True, description="mix the base model's utility facts into fine-tuning (see docs)"
    )
    forget_splits: list[Literal["forget01", "forget05", "forget10"]] = ["forget10"]

    def with_forget(self, forget: str) -> BuildConfig:
        """This build with θ_r for ``forget`` too (``forget_splits`` ∪ {forget}, sorted)."""
        return self.model_copy(update={"forget_splits": sorted({*self.forget_splits, forget})})
