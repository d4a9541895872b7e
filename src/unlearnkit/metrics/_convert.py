"""Input conversion shared by the metric functions.

Metrics accept numpy arrays, Python sequences or torch tensors. Tensors are recognised by duck
typing (they have ``.detach``), so this module never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnkit.errors import UnlearnkitError


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; torch tensors are detached and moved to the CPU first."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        t = x.detach().cpu()
        if str(getattr(t, "dtype", "")) == "torch.bfloat16":  # numpy has no bfloat16
            t = t.float()
        return np.asarray(t)
    return np.asarray(x)


def as_1d_float(x: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Convert to a 1-D float64 array; raise on the wrong shape, NaN, or (unless allowed) no values."""
    a = to_numpy(x)
    if a.ndim != 1:
        raise UnlearnkitError(f"{name} must be 1-D (one value per token or sample), got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise UnlearnkitError(f"{name} is empty: pass at least one value")
    return _finite_float64(a, name)


def _finite_float64(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as float64; one-line errors for values that are not numbers or are NaN."""
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError):
        raise UnlearnkitError(f"{name} must hold numbers, got dtype {a.dtype}") from None
    if np.isnan(a).any():
        raise UnlearnkitError(f"{name} contains NaN: check the forward pass that produced it")
    return a


def as_rows_float(x: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Like :func:`as_1d_float`, but also accepts a 2-D array (resamples, samples): one row per bootstrap
    resample of the same samples (:mod:`unlearnkit.metrics.intervals`); the samples are the last axis."""
    a = to_numpy(x)
    if a.ndim != 2:
        return as_1d_float(a, name, allow_empty=allow_empty)
    if a.shape[1] == 0 and not allow_empty:
        raise UnlearnkitError(f"{name} is empty: pass at least one value")
    return _finite_float64(a, name)


def scalar_or_rows(v: Any) -> float | np.ndarray:
    """A 0-d result as a Python float (one evaluation), a 1-d one as an array (one value per resample)."""
    return float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)


def as_1d_bool(x: Any, name: str) -> np.ndarray:
    """Convert 0/1 or boolean flags to a non-empty 1-D bool array."""
    a = to_numpy(x)
    if a.ndim != 1:
        raise UnlearnkitError(f"{name} must be 1-D (one flag per answer token), got shape {a.shape}")
    if a.size == 0:
        raise UnlearnkitError(f"{name} is empty: the answer has no tokens (check the prompt/answer masking)")
    if a.dtype != np.bool_:
        if not np.isin(a, (0, 1)).all():
            raise UnlearnkitError(f"{name} must hold booleans or 0/1 flags (argmax == true token)")
        a = a.astype(bool)
    return a


def as_float(x: Any, name: str) -> float:
    """Convert a Python/numpy/torch scalar (or one-element array) to float; reject NaN."""
    a = to_numpy(x)
    if a.size != 1:
        raise UnlearnkitError(f"{name} must be a single number, got shape {a.shape}")
    v = float(a.reshape(()))
    if np.isnan(v):
        raise UnlearnkitError(f"{name} is NaN: check the forward pass that produced it")
    return v
