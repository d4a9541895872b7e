"""Build, save and load causal language models through one ``from_pretrained`` path.

The embedded models are tiny Llama-architecture models built from a config; released models
(e.g. ``open-unlearning/tofu_Llama-3.2-1B-Instruct_full``) load the same way from a hub name
or a local directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from unlearnkit.config import TinyLlamaConfig
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import atomic_write_text, file_hash


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


def save_model(model, tokenizer, path: Path) -> None:
    """``save_pretrained`` (safetensors) for the model and its tokenizer."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def _is_local(name: str) -> bool:
    return os.path.sep in name or name.startswith(".") or Path(name).exists()


def load_tokenizer(name_or_path: str | Path):
    name = str(name_or_path)
    if _is_local(name) and not Path(name).exists():
        raise UnlearnkitError(f"model path {name!r} does not exist (build it with `unlearnkit models build`)")
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        if _is_local(name):
            raise UnlearnkitError(
                f"model path {name!r} has no tokenizer files (tokenizer.json / tokenizer_config.json); "
                "save one there with tokenizer.save_pretrained(path)"
            ) from None
        raise UnlearnkitError(f"cannot load tokenizer {name!r} ({type(e).__name__}): download it first or pass a local path") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name_or_path: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """Load (model, tokenizer). Clear errors for a missing path or a missing tokenizer."""
    name = str(name_or_path)
    tok = load_tokenizer(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype or torch.float32)
    except (OSError, ValueError) as e:
        raise UnlearnkitError(f"cannot load model {name!r}: {str(e).splitlines()[0]}") from None
    if model.get_input_embeddings().num_embeddings < len(tok):
        raise UnlearnkitError(
            f"tokenizer of {name!r} has {len(tok)} tokens but the model's embedding has "
            f"{model.get_input_embeddings().num_embeddings}: the tokenizer does not match the model"
        )
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok


def model_fingerprint(path: str | Path) -> str:
    """Content hash of a saved model directory (weights + config + tokenizer).

    Cached in ``.unlearnkit-fingerprint`` beside the weights, keyed by file sizes and mtimes,
    so a large model is hashed once.
    """
    p = Path(path)
    files = sorted(x for x in p.iterdir() if x.is_file() and x.suffix in {".safetensors", ".json", ".bin", ".model"})
    if not files:
        raise UnlearnkitError(f"{str(p)!r} holds no model files")
    stamp = ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    side = p / ".unlearnkit-fingerprint"
    if side.is_file():
        saved_stamp, _, digest = side.read_text().partition("\n")
        if saved_stamp == stamp:
            return digest.strip()
    digest = file_hash(files)
    try:
        atomic_write_text(side, f"{stamp}\n{digest}\n")
    except OSError:
        pass
    return digest


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
