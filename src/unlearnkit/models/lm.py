"""Build, save and load causal language models through one ``from_pretrained`` path.

The embedded models are tiny Llama-architecture models built from a config; released models
(e.g. ``open-unlearning/tofu_Llama-3.2-1B-Instruct_full``) load the same way from a hub name
(``org/name``, optionally at a ``revision``) or a local directory.

Loading is safe by default: weights come from ``safetensors`` files only (a pickled
``pytorch_model.bin`` is refused unless the caller passes ``allow_pickle=True``), and the tokenizer
is checked against the model (vocabulary size, special-token ids, and — for models unlearnkit
saved — the vocabulary's content hash recorded at save time).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from unlearnkit.config import TinyLlamaConfig
from unlearnkit.data.prompts import prompt_format, resolve_prompt, set_prompt_format, tokenizer_hash
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.precision import keep_float64_norms, train_dtype
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_dir, atomic_write_json, file_hash, home, lock_path, locked, read_json_or_none
from unlearnkit.models.adapters import Adapter, adapter_base, is_adapter_dir, is_peft, merged_tensors
from unlearnkit.models.families import aliases
from unlearnkit.models.sources import gguf_digest, resolve_revision

keep_float64_norms()  # float64 models (the embedded ones) compute in float64 throughout
MODEL_META = "unlearnkit_model.json"  # written by save_model beside the weights
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def build_tiny_llama(cfg: TinyLlamaConfig, tokenizer, seed: int) -> LlamaForCausalLM:
    """A freshly initialised Llama-style model in ``cfg.dtype`` (deterministic for a seed: the weights are drawn in
    that dtype, whose normal sampler gives the same bits on every CPU kernel path)."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        dtype=cfg.dtype,
    )
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, cfg.dtype))  # initialised in its own dtype, not rounded from float32
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_model(model, tokenizer, path: Path) -> None:
    """``save_pretrained`` (safetensors) for the model and its tokenizer, plus the tokenizer's hash and
    the prompt format the model is used with (restored by :func:`load_model`). In a job of several
    processes the main process saves (every process holds the same weights)."""
    dist.on_main(lambda: _save_model(model, tokenizer, Path(path)))


