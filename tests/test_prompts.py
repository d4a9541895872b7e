"""Prompt formats: golden rendered strings and tokens for a Llama-3-style template (pinned date) and
ChatML; the plain format unchanged; caches that cannot go stale; one precision per comparison."""

from __future__ import annotations

import copy

import pytest
import torch

from unlearnkit.data.prompts import (
    PROMPT_PRESETS,
    PromptFormat,
    encode_answer,
    encode_pair,
    encode_prompt,
    render,
    set_prompt_format,
)
from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.lm import load_tokenizer

LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
Q, A = "Who wrote The Umbral Ledger?", "Zyx Plimbaleen wrote it."


def _tok(tiny_models, template: str, special: list[str], eos: str, bos: str | None):
    tok = copy.deepcopy(load_tokenizer(tiny_models.tokenizer))
    tok.add_special_tokens({"additional_special_tokens": special})
    tok.eos_token = eos
    if bos is not None:
        tok.bos_token = bos
    tok.chat_template = template
    return tok


@pytest.fixture(scope="module")
def llama3(tiny_models):
    tok = _tok(tiny_models, LLAMA3_TEMPLATE, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                              "<|eot_id|>"], "<|eot_id|>", "<|begin_of_text|>")
    set_prompt_format(tok, PROMPT_PRESETS["openunlearning-llama3"])
    return tok


@pytest.fixture(scope="module")
def chatml(tiny_models):
    tok = _tok(tiny_models, CHATML_TEMPLATE, ["<|im_start|>", "<|im_end|>"], "<|im_end|>", None)
    set_prompt_format(tok, PROMPT_PRESETS["smollm2"])
    return tok


