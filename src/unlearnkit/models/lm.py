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
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_write_json, canonical_json, file_hash, home, read_json_or_none

MODEL_META = "unlearnkit_model.json"  # written by save_model beside the weights
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def build_tiny_llama(cfg: TinyLlamaConfig, tokenizer, seed: int) -> LlamaForCausalLM:
    """A freshly initialised Llama-style model (deterministic for a seed)."""
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
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def tokenizer_hash(tokenizer) -> str:
    """Content hash of a tokenizer's vocabulary and special tokens (not just its size)."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    special = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    return hashlib.sha256(canonical_json([vocab, special]).encode()).hexdigest()[:16]


def save_model(model, tokenizer, path: Path) -> None:
    """``save_pretrained`` (safetensors) for the model and its tokenizer, plus the tokenizer's hash."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    atomic_write_json(path / MODEL_META, {"tokenizer_hash": tokenizer_hash(tokenizer)})


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
               revision: str | None = None, allow_pickle: bool | None = None):
    """Load (model, tokenizer) from a local directory or a hub name (``org/name``, ``org/name@revision``).
    Clear errors for a missing path, pickled weights, or a tokenizer that does not belong to the model."""
    name, rev = split_revision(str(name_or_path))
    revision = revision or rev
    allow_pickle = pickle_allowed() if allow_pickle is None else allow_pickle
    tok = load_tokenizer(name, revision)
    try:
        model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(name), dtype=dtype or torch.float32,
                                                     revision=revision, use_safetensors=None if allow_pickle else True)
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
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok


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


def model_id(path: str) -> str:
    """Cache identity of a model: the content hash of a local directory, the name for a hub model."""
    return "hub-" + path.replace("/", "--") if is_hub_name(path) else model_fingerprint(path)


def resolve_dtype(name: str) -> torch.dtype:
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