def _save_model(model, tokenizer, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if is_peft(model):  # mid-run under LoRA (e.g. an epoch checkpoint): the merged weights, as a plain model
        model.get_base_model().save_pretrained(path, safe_serialization=True, state_dict=merged_tensors(model))
    else:
        model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    atomic_write_json(path / MODEL_META, {"tokenizer_hash": tokenizer_hash(tokenizer),
                                          "prompt": prompt_format(tokenizer).model_dump()})


def is_hub_name(name: str) -> bool:
    """``org/name`` that is not an existing local path (hub models)."""
    return bool(_HUB_NAME.match(name)) and not Path(name).exists()


def split_revision(name: str) -> tuple[str, str | None]:
    """``org/name@rev`` → (``org/name``, ``rev``); anything else unchanged."""
    base, sep, rev = name.rpartition("@")
    if sep and rev and is_hub_name(base):
        return base, rev
    return name, None


def pickle_allowed() -> bool:
    """Pickled weights load only when the user said so (``unlearnkit --allow-pickle …``)."""
    return os.environ.get("UNLEARNKIT_ALLOW_PICKLE") == "1"


def _check_local(name: str) -> None:
    if not is_hub_name(name) and not Path(name).expanduser().exists():
        raise UnlearnkitError(f"model path {name!r} does not exist (build the embedded models with `unlearnkit models "
                              "build`, or give a hub name as org/name)")


def load_tokenizer(name_or_path: str | Path, revision: str | None = None):
    name, rev = split_revision(str(name_or_path))
    revision = revision or rev
    _check_local(name)
    try:
        tok = AutoTokenizer.from_pretrained(os.path.expanduser(name), revision=revision)
    except (OSError, ValueError) as e:
        if not is_hub_name(name):
            raise UnlearnkitError(
                f"model path {name!r} has no tokenizer files (tokenizer.json / tokenizer_config.json); "
                "save one there with tokenizer.save_pretrained(path)"
            ) from None
        raise UnlearnkitError(f"cannot load the tokenizer of hub model {name!r} ({type(e).__name__}; no local "
                              f"directory of that name exists either): download it first (`hf download {name}`) "
                              "or pass a local path") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name_or_path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               revision: str | None = None, allow_pickle: bool | None = None, prompt=None):
    """Load (model, tokenizer) from a local directory, a hub name (``org/name``, ``org/name@revision``),
    a GGUF file or a short name (:func:`unlearnkit.models.families.aliases`, e.g. ``smollm2-135m``).

    ``dtype=None`` loads the precision the model trains in (:func:`unlearnkit.engine.precision.train_dtype` of the
    stored dtype: float64 models stay float64, everything else is float32). The tokenizer carries the prompt format:
    ``prompt`` (a preset name or :class:`PromptFormat`) if given, else the one saved with the model, else the
    default. Clear errors for a missing path,
    pickled weights, or a tokenizer that does not belong to the model."""
    name_or_path = resolve_source(str(name_or_path))
    if is_adapter_dir(name_or_path):
        return load_adapter_model(name_or_path, device, dtype, prompt)
    name, rev = split_revision(str(name_or_path))
    revision = revision or rev
    allow_pickle = pickle_allowed() if allow_pickle is None else allow_pickle
    tok = load_tokenizer(name, revision)
    try:
        model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(name),
                                                     dtype=dtype or train_dtype(stored_dtype(name)), revision=revision,
                                                     use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if not allow_pickle and ("safetensors" in msg.lower() or "pytorch_model.bin" in msg):
            raise UnlearnkitError(f"{name!r} has no .safetensors weights: unlearnkit loads safetensors only (pickled "
                                  "weights can run code); convert the model, or run `unlearnkit --allow-pickle …` if "
                                  "you trust it") from None
        raise UnlearnkitError(f"cannot load model {name!r}: {msg}") from None
    except Exception as e:  # safetensors errors on damaged files
        raise UnlearnkitError(f"cannot load model {name!r}: its weights are damaged ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:120]}); rebuild or re-download it") from None
    check_tokenizer(model, tok, name)
    meta = read_json_or_none(Path(name).expanduser() / MODEL_META) if not is_hub_name(name) else None
    saved = meta.get("prompt") if isinstance(meta, dict) else None
    set_prompt_format(tok, resolve_prompt(prompt) or (resolve_prompt(saved) if saved else None))
    model.unlearnkit_source = f"{name}@{revision}" if revision else name
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok


def is_saved_model(path: str | Path) -> bool:
    """A directory holding a saved model: full weights (``config.json``) or a LoRA adapter."""
    p = Path(path).expanduser()
    return (p / "config.json").is_file() or is_adapter_dir(p)


def load_adapter_model(path: str | Path, device=None, dtype: torch.dtype | None = None, prompt=None):
    """(model, tokenizer) of a saved LoRA θ_u: its base (checked against the recorded fingerprint) loaded in the
    dtype it trains in (float32, or float64 for float64 models), the adapter merged (θ_o + ΔW,
    :class:`unlearnkit.models.adapters.Adapter`), then cast to ``dtype``."""
    path = Path(path).expanduser()
    base, fingerprint = adapter_base(path)
    if fingerprint is not None and model_id(base) != fingerprint:
        raise UnlearnkitError(f"the base model of the adapter in {str(path)!r} ({base}) changed since the adapter was "
                              "trained (fingerprint mismatch): restore that base, or retrain the adapter")
    model, tok = load_model(base, prompt=prompt)
    Adapter.load(path).merge_into(model)
    if (path / "tokenizer_config.json").is_file():
        tok = load_tokenizer(path)
        check_tokenizer(model, tok, str(path))
        meta = read_json_or_none(path / MODEL_META)
        saved = meta.get("prompt") if isinstance(meta, dict) else None
        set_prompt_format(tok, resolve_prompt(prompt) or (resolve_prompt(saved) if saved else None))
    model.unlearnkit_source = str(path)
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval(), tok


