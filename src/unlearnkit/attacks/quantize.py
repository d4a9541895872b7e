"""Weight quantisation attacks ``quant8`` and ``quant4``: every ≥ 2-D floating-point weight rounded to 8 or 4 bits.

Protocol: symmetric round-to-nearest per output row (scale_r = max_j |w_rj| / (2^(bits−1) − 1)), weights returned
de-quantised in their own dtype. With ``group_size`` g, the scale is per contiguous group of g input columns of each
row instead (columns 0…g−1, g…2g−1, …; the last group shorter when g does not divide the row; a ≥ 3-D weight's
columns are its flattened trailing dimensions); g = 128 is the common setting of 4-bit LLM quantisers. Source: Zhang
et al. 2024, "Catastrophic Failure of LLM Unlearning via Quantization" (ICLR 2025), who show 4-bit quantisation
restores much of what unlearning with a utility constraint removed (they quantise with GPTQ/AWQ/bitsandbytes;
round-to-nearest is the simplest of these and runs on any device). Knobs: :class:`QuantParams` (the bit width is the
attack's name).
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field

from unlearnkit.attacks import AttackSpec, register
from unlearnkit.config import StrictModel
from unlearnkit.engine.precision import upcast
from unlearnkit.errors import UnlearnkitError


class QuantParams(StrictModel):
    group_size: int | None = Field(None, ge=1, description="input columns per quantisation scale (None: one scale "
                                   "per output row)")


@torch.no_grad()
def quantize_rtn(w: torch.Tensor, bits: int, group_size: int | None = None) -> torch.Tensor:
    """Symmetric round-to-nearest quantisation per output row (or per ``group_size`` input columns), dequantised.

    scale = max |w| over the row (group) / (2^(bits−1) − 1); q = clamp(round(w / scale), −(2^(bits−1) − 1),
    2^(bits−1) − 1); the result q·scale differs from w by at most scale/2 per entry. Example, 4 bits (levels 7),
    the row [1, 0.6, 0.1, −0.3] with group_size 2: groups [1, 0.6] (scale 1/7: 0.6·7 = 4.2 → 4 → 4/7) and
    [0.1, −0.3] (scale 0.3/7: 0.1/scale = 7/3 → 2 → 0.6/7; −0.3 → −7 → −0.3) give [1, 4/7, 0.6/7, −0.3]; per row
    (scale 1/7: 0.1·7 = 0.7 → 1, −0.3·7 = −2.1 → −2) the same row gives [1, 4/7, 1/7, −2/7].
    """
    if bits < 2:
        raise UnlearnkitError("quantisation needs at least 2 bits")
    levels = 2 ** (bits - 1) - 1
    w2 = upcast(w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1))  # bf16 weights: scale in fp32
    return _quantize_groups(w2, levels, group_size or max(1, w2.shape[1])).reshape(w.shape).to(w.dtype)


def _quantize_groups(w2: torch.Tensor, levels: int, g: int) -> torch.Tensor:
    """``w2`` (rows × cols) quantised with one scale per contiguous group of ``g`` columns of each row (g = cols:
    one scale per row). The row is zero-padded to whole groups (a zero changes no group's max |w|) and the padding
    dropped afterwards."""
    rows, cols = w2.shape
    n = -(-cols // g)
    wg = torch.nn.functional.pad(w2, (0, n * g - cols)).reshape(rows, n, g)
    scale = wg.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / levels
    q = torch.clamp(torch.round(wg / scale), -levels, levels)
    return (q * scale).reshape(rows, n * g)[:, :cols]


@torch.no_grad()
def quantize_model(model, bits: int, group_size: int | None = None):
    """A copy of ``model`` with every ≥2-D floating-point weight rounded to ``bits`` bits (per output row, or per
    ``group_size`` input columns)."""
    q = copy.deepcopy(model)
    for p in q.parameters():
        if p.is_floating_point() and p.dim() >= 2:
            p.copy_(quantize_rtn(p, bits, group_size))
    return q


def _quantized(bits: int):
    return lambda target, params: target.with_model(quantize_model(target.model, bits, params.group_size))


for _bits in (8, 4):
    register(AttackSpec(
        name=f"quant{_bits}", kind="weights", apply=_quantized(_bits), params=QuantParams,
        summary=f"every ≥2-D weight rounded to {_bits} bits (symmetric, round-to-nearest, per output row or per "
                "group of `group_size` input columns)",
        source="Zhang et al. 2024, Catastrophic Failure of LLM Unlearning via Quantization (ICLR 2025)",
    ))
