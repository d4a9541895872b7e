"""The precisions a model trains and a loss computes in.

Half-precision weights (bfloat16, float16) train as float32 master weights, and their logits are upcast to float32
before a softmax; float32 and float64 are kept as they are. The embedded tiny models are float64 end to end
(``TinyLlamaConfig.dtype``): their rounding errors are ~1e-16 instead of ~1e-7, so the table they give does not
depend on the CPU's kernel path or thread count (docs/benchmark.md, "Determinism").
"""

from __future__ import annotations

import torch

WIDE = (torch.float32, torch.float64)


def upcast(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least float32: half precisions become float32; float32 and float64 are returned as they are."""
    return t if t.dtype in WIDE else t.float()


def train_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """The dtype a model stored in ``dtype`` trains in: float64 stays float64, everything else trains in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _float64_rms_norm(forward):
    """``forward`` of an RMSNorm that computes in float32 whatever its input (transformers' Llama does): a float64
    input is normalised in float64 instead; every other input goes through the original ``forward`` unchanged."""

    def wrapped(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if hidden_states.dtype != torch.float64:
            return forward(self, hidden_states)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    wrapped.keeps_float64 = True
    return wrapped


def keep_float64_norms() -> None:
    """Let the Llama RMSNorm (the embedded model's architecture) keep float64 inputs in float64 (idempotent). The
    rest of a Llama forward — attention (SDPA), MLP, head — already computes in the weights' dtype; the rotary
    angles are float32 elementwise products whose cos/sin give the same bits on every kernel path."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    if not getattr(LlamaRMSNorm.forward, "keeps_float64", False):
        LlamaRMSNorm.forward = _float64_rms_norm(LlamaRMSNorm.forward)