def save_adapter_model(adapter: Adapter, tokenizer, path: Path, base: str, merged=None) -> None:
    """A LoRA θ_u: the adapter (peft's files + its base and the base's fingerprint), the tokenizer and prompt format.
    With ``merged`` (the merged model) the directory holds the full merged weights and the adapter moves to
    ``adapter/`` (transformers would otherwise apply an adapter it finds beside full weights a second time).
    The main process saves."""
    def save() -> None:
        adapter.save(path / "adapter" if merged is not None else path, base, model_id(base))
        if merged is not None:
            merged.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)
        atomic_write_json(path / MODEL_META, {"tokenizer_hash": tokenizer_hash(tokenizer),
                                              "prompt": prompt_format(tokenizer).model_dump(), "adapter": True})

    dist.on_main(save)


def check_tokenizer(model, tok, name: str) -> None:
    """The tokenizer must belong to the model: size, special-token ids, recorded vocabulary hash."""
    n_embed = model.get_input_embeddings().num_embeddings
    if n_embed < len(tok):
        raise UnlearnkitError(f"tokenizer of {name!r} has {len(tok)} tokens but the model's embedding has {n_embed}: "
                              "the tokenizer does not match the model")
    eos = model.config.eos_token_id
    eos = set(eos) if isinstance(eos, (list, tuple)) else ({eos} if eos is not None else set())
    if eos and tok.eos_token_id is not None and tok.eos_token_id not in eos:
        raise UnlearnkitError(f"tokenizer of {name!r} has EOS id {tok.eos_token_id} but the model expects "
                              f"{sorted(eos)}: the tokenizer does not match the model")
    meta = read_json_or_none(Path(name).expanduser() / MODEL_META) if not is_hub_name(name) else None
    if meta and meta.get("tokenizer_hash") and meta["tokenizer_hash"] != tokenizer_hash(tok):
        raise UnlearnkitError(f"the tokenizer files in {name!r} are not the ones the model was saved with (same "
                              "size, different vocabulary): restore the original tokenizer files")


NOT_CONTENT = {MODEL_META, "unlearnkit.json"}  # metadata unlearnkit writes beside a model (it may hold the digest)


def model_files(directory: Path) -> list[Path]:
    """The files that make up a saved model (weights, configs, tokenizer)."""
    return sorted(x for x in directory.iterdir() if x.is_file() and x.name not in NOT_CONTENT
                  and x.suffix in {".safetensors", ".json", ".bin", ".model", ".txt"})


