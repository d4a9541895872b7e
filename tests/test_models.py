"""Tokenizer, tiny Llama, prompt masking, save/load, build cache and determinism."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from unlearnkit.data.prompts import IGNORE, PLAIN_PROMPT, collate, encode_pair, prompt_text
from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.build import build_models, exact_match_rate
from unlearnkit.models.lm import load_model, load_tokenizer, model_fingerprint, save_model

from .conftest import tiny_build_config


def test_prompt_masking_covers_exactly_the_prompt(tiny_models):
    tok = load_tokenizer(tiny_models.tokenizer)
    enc = encode_pair(tok, "Where was Ana born?", "Ana was born in Velport.")
    assert enc.input_ids[0] == tok.bos_token_id and enc.input_ids[-1] == tok.eos_token_id
    n_prompt = len(tok(PLAIN_PROMPT.format(q="Where was Ana born?"), add_special_tokens=False)["input_ids"]) + 1
    assert enc.labels[:n_prompt] == [IGNORE] * n_prompt
    assert enc.labels[n_prompt:] == enc.input_ids[n_prompt:]
    assert tok.decode(enc.answer_ids, skip_special_tokens=True).strip() == "Ana was born in Velport."
    batch = collate([enc, encode_pair(tok, "Q?", "A.")], tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape
    assert (batch["labels"][1, batch["attention_mask"][1] == 0] == IGNORE).all()


def test_plain_prompt_format_without_chat_template(tiny_models):
    tok = load_tokenizer(tiny_models.tokenizer)
    assert prompt_text(tok, "Who?") == "Question: Who?\nAnswer:"


def test_tokenizer_round_trips_unseen_names(tiny_models):
    tok = load_tokenizer(tiny_models.tokenizer)
    text = "Zyxquorth Plimbaleen wrote The Umbral Ledger in 1937."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_save_load_round_trip_is_exact(tiny_models, tmp_path):
    model, tok = load_model(tiny_models.original)
    save_model(model, tok, tmp_path / "copy")
    again, tok2 = load_model(tmp_path / "copy")
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert tok2.get_vocab() == tok.get_vocab()
    before = sorted(p.name for p in (tmp_path / "copy").iterdir())
    assert model_fingerprint(tmp_path / "copy") == model_fingerprint(tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == before  # nothing written beside the weights


def test_models_memorise_as_required(tiny_models):
    """θ_o reproduces `full`; θ_r its retain set, and clearly fewer forget answers."""
    from unlearnkit.data.tofu import QASource

    src = QASource(tiny_models.data_dir)
    orig, tok = load_model(tiny_models.original)
    ref, _ = load_model(tiny_models.reference_for("forget10"))
    assert exact_match_rate(orig, tok, src.split("full")) >= 0.9
    assert exact_match_rate(ref, tok, src.split("retain90")) >= 0.9
    assert exact_match_rate(ref, tok, src.split("forget10")) <= 0.2


def test_second_build_reuses_the_cache(tiny_models):
    files = {p: p.stat().st_mtime_ns for p in tiny_models.original.iterdir()}
    again = build_models(tiny_build_config())
    assert again.original == tiny_models.original
    assert {p: p.stat().st_mtime_ns for p in again.original.iterdir()} == files


def test_same_seed_gives_identical_weights(tmp_path, monkeypatch):
    """Two builds in two different homes (a short recipe) give bit-identical weights; another seed differs."""
    cfg = tiny_build_config(base={"epochs": 2}, finetune={"epochs": 2})
    built = []
    for home in ("a", "b"):
        monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path / home))
        built.append(build_models(cfg))
    assert built[0].original != built[1].original  # really built twice
    for kind in ("base", "original"):
        a = load_file(getattr(built[0], kind) / "model.safetensors")
        b = load_file(getattr(built[1], kind) / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), kind
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path / "c"))
    other = build_models(tiny_build_config(base={"epochs": 2, "seed": 1}, finetune={"epochs": 2}))
    a = load_file(built[0].base / "model.safetensors")
    c = load_file(other.base / "model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_model_path_without_tokenizer_is_a_clear_error(tiny_models, tmp_path):
    model, _ = load_model(tiny_models.original)
    model.save_pretrained(tmp_path / "no_tok")
    with pytest.raises(UnlearnkitError, match="has no tokenizer files"):
        load_model(tmp_path / "no_tok")


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(UnlearnkitError, match="does not exist"):
        load_model(tmp_path / "missing")


def test_mismatched_tokenizer_is_a_clear_error(tiny_models, tmp_path):
    model, tok = load_model(tiny_models.original)
    model.resize_token_embeddings(100)
    save_model(model, tok, tmp_path / "bad")
    with pytest.raises(UnlearnkitError, match="does not match the model"):
        load_model(tmp_path / "bad")
