"""Weight quantisation attacks ``quant8`` and ``quant4``: every ≥ 2-D floating-point weight rounded to 8 or 4 bits.

Protocol: symmetric round-to-nearest per output row (scale_r = max_j |w_rj| / (2^(bits−1) − 1)), weights returned
de-quantised in their own dtype. Source: Zhang et al. 2024, "Catastrophic Failure of LLM Unlearning via
Quantization" (ICLR 2025), who show 4-bit quantisation restores much of what unlearning with a utility
constraint removed (they quantise with GPTQ/AWQ/bitsandbytes; round-to-nearest is the simplest of these and runs on
any device). Knobs: none (the bit width is the attack's name).
"""

from __future__ import annotations

import copy

import torch

from unlearnkit.attacks import AttackSpec, register
from unlearnkit.engine.precision import upcast
from unlearnkit.errors import UnlearnkitError


@torch.no_grad()
def quantize_rtn(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric round-to-nearest quantisation per output row, returned dequantised.

    scale_r = max_j |w_rj| / (2^(bits−1) − 1); q = clamp(round(w / scale), −(2^(bits−1) − 1), 2^(bits−1) − 1);
    the result q·scale differs from w by at most scale/2 per entry.
    """
    if bits < 2:
        raise UnlearnkitError("quantisation needs at least 2 bits")
    levels = 2 ** (bits - 1) - 1
    w2 = upcast(w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1))  # bf16 weights: scale in fp32
    scale = w2.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
    q = torch.clamp(torch.round(w2 / scale), -levels, levels)
    return (q * scale).reshape(w.shape).to(w.dtype)


@torch.no_grad()
def quantize_model(model, bits: int):
    """A copy of ``model`` with every ≥2-D floating-point weight rounded to ``bits`` bits."""
    q = copy.deepcopy(model)
    for p in q.parameters():
        if p.is_floating_point() and p.dim() >= 2:
            p.copy_(quantize_rtn(p, bits))
    return q


def _quantized(bits: int):
    return lambda target, params: target.with_model(quantize_model(target.model, bits))


for _bits in (8, 4):
    register(AttackSpec(
        name=f"quant{_bits}", kind="weights", apply=_quantized(_bits),
        summary=f"every ≥2-D weight rounded to {_bits} bits (symmetric, per output row, round-to-nearest)",
        source="Zhang et al. 2024, Catastrophic Failure of LLM Unlearning via Quantization (ICLR 2025)",
    ))
