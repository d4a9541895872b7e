"""The logit lens (unlearnkit.engine.lens): the answer's mean log-prob read out after every layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T

from unlearnkit.data.prompts import encode_pair
from unlearnkit.data.tofu import QASource
from unlearnkit.engine.lens import best_layer, final_norm, lens_logprobs
from unlearnkit.engine.passes import teacher_forced_pass
from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.lm import load_model, load_tokenizer


@pytest.fixture(scope="module")
def pairs(tiny_models):
    recs = QASource(tiny_models.data_dir).split("forget10")[:7]
    return [(r["question"], r["answer"]) for r in recs]


def hand_lens(model, tok, question: str, answer: str) -> list[float]:
    """One unbatched full-model forward: mean answer log-prob of head(norm(h_l)) per layer, head(h_L) at the last."""
    enc = encode_pair(tok, question, answer)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([enc.input_ids]), output_hidden_states=True)
        pos = torch.arange(len(enc.prompt_ids) - 1, len(enc.input_ids) - 1)  # position t predicts token t + 1
        tgt = torch.tensor(enc.answer_ids)
        cap = getattr(model.config, "final_logit_softcapping", None)
        vals = []
        for h in out.hidden_states[:-1]:
            logits = model.get_output_embeddings()(final_norm(model)(h[0, pos]))
            logits = torch.tanh(logits / cap) * cap if cap else logits
            vals.append(torch.log_softmax(logits.double(), -1)[torch.arange(len(tgt)), tgt].mean().item())
        full = torch.log_softmax(out.logits[0, pos].double(), -1)  # the model's own logits at the last layer
        vals.append(full[torch.arange(len(tgt)), tgt].mean().item())
    return vals


def test_last_layer_is_the_models_own_answer_logprob(tiny_models, pairs):
    """Row L of the lens = teacher_forced_pass's mean answer log-prob (1e-9, float64 model); every row = an
    unbatched full-model forward read out by hand; the embeddings' read-out is far below the trained model's."""
    model, tok = load_model(tiny_models.original)
    assert next(model.parameters()).dtype == torch.float64
    lens = lens_logprobs(model, tok, pairs, batch_size=3)
    n_layers = model.config.num_hidden_layers
    assert lens.shape == (n_layers + 1, len(pairs)) == (3, 7)
    own = teacher_forced_pass(model, tok, pairs, batch_size=3).mean_logprob()
    np.testing.assert_allclose(lens[-1], own, rtol=0, atol=1e-9)
    for i in (0, 4):
        np.testing.assert_allclose(lens[:, i], hand_lens(model, tok, *pairs[i]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(lens_logprobs(model, tok, pairs, batch_size=1), lens, rtol=0, atol=1e-9)
    assert np.all(lens < 0) and np.all(lens[0] < lens[-1] - 1.0)  # the fine-tuned answers live in the last layers
    assert model.training is False and next(model.parameters()).dtype == torch.float64


FAMILIES = {
    "gpt2": lambda v, ids: T.GPT2LMHeadModel(T.GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4,
                                                          n_positions=128, **ids)),
    "qwen2": lambda v, ids: T.Qwen2ForCausalLM(T.Qwen2Config(
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, **ids)),
    "gemma2": lambda v, ids: T.Gemma2ForCausalLM(T.Gemma2Config(  # softcapped logits (final_logit_softcapping)
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=128, final_logit_softcapping=0.5, **ids)),
    "gpt_neox": lambda v, ids: T.GPTNeoXForCausalLM(T.GPTNeoXConfig(
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, **ids)),
}


def random_model(family: str, tok):
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    torch.manual_seed(0)
    return FAMILIES[family](len(tok), ids).double().eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_other_families_last_layer_and_hand_readout(family, tiny_models, pairs):
    """Tiny random float64 models of other families (GPT-2's ln_f, GPT-NeoX's final_layer_norm, Gemma-2's
    softcapped head): the last row equals the model's own mean answer log-prob, every row the by-hand read-out."""
    tok = load_tokenizer(tiny_models.tokenizer)
    model = random_model(family, tok)
    lens = lens_logprobs(model, tok, pairs[:4], batch_size=3)
    assert lens.shape == (model.config.num_hidden_layers + 1, 4)
    np.testing.assert_allclose(lens[-1], teacher_forced_pass(model, tok, pairs[:4]).mean_logprob(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(lens[:, 1], hand_lens(model, tok, *pairs[1]), rtol=0, atol=1e-9)
    assert np.ptp(lens[:, 1]) > 1e-6  # the layers' read-outs differ
    if family == "gemma2":  # a softcap of 0.5 keeps every logit in (−0.5, 0.5): log-probs ≥ −1 − log(vocab)
        assert np.all(lens >= -1 - np.log(len(tok)))


def test_best_layer_golden():
    """values (3 layers × 3 samples):
        layer 0: −3.0  −1.0  −2.5
        layer 1: −2.0  −4.0  −2.5
        layer 2: −2.5  −0.5  −3.0
    sample 0: max(−3, −2, −2.5) = −2 at layer 1; sample 1: max(−1, −4, −0.5) = −0.5 at layer 2;
    sample 2: max(−2.5, −2.5, −3) = −2.5, a tie of layers 0 and 1 → the first, layer 0."""
    values = np.array([[-3.0, -1.0, -2.5], [-2.0, -4.0, -2.5], [-2.5, -0.5, -3.0]])
    best, layer = best_layer(values)
    assert best.tolist() == [-2.0, -0.5, -2.5]
    assert layer.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="layers, samples"):
        best_layer(np.array([-1.0, -2.0]))


def test_empty_pairs(tiny_models):
    model, tok = load_model(tiny_models.original)
    assert lens_logprobs(model, tok, []).shape == (3, 0)


def test_unknown_final_norm_and_scaled_logits_are_one_line_errors(tiny_models, pairs):
    tok = load_tokenizer(tiny_models.tokenizer)
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    opt = T.OPTForCausalLM(T.OPTConfig(vocab_size=len(tok), hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                                       num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=32,
                                       **ids)).eval()  # keeps its final norm at model.decoder.final_layer_norm
    with pytest.raises(UnlearnkitError) as e:
        lens_logprobs(opt, tok, pairs[:2])
    msg = str(e.value)
    assert "\n" not in msg and "OPTForCausalLM" in msg and "model.norm, transformer.ln_f" in msg
    scaled = random_model("gpt2", tok)
    scaled.config.logit_scale = 2.0  # logits = 2 · head(hidden): not what the lens reads out
    with pytest.raises(UnlearnkitError, match="^the logit lens needs a model whose logits are its output head[^\n]*$"):
        lens_logprobs(scaled, tok, pairs[:2])