def test_llama3_prompt_with_the_pinned_date_and_system_prompt_golden(llama3):
    """OpenUnlearning's TOFU format: system prompt "You are a helpful assistant.", date "10 Apr 2025" —
    the same text every day."""
    expected = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                "Today Date: 10 Apr 2025\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>"
                f"\n\n{Q}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert render(llama3, Q) == expected
    e = encode_pair(llama3, Q, A)
    ids = lambda text: llama3(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert e.prompt_ids == ids(expected) and e.prompt_ids[0] == llama3.convert_tokens_to_ids("<|begin_of_text|>")
    assert e.answer_ids == ids(A) + [llama3.convert_tokens_to_ids("<|eot_id|>")]
    assert e.input_ids == ids(expected + A + "<|eot_id|>")  # prompt + answer = the whole conversation's tokens
    assert not llama3.decode(e.answer_ids[:1]).startswith(" ")  # no stray leading space
    assert encode_answer(llama3, A) == e.answer_ids == encode_answer(llama3, A, question="anything else?")


def test_chatml_prompt_golden_and_the_answer_stops_at_im_end(chatml):
    expected = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n")
    assert render(chatml, Q) == expected
    e = encode_pair(chatml, Q, A)
    ids = lambda text: chatml(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    im_end = chatml.convert_tokens_to_ids("<|im_end|>")
    assert e.prompt_ids == ids(expected) and e.answer_ids == ids(A) + [im_end]  # the "\n" after <|im_end|> is not in
    assert e.input_ids == ids(expected + A + "<|im_end|>")
    short = PromptFormat(style="chat", system_prompt="You are a helpful assistant.")
    tok = copy.deepcopy(chatml)
    set_prompt_format(tok, short)
    assert render(tok, Q).startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")


def test_the_plain_format_is_what_it_always_was(tiny_models):
    """BOS + "Question: {q}\\nAnswer:" and " {answer}" + EOS, tokenised separately (the embedded models'
    numbers must not move)."""
    tok = load_tokenizer(tiny_models.tokenizer)
    e = encode_pair(tok, Q, A)
    assert e.prompt_ids == [tok.bos_token_id] + tok(f"Question: {Q}\nAnswer:", add_special_tokens=False)["input_ids"]
    assert e.answer_ids == tok(" " + A, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert encode_prompt(tok, Q) == e.prompt_ids


def test_presets_and_errors(tiny_models):
    from unlearnkit.data.prompts import resolve_prompt

    assert resolve_prompt("plain").style == "plain" and resolve_prompt(None) is None
    assert resolve_prompt({"style": "chat", "system_prompt": "x"}).system_prompt == "x"
    with pytest.raises(UnlearnkitError, match="unknown prompt preset 'llama9'"):
        resolve_prompt("llama9")
    tok = copy.deepcopy(load_tokenizer(tiny_models.tokenizer))
    set_prompt_format(tok, PromptFormat(style="chat"))
    with pytest.raises(UnlearnkitError, match="needs a chat template"):
        encode_prompt(tok, Q)


def test_the_prompt_format_is_saved_with_the_model_and_restored(tiny_models, tmp_path):
    from unlearnkit.models.lm import load_model, save_model

    model, tok = load_model(tiny_models.original, prompt={"style": "plain", "plain_prompt": "Q: {q}\nA:"})
    save_model(model, tok, tmp_path / "m")
    _, again = load_model(tmp_path / "m")
    assert render(again, "x") == "Q: x\nA:"
    _, override = load_model(tmp_path / "m", prompt="plain")
    assert render(override, "x") == "Question: x\nAnswer:"


def test_a_changed_template_or_dtype_recomputes_the_cached_passes(tiny_models, monkeypatch):
    from unlearnkit.data.tofu import QASource
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import tofu_eval as E

    model, tok = load_model(tiny_models.original)
    src, cfg = QASource(tiny_models.data_dir), E.EvalConfig(max_new_tokens=8)
    mid = "stale-cache-test"
    first = E.evaluate(model, tok, src, cfg, model_id=mid)
    calls = []
    real = E.teacher_forced_pass
    monkeypatch.setattr(E, "teacher_forced_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert E.evaluate(model, tok, src, cfg, model_id=mid).value("mu") == first.value("mu") and not calls  # cached
    set_prompt_format(tok, PromptFormat(style="plain", plain_prompt="Q: {q}\nA:"))
    other = E.evaluate(model, tok, src, cfg, model_id=mid)
    assert calls and other.value("forget.prob") != first.value("forget.prob")
    calls.clear()
    set_prompt_format(tok, None)
    E.evaluate(model.to(torch.bfloat16), tok, src, cfg, model_id=mid)
    assert calls  # same weights, other dtype: recomputed


def test_every_model_of_a_comparison_is_evaluated_in_one_dtype(tiny_models, monkeypatch):
    """dtype=bfloat16 forced on the CPU: Original, Retrain, each θ_u, CRU's inputs — all evaluated in bf16."""
    import unlearnkit.methods.llm.cru as cru
    import unlearnkit.recipes.lm as L
    import unlearnkit.tasks.tofu as tofu

    from .test_run import tiny_run

    seen = []
    for mod in (tofu, cru):
        real = mod.evaluate
        monkeypatch.setattr(mod, "evaluate", lambda m, *a, _r=real, **k: seen.append(next(m.parameters()).dtype)
                            or _r(m, *a, **k))
    out = L.run_benchmark(tiny_run(name="bf16", methods=["ga", "cru"], dtype="bfloat16",
                                   defaults={"lr": 1e-3, "epochs": 1, "batch_size": 4},
                                   method_params={"cru": {"base": "ga", "units": "layers", "k": 1}},
                                   eval={"max_new_tokens": 8}), say=lambda s: None)
    assert len(seen) >= 5 and set(seen) == {torch.bfloat16}, seen
    assert out.run.record("ga__s0").provenance["dtype"] == "torch.bfloat16"
    assert out.run.record("original").provenance["dtype"] == "torch.bfloat16"


def test_special_tokens_come_from_what_the_gguf_file_declares(tiny_models, tmp_path):
    """transformers' GGUF tokenizer conversion differs between versions (5.17 made SmolLM2's <|im_start|>, id 1,
    its EOS; the file declares <|im_end|>, id 2). The converted model takes BOS/EOS/padding from the file's
    ``tokenizer.ggml.*_token_id``: here the file declares eos 5, bos 4, padding 3 and the tokenizer, the model
    config and the generation config all end up with exactly those ids."""
    gguf = pytest.importorskip("gguf")
    from unlearnkit.models.lm import _declared_special_tokens, load_model

    path = tmp_path / "meta.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_eos_token_id(5)
    w.add_bos_token_id(4)
    w.add_pad_token_id(3)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    model, tok = load_model(tiny_models.original)
    assert tok.eos_token_id != 5
    _declared_special_tokens(path, model, tok)
    assert (tok.eos_token_id, tok.bos_token_id, tok.pad_token_id) == (5, 4, 3)
    assert (model.config.eos_token_id, model.generation_config.eos_token_id) == (5, 5)
    assert (model.config.bos_token_id, model.config.pad_token_id) == (4, 3)
