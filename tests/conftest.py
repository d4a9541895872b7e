"""Shared fixtures: an isolated $UNLEARNKIT_HOME and a tiny benchmark built once per session."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

warnings.filterwarnings("ignore")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach a hub (set before transformers is imported)
# One thread by default (tiny models, immune to oversubscription). CI runs the suite a second time with
# UNLEARNKIT_TEST_THREADS=2: another split of every float reduction, so trained and generated values change in their
# last bits, and a test that pinned one CPU's digits fails there (docs/benchmark.md, Determinism).
torch.set_num_threads(int(os.environ.get("UNLEARNKIT_TEST_THREADS", "1")))


@pytest.fixture(scope="session", autouse=True)
def uk_home(tmp_path_factory):
    """Every test writes under a fresh home, never under ~/.cache/unlearnkit."""
    home = tmp_path_factory.mktemp("ukhome")
    old = os.environ.get("UNLEARNKIT_HOME")
    os.environ["UNLEARNKIT_HOME"] = str(home)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    yield home
    if old is None:
        os.environ.pop("UNLEARNKIT_HOME", None)
    else:
        os.environ["UNLEARNKIT_HOME"] = old


def tiny_build_config(**over):
    """A benchmark small enough to build in seconds: 100 subjects × 1 fact, a 2-layer model."""
    from unlearnkit.config import BuildConfig

    base = {
        "data": {"n_subjects": 100, "facts_per_subject": 1, "n_real_authors": 10, "n_world_facts": 10},
        "model": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "intermediate_size": 256, "vocab_size": 512},
        "base": {"lr": 4e-3, "epochs": 40, "batch_size": 16},
        "finetune": {"lr": 4e-3, "epochs": 25, "batch_size": 16},
    }
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return BuildConfig.model_validate(base)


@pytest.fixture(scope="session")
def tiny_models():
    """Data, tokenizer, base, θ_o and θ_r(retain90) of the tiny benchmark (built once)."""
    from unlearnkit.models.build import build_models

    return build_models(tiny_build_config())