def model_fingerprint(path: str | Path) -> str:
    """Content hash of a saved model directory (weights + config + tokenizer).

    Cached under ``$UNLEARNKIT_HOME/cache/fingerprints`` keyed by the files' sizes and mtimes, so a
    large model is hashed once and nothing is ever written into the model's own directory.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UnlearnkitError(f"model path {str(path)!r} does not exist or is not a directory (build the embedded "
                              "models with `unlearnkit models build`, or give a hub name as org/name)")
    files = model_files(p)
    if not files:
        raise UnlearnkitError(f"{str(p)!r} holds no model files")
    stamp = ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    side = home() / "cache" / "fingerprints" / f"{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:24]}.json"
    saved = read_json_or_none(side)
    if isinstance(saved, dict) and saved.get("stamp") == stamp:
        return saved["digest"]
    digest = file_hash(files)
    try:
        atomic_write_json(side, {"path": str(p.resolve()), "stamp": stamp, "digest": digest})
    except (OSError, UnlearnkitError):
        pass  # the fingerprint is still correct; it just is not cached
    return digest


def model_id(path: str, model=None) -> str:
    """Identity of a model for caches and entry hashes: the content hash of a local directory; for a hub
    model its name and the revision it resolved to (the commit, when the loaded ``model`` tells it)."""
    path = resolve_source(str(path))
    name, rev = split_revision(path)
    if not is_hub_name(name):
        return model_fingerprint(name)
    commit = getattr(getattr(model, "config", None), "_commit_hash", None) if model is not None else None
    return f"hub-{name.replace('/', '--')}@{commit or resolve_revision(name, rev)}"


def resolve_dtype(name: str, model: str | Path | None = None) -> torch.dtype:
    """The evaluation dtype ``name`` (config.EvalDtype). ``auto``: float64 when ``model`` (the comparison's θ_o) is
    stored in float64 (the embedded tiny models), else bfloat16 on a GPU that has it, else float32."""
    if name in ("float32", "bfloat16", "float64"):
        return getattr(torch, name)
    if model is not None and stored_dtype(model) == torch.float64:
        return torch.float64
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32


def stored_dtype(model: str | Path) -> torch.dtype | None:
    """The dtype a model's ``config.json`` records (a local directory's, or a hub model's through transformers'
    config loader: cached or fetched as ``from_pretrained`` would); None when it records none or cannot be read."""
    name, rev = split_revision(resolve_source(str(model)))
    path = Path(name).expanduser()
    if path.is_dir():
        cfg = read_json_or_none(path / "config.json")
        value = (cfg.get("dtype") or cfg.get("torch_dtype")) if isinstance(cfg, dict) else None
    elif is_hub_name(name):
        try:
            from transformers import AutoConfig

            hub = AutoConfig.from_pretrained(name, revision=rev)
            value = getattr(hub, "dtype", None) or getattr(hub, "torch_dtype", None)
        except (OSError, ValueError):
            return None
    else:
        return None
    value = str(value).removeprefix("torch.") if value is not None else None
    return getattr(torch, value, None) if isinstance(value, str) and value.startswith("float") else None


def pick_device() -> torch.device:
    """The GPU when there is one (with several processes: this process's own, ``cuda:LOCAL_RANK``), else the CPU."""
    return dist.device()


# ---------------------------------------------------------------------------------------------
# Short names and GGUF files (models/sources.py says where they come from)


def resolve_source(name: str) -> str:
    """A short name or a GGUF file → the directory of its converted safetensors copy; anything else unchanged."""
    if name in aliases():
        return str(converted_gguf(aliases()[name].path(), name))
    if name.endswith(".gguf"):
        p = Path(name).expanduser()
        if not p.is_file():
            raise UnlearnkitError(f"GGUF file {name!r} does not exist")
        return str(converted_gguf(p, p.stem))
    return name


def converted_gguf(gguf: Path, label: str) -> Path:
    """``$UNLEARNKIT_HOME/models/pretrained-<label>-<hash>``: the GGUF model de-quantised and saved once."""
    digest = gguf_digest(gguf)
    final = home() / "models" / f"pretrained-{label}-{digest[:12]}"
    with locked(lock_path("models", final.name)):
        if (final / "unlearnkit.json").is_file():
            return final
        try:
            import gguf as _  # noqa: F401 - transformers' GGUF loader needs it
        except ImportError:
            raise UnlearnkitError("loading GGUF files needs the `gguf` package: pip install gguf") from None
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = _plain_copy(AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
        _declared_special_tokens(gguf, model, tok)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        with atomic_dir(final) as tmp:
            save_model(model, tok, tmp)
            atomic_write_json(tmp / "unlearnkit.json", {"kind": "pretrained", "source": str(gguf), "gguf_sha256": digest,
                                                        "label": label})
        return final


def _declared_special_tokens(gguf: Path, model, tok) -> None:
    """BOS/EOS/padding as the GGUF file declares them (``tokenizer.ggml.*_token_id``), on the tokenizer, the
    model config and the generation config alike. transformers' GGUF conversion of the tokenizer differs
    between versions (5.17 gave SmolLM2's ``<|im_start|>`` as EOS, 5.24 its ``<|im_end|>``, as declared)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    for role in ("bos", "eos", "pad"):
        key = f"tokenizer.ggml.{'padding' if role == 'pad' else role}_token_id"
        if key not in fields:
            continue
        f = fields[key]
        tid = int(f.parts[f.data[0]][0])
        if getattr(tok, f"{role}_token_id") != tid:
            setattr(tok, f"{role}_token", tok.convert_ids_to_tokens(tid))
        for cfg in (model.config, model.generation_config):
            setattr(cfg, f"{role}_token_id", tid)


def _plain_copy(model):
    """The de-quantised weights in a plain model of the same config (a GGUF-loaded model is flagged as
    quantised and refuses ``save_pretrained``)."""
    import copy

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(model.state_dict())
    fresh.generation_config = model.generation_config
    return fresh
