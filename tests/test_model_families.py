"""Every common model family: tiny random-init models built from configs (Llama, Qwen2, Qwen3, Gemma2,
Gemma3 text, Mistral, Phi-3, GPT-NeoX, OLMo-2, GPT-2) run one step of every registered language-model
method, evaluation, G-effect, layer patching and calibration mixing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import transformers as T

from unlearnkit.data.tofu import QASource
from unlearnkit.methods import get_method, methods_for
from unlearnkit.methods.llm.posthoc import PostHocContext, is_post_hoc
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.lm import load_tokenizer

FAMILIES = {
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, {}),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, {}),
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, {"head_dim": 8}),
    "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM, {"head_dim": 8}),
    "gemma3": (T.Gemma3TextConfig, T.Gemma3ForCausalLM, {"head_dim": 8}),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, {}),
    "phi3": (T.Phi3Config, T.Phi3ForCausalLM, {}),
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM, {}),
    "olmo2": (T.Olmo2Config, T.Olmo2ForCausalLM, {}),
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel, {}),
}
TRAINING = [s.name for s in methods_for("llm") if not is_post_hoc(s)]
POST_HOC = [s.name for s in methods_for("llm") if is_post_hoc(s)]


def tiny_model(family: str, tok) -> torch.nn.Module:
    config_cls, model_cls, extra = FAMILIES[family]
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    if family == "gpt2":
        cfg = config_cls(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=128, **ids)
    else:
        kw = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "max_position_embeddings": 128, **ids, **extra}
        if family != "gpt_neox":
            kw["num_key_value_heads"] = 2
        cfg = config_cls(**kw)
    torch.manual_seed(0)
    model = model_cls(cfg).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


@pytest.fixture(scope="module")
def setup(tiny_models):
    src = QASource(tiny_models.data_dir)
    tok = load_tokenizer(tiny_models.tokenizer)
    return tok, src, src.split("forget10")[:4], src.split("retain90")[:4]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_method_steps_on_every_family(family, setup):
    """One optimiser step of each training method: finite loss, its trainable parameters moved, others did not."""
    tok, src, forget, retain = setup
    original = tiny_model(family, tok)
    for name in TRAINING:
        model = copy.deepcopy(original)
        spec, rk = resolve(name)
        params = make_params(spec, {"lr": 1e-2, "batch_size": 2, "max_steps": 1}, rk)
        trainable = {n for n, p in model.named_parameters()
                     if spec.fn.trainable is None or any(p is q for q in spec.fn.trainable(model, params))}
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        log = unlearn(model, tok, spec, params, forget, retain, src.refusals)
        assert len(log.steps) == 1 and math.isfinite(log.steps[0]["loss"]), (family, name)
        moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
        assert moved and moved <= trainable, (family, name, sorted(moved - trainable)[:3])


@pytest.mark.parametrize("family", FAMILIES)
def test_evaluation_g_effect_patching_mixing_and_post_hoc_on_every_family(family, setup):
    from unlearnkit.analysis.g_effect import GEffectProbe
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.layers import locate_layers
    from unlearnkit.models.mixing import Mixer
    from unlearnkit.models.patching import patched
    from unlearnkit.tasks.tofu_eval import compare_to_reference, evaluate

    tok, src, forget, retain = setup
    original = tiny_model(family, tok)
    lm = locate_layers(original)
    assert lm.n_layers == 2
    unlearned = copy.deepcopy(original)
    spec, _ = resolve("ga")
    probe = GEffectProbe(every=1)
    unlearn(unlearned, tok, spec, make_params(spec, {"lr": 1e-2, "batch_size": 2, "max_steps": 1}), forget, retain,
            on_step=probe)
    eff = probe.records[-1]["effects"]["forget"]
    assert set(eff["e_u"]) == {"embedding", "layer.0", "layer.1", "head", "total"} - ({"head"} if not any(
        lm.group_of(n) == "head" for n, _ in original.named_parameters()) else set())
    assert math.isfinite(eff["e_u"]["total"]) and math.isfinite(eff["e_r"]["total"])
    cfg = EvalConfig(max_new_tokens=4, cache=False)
    res = compare_to_reference(evaluate(unlearned, tok, src, cfg), evaluate(original, tok, src, cfg))
    assert 0 <= res.value("forget.es_exact") <= 1 and math.isfinite(res.value("mu")) and math.isfinite(res.value("fq"))
    so = {n: t.clone() for n, t in original.state_dict().items()}
    su = {n: t.clone() for n, t in unlearned.state_dict().items()}
    with patched(original, unlearned, ["layer.1"], lm) as m:
        changed = {n for n, t in m.state_dict().items() if not torch.equal(t, so[n])}
    assert changed and all(lm.group_of(n) == "layer.1" for n in changed)
    work = copy.deepcopy(original)
    mixer = Mixer(work, so, su)
    mixer.set(0.5)
    for n, t in work.state_dict().items():
        if t.is_floating_point():
            assert torch.allclose(t, torch.lerp(so[n], su[n], 0.5)), n
    for name in POST_HOC:
        p = get_method(name, "llm")
        ctx = PostHocContext(original=original, unlearned=unlearned, tokenizer=tok, source=src, forget="forget10",
                             reference=original, eval_config=cfg)
        out, report = p.fn.apply(ctx, p.params.model_validate(p.fn.smoke))
        assert {n: t.shape for n, t in out.state_dict().items()} == {n: t.shape for n, t in so.items()}, name
