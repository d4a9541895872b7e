"""The evaluation cache: teacher-forced passes, generations and per-sample numbers on disk, keyed by the
model, the records and everything else that decides them (:func:`eval_signature`), so re-evaluating a model
costs nothing and a reference model is evaluated once for all the methods compared against it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from typing import Any, Callable

import torch

from unlearnkit.data.prompts import prompt_signature, tokenizer_hash
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.passes import TokenStats, model_context
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import canonical_json, discard, home, lock_path, locked, read_checked, write_checked

ENGINE_VERSION = 3  # bump when pass or generation semantics or cache formats change (invalidates caches)


def eval_signature(model, tokenizer, cfg: EvalConfig) -> dict:
    """Everything besides the weights and the records that decides a pass or a generation: the rendered
    prompt format and chat template, the tokenizer's content, the dtype, the context length, truncation
    and the generation settings. Part of every cache key, so none of them can go stale."""
    param = next(model.parameters(), None)
    return {"prompt": prompt_signature(tokenizer), "tokenizer": tokenizer_hash(tokenizer),
            "dtype": str(param.dtype) if param is not None else None, "context": model_context(model),
            "truncate": cfg.truncate, "generation": {"max_new_tokens": cfg.max_new_tokens, "greedy": True,
                                                     "batch_size": cfg.generation_batch_size}}


def records_hash(records: list[dict]) -> str:
    return hashlib.sha256(canonical_json(records).encode()).hexdigest()[:16]


def state_fingerprint(model) -> str:
    """Content hash of an in-memory model's tensors (for models not saved to disk)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class PassCache:
    """Teacher-forced passes and generations on disk, keyed by model and eval set.

    Every file carries a checksum (:func:`unlearnkit.io.write_checked`): a damaged or altered cache
    file is reported in one line, discarded and recomputed, never used. A lock per cache entry makes
    concurrent processes compute it once.
    """

    def __init__(self, model_id: str | None, enabled: bool = True, signature: dict | None = None) -> None:
        self.dir = home() / "cache" / "eval" / model_id if (model_id and enabled) else None
        self.signature = signature or {}

    def _key(self, *parts: Any) -> str:
        return hashlib.sha256(canonical_json([ENGINE_VERSION, self.signature, *parts]).encode()).hexdigest()[:20]

    def _cached(self, name: str, compute: Callable[[], Any], dump: Callable[[Any], bytes],
                parse: Callable[[bytes], Any]) -> Any:
        if self.dir is None:
            return compute()
        if dist.world_size() > 1:  # the main process reads and writes; every process computes its share
            return self._cached_by_main(name, compute, dump, parse)
        path = self.dir / name
        with locked(lock_path("eval", f"{self.dir.name}-{name}")):
            data = read_checked(path, "evaluation cache file")
            if data is not None:
                try:
                    return parse(data)
                except (ValueError, KeyError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
                    discard(path, "evaluation cache file", "it does not parse")
            out = compute()
            write_checked(path, dump(out))
            return out

    def _cached_by_main(self, name: str, compute: Callable[[], Any], dump: Callable[[Any], bytes],
                        parse: Callable[[bytes], Any]) -> Any:
        path = self.dir / name

        def read() -> Any:
            data = read_checked(path, "evaluation cache file")
            try:
                return None if data is None else parse(data)
            except (ValueError, KeyError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
                discard(path, "evaluation cache file", "it does not parse")
                return None

        out = dist.on_main(read)
        if out is None:
            out = compute()  # collective: each process its share, gathered
            dist.on_main(lambda: write_checked(path, dump(out)))
        return out

    def role_stats(self, rec_hash: str, pairs: dict[str, list[tuple[str, str]]],
                   run: Callable[[list[tuple[str, str]]], TokenStats]) -> dict[str, TokenStats]:
        """The (prompt, answer) pairs of every variant of one eval set (variant → pairs) in ONE batched pass
        (cached under the records' hash and the variants), split back per variant."""
        variants, sizes = tuple(pairs), [len(p) for p in pairs.values()]
        st = self._cached(f"pass-{self._key(rec_hash, variants)}.npz",
                          lambda: run([p for v in variants for p in pairs[v]]),
                          TokenStats.to_bytes, TokenStats.from_bytes)
        if len(st) != sum(sizes):
            raise UnlearnkitError(f"cached pass for {self.dir} holds {len(st)} samples, expected {sum(sizes)}")
        out, s = {}, 0
        for v, n in zip(variants, sizes):
            out[v] = st.take(s, s + n)
            s += n
        return out

    def generations(self, rec_hash: str, max_new: int, compute: Callable[[], list[str]]) -> list[str]:
        def parse(b: bytes) -> list[str]:
            v = json.loads(b.decode("utf-8"))
            if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise ValueError("not a list of strings")
            return v

        return self._cached(f"gen-{self._key(rec_hash, max_new)}.json", compute,
                            lambda v: json.dumps(v).encode("utf-8"), parse)

    def stats(self, key: Any, compute: Callable[[], TokenStats]) -> TokenStats:
        """A cached teacher-forced pass over already tokenised items (raw text), keyed by ``key``."""
        return self._cached(f"pass-{self._key('encoded', key)}.npz", compute, TokenStats.to_bytes,
                            TokenStats.from_bytes)

    def texts(self, key: Any, compute: Callable[[], list[str]]) -> list[str]:
        """Cached generations keyed by ``key`` (a task's own generation settings and records)."""
        return self.generations(self._key("texts", key), -1, compute)

    def numbers(self, kind: str, key: Any, compute: Callable[[], list[float]]) -> list[float]:
        """A cached list of per-sample numbers (e.g. gradient norms) under ``kind-<key>.json``."""
        def parse(b: bytes) -> list[float]:
            v = json.loads(b.decode("utf-8"))
            if not (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)):
                raise ValueError("not a list of numbers")
            return [float(x) for x in v]

        return self._cached(f"{kind}-{self._key(kind, key)}.json", compute, lambda v: json.dumps(v).encode("utf-8"),
                            parse)
