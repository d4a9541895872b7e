"""On-disk cache of judge results under ``$UNLEARNKIT_HOME/cache/judge/``.

Key = SHA-256 of the canonical JSON of (backend identity — kind, model id, endpoint,
decoding settings —, rubric prompt version and prompt hash, the number of repair retries,
the hash of the item's question/reference/response). One file per entry,
``<key[:2]>/<key>.json``, written atomically, holding the key material, the result and the
SHA-256 of the result's canonical JSON. A file whose JSON does not parse, whose key material
differs, or whose content hash does not match is *damaged*: it is ignored (counted in
``stats["damaged"]``), the result is recomputed and the file rewritten. A hit never rewrites
the file, so a rerun leaves the cache byte-identical.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from unlearnkit.io import atomic_write_json, canonical_json, home
from unlearnkit.judge.base import JudgeItem, JudgeResult
from unlearnkit.judge.rubrics import Rubric

FORMAT = 1


def _sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def key_material(identity: dict[str, Any], rubric: Rubric, item: JudgeItem, max_parse_retries: int) -> dict[str, Any]:
    """Everything a judge answer depends on (the item's id is not: equal texts share answers)."""
    return {
        "format": FORMAT,
        "backend": identity,
        "prompt_version": rubric.prompt_id,
        "prompt_hash": rubric.prompt_hash,
        "max_parse_retries": max_parse_retries,
        "input_hash": _sha256([item.question, item.reference if rubric.needs_reference else "", item.response]),
    }


class JudgeCache:
    """Content-addressed judge results; ``stats`` counts hits, misses, writes and damaged files."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else home() / "cache" / "judge"
        self.stats = {"hits": 0, "misses": 0, "writes": 0, "damaged": 0}

    def path(self, material: dict[str, Any]) -> Path:
        key = _sha256(material)
        return self.root / key[:2] / f"{key}.json"

    def get(self, material: dict[str, Any]) -> dict[str, Any] | None:
        """The cached result (as a dict without ``item_id``), or None on a miss or damage."""
        p = self.path(material)
        if not p.is_file():
            self.stats["misses"] += 1
            return None
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
            ok = (isinstance(entry, dict) and entry.get("key") == material
                  and entry.get("sha256") == _sha256(entry.get("result")))
        except (OSError, ValueError):
            ok = False
        if not ok:
            self.stats["damaged"] += 1
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return entry["result"]

    def put(self, material: dict[str, Any], result: JudgeResult) -> None:
        body = result.model_dump(mode="json", exclude={"item_id"})
        atomic_write_json(self.path(material), {"key": material, "result": body, "sha256": _sha256(body)})
        self.stats["writes"] += 1
