"""Provenance written into every results file: config, versions, git revision, seed, hardware."""

from __future__ import annotations

import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from unlearnkit import __version__

_LIBS = ("torch", "transformers", "accelerate", "tokenizers", "numpy", "scipy", "scikit-learn", "rouge-score", "torchvision")


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


# Environment variables that change which CPU kernels run or how many threads split a reduction.
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS")
# What decides a float32 result's digits (docs/benchmark.md, Determinism): `runs compare` warns when these differ.
DIGIT_DECIDERS = ("cpu", "cpu_capability", "blas", "torch_threads", "device", "kernel_env")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    """The BLAS torch was built with (``BLAS_INFO`` of ``torch.__config__.show()``: mkl, openblas, accelerate …)."""
    import torch

    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


def hardware() -> dict[str, Any]:
    import os

    import torch

    hw: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_model(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(), "blas": blas(),
                          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "kernel_env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
                          "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if torch.cuda.is_available():
        hw["cuda"] = torch.version.cuda
        hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return hw


def digit_deciders(prov: dict) -> dict[str, Any]:
    """From one results file's provenance: the hardware facts and library versions that decide its digits."""
    hw, libs = prov.get("hardware") or {}, prov.get("libraries") or {}
    out = {k: hw.get(k) for k in DIGIT_DECIDERS}
    if hw.get("gpus"):
        out["device"] = f"{hw.get('device')} ({', '.join(hw['gpus'])})"
    out.update({f"version of {k}": libs.get(k) for k in ("torch", "transformers", "numpy") if k in libs})
    return out


def provenance_differences(provs: dict[str, dict]) -> list[str]:
    """One line per fact that differs among the runs (name → a representative entry's provenance): what may make
    their digits differ besides the methods. Facts a run does not record (made before they were recorded) are
    said to be unknown."""
    facts = {name: digit_deciders(p) for name, p in provs.items()}
    keys = dict.fromkeys(k for f in facts.values() for k in f)
    lines = []
    for k in keys:
        vals = {name: f.get(k) for name, f in facts.items()}
        if len({repr(v) for v in vals.values()}) > 1:
            lines.append(f"{k} differs: " + "; ".join(f"{n}: {'unknown' if v is None else v}" for n, v in vals.items()))
    return lines


def distributed() -> dict[str, Any]:
    """How many processes produced the result (torchrun / accelerate launch) and how training was shared."""
    from unlearnkit.engine.distributed import describe

    return describe()


def provenance(config: Any = None, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "unlearnkit_version": __version__,
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "config": config,
        "libraries": library_versions(),
        "hardware": hardware(),
        "distributed": distributed(),
        **extra,
    }
