"""`unlearnkit eval`: load models and data, evaluate, compare to the reference, write results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
from unlearnkit.engine.evaluate import EvalConfig, EvalResult, compare_to_reference, evaluate, save_result
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import home
from unlearnkit.models.lm import load_model, model_fingerprint, pick_device
from unlearnkit.results.provenance import provenance


def resolve_dtype(name: str) -> torch.dtype:
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32


def model_id(path: str) -> str:
    """Cache identity: the content hash of a local directory, the name for a hub model."""
    p = Path(path)
    return model_fingerprint(p) if p.is_dir() else "hub-" + path.replace("/", "--")


def evaluate_path(path: str, source: QASource, cfg: EvalConfig, dtype: torch.dtype,
                  say: Callable[[str], None] = lambda s: None) -> EvalResult:
    model, tok = load_model(path, device=pick_device(), dtype=dtype)
    t0 = time.perf_counter()
    res = evaluate(model, tok, source, cfg, model_id=model_id(path) + f"-{str(dtype).split('.')[-1]}")
    say(f"evaluated {path} ({time.perf_counter() - t0:.1f}s)")
    del model
    return res


def evaluate_paths(model: str, benchmark: str, data: str | None, reference: str | None, no_reference: bool,
                   cfg: EvalConfig, out: Path | None, dtype: str = "auto",
                   say: Callable[[str], None] = lambda s: None) -> tuple[EvalResult, Path]:
    check_split_name(cfg.forget, ("forget01", "forget05", "forget10"))
    if reference and no_reference:
        raise UnlearnkitError("--reference and --no-reference contradict each other: give one")
    if benchmark == "embedded" and data is None:
        from unlearnkit.config import BuildConfig
        from unlearnkit.models.build import build_models

        bc = BuildConfig(forget_splits=[cfg.forget])
        if reference is None and not no_reference:
            ms = build_models(bc, say=say)
            data, reference = str(ms.data_dir), str(ms.reference_for(cfg.forget))
        else:
            from unlearnkit.data import fictitious

            data = str(fictitious.build(bc.data))
    source = QASource(data or HUB_NAME)
    dt = resolve_dtype(dtype)
    res = evaluate_path(model, source, cfg, dt, say)
    if not no_reference:
        if reference is None:
            raise UnlearnkitError(
                f"forget quality and PrivLeak need the reference model retrained without {cfg.forget} "
                f"(trained on {RETAIN_OF[cfg.forget]}): pass --reference PATH, or --no-reference to skip them"
            )
        compare_to_reference(res, evaluate_path(reference, source, cfg, dt, say))
    out = out or home() / "runs" / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    save_result(res, out, provenance(cfg.model_dump(), model=model, reference=reference, data=source.location,
                                      benchmark=benchmark))
    return res, out
