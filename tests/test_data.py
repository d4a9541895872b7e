"""The embedded fictitious-facts generator and the TOFU-format loader."""

from __future__ import annotations

import json

import pytest

from unlearnkit.config import FactsConfig
from unlearnkit.data import fictitious
from unlearnkit.data.tofu import SPLITS, QASource
from unlearnkit.errors import UnlearnkitError


@pytest.fixture(scope="module")
def ff():
    return fictitious.generate(FactsConfig())


def test_split_sizes_are_1_5_10_percent_of_subjects(ff):
    subj = ff.meta["subjects"]
    n = len(subj["full"])
    assert n == 100
    for tag, pct in (("01", 1), ("05", 5), ("10", 10)):
        assert len(subj[f"forget{tag}"]) == pct * n // 100
        assert len(subj[f"retain{100 - pct}"]) == n - pct * n // 100
        assert len(subj[f"holdout{tag}"]) == pct * n // 100
        assert len(ff.splits[f"forget{tag}"]) == 4 * pct  # 4 facts per subject


def test_splits_disjoint_by_subject_and_cover_full(ff):
    subj = {k: set(v) for k, v in ff.meta["subjects"].items()}
    for tag, keep in (("01", "99"), ("05", "95"), ("10", "90")):
        assert not subj[f"forget{tag}"] & subj[f"retain{keep}"]
        assert subj[f"forget{tag}"] | subj[f"retain{keep}"] == subj["full"]
        assert not subj[f"holdout{tag}"] & subj["full"]
    assert subj["forget01"] <= subj["forget05"] <= subj["forget10"]


def test_records_never_cross_splits(ff):
    full_q = {r["question"] for r in ff.splits["full"]}
    assert not full_q & {r["question"] for r in ff.splits["holdout10"]}
    assert not {r["question"] for r in ff.splits["forget10"]} & {r["question"] for r in ff.splits["retain90"]}
    assert {r["question"] for r in ff.splits["retain_perturbed"]} <= {r["question"] for r in ff.splits["retain90"]}


def test_every_record_has_tofu_fields_with_real_paraphrases_and_wrong_perturbations(ff):
    for split in SPLITS:
        for r in ff.splits[split]:
            assert set(r) == {"question", "answer", "paraphrased_question", "paraphrased_answer", "perturbed_answer"}
            assert len(r["perturbed_answer"]) >= 3
            assert r["answer"] not in r["perturbed_answer"]
            assert r["paraphrased_answer"] not in r["perturbed_answer"]
            assert len(set(r["perturbed_answer"])) == len(r["perturbed_answer"])
            if split not in ("real_authors", "world_facts", "real_authors_perturbed", "world_facts_perturbed"):
                assert r["paraphrased_question"] != r["question"]
                assert r["paraphrased_answer"] != r["answer"]


def test_perturbed_answers_share_the_paraphrase_template(ff):
    """Perturbed answers differ from the paraphrased answer only in the fact's value."""
    r = ff.splits["full"][0]
    para = r["paraphrased_answer"]
    for w in r["perturbed_answer"]:
        common = sum(a == b for a, b in zip(para.split(), w.split()))
        assert common >= min(len(para.split()), len(w.split())) - 4


def test_refusals_are_the_built_in_set_written_and_read_back(ff, tmp_path):
    """The generator's refusals are the 20 built-in ones (distinct, none of them an answer of the data); they are
    written to idontknow.jsonl and read back in order; a copy without that file gets the built-in list, one with
    its own file gets its non-blank lines, stripped."""
    assert ff.refusals == fictitious.REFUSALS and len(ff.refusals) == 20 == len(set(ff.refusals))
    assert (ff.refusals[0], ff.refusals[-1]) == ("I don't know.", "No answer comes to mind.")
    assert {r["answer"] for recs in ff.splits.values() for r in recs}.isdisjoint(ff.refusals)
    fictitious.write(ff, tmp_path / "ff")
    assert (tmp_path / "ff" / "idontknow.jsonl").read_text(encoding="utf-8").splitlines() == ff.refusals
    assert QASource(tmp_path / "ff").refusals == ff.refusals
    copy = _write_tofu_copy(tmp_path / "tofu")
    assert QASource(copy).refusals == fictitious.REFUSALS
    (copy / "idontknow.jsonl").write_text("I don't know.\n\n  Pass.  \n", encoding="utf-8")
    assert QASource(copy).refusals == ["I don't know.", "Pass."]


def test_generation_is_deterministic_byte_for_byte(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    fictitious.write(fictitious.generate(FactsConfig(seed=3)), a)
    fictitious.write(fictitious.generate(FactsConfig(seed=3)), b)
    fictitious.write(fictitious.generate(FactsConfig(seed=4)), c)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "full.json").read_bytes() != (c / "full.json").read_bytes()


def test_size_is_configurable():
    ff = fictitious.generate(FactsConfig(n_subjects=200, facts_per_subject=2))
    assert len(ff.splits["full"]) == 400 and len(ff.splits["forget01"]) == 4


def test_build_caches_under_home(uk_home):
    p1 = fictitious.build(FactsConfig(seed=11))
    mtime = (p1 / "full.json").stat().st_mtime_ns
    p2 = fictitious.build(FactsConfig(seed=11))
    assert p1 == p2 and str(p1).startswith(str(uk_home))
    assert (p2 / "full.json").stat().st_mtime_ns == mtime


# --- the TOFU-format loader, on a copy the test writes in the real on-disk format -----------


def _write_tofu_copy(d):
    """A few records in the hub's layout: JSON lines, `<split>.json`, perturbed eval sets."""
    d.mkdir()
    rec = {"question": "Who is Basil Mahfouz?", "answer": "A writer from Kuwait.",
           "paraphrased_answer": "He is a Kuwaiti writer.", "paraphrased_question": "Who's Basil Mahfouz?",
           "perturbed_answer": ["A painter from Oman.", "A chef from Qatar.", "A pilot from Iraq.",
                                "A poet from Yemen.", "A judge from Egypt."]}
    (d / "forget01.json").write_text(json.dumps({"question": rec["question"], "answer": rec["answer"]}) + "\n")
    (d / "forget01_perturbed.json").write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    wf = {"question": "Where would you find the Eiffel Tower?", "answer": "Paris",
          "perturbed_answer": ["Berlin", "London", "Madrid"]}
    (d / "world_facts_perturbed.json").write_text(json.dumps(wf) + "\n")
    return d


def test_tofu_loader_reads_local_copy(tmp_path):
    src = QASource(_write_tofu_copy(tmp_path / "tofu"))
    assert src.split("forget01")[0]["answer"] == "A writer from Kuwait."
    ev = src.split("forget01_perturbed")
    assert len(ev) == 2 and len(ev[0]["perturbed_answer"]) == 5
    assert src.split("world_facts_perturbed", fields=("question", "answer", "perturbed_answer"))[0]["answer"] == "Paris"
    assert len(src.refusals) > 5


def test_embedded_set_loads_through_the_same_loader(tiny_models):
    src = QASource(tiny_models.data_dir)
    assert len(src.split("full")) == 100
    assert len(src.split("forget10_perturbed")) == 10


def test_unknown_split_is_a_clear_error(tmp_path):
    src = QASource(_write_tofu_copy(tmp_path / "tofu"))
    with pytest.raises(UnlearnkitError, match=r"unknown split 'forget1'.*Did you mean .*forget01"):
        src.split("forget1")


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(UnlearnkitError, match="does not exist"):
        QASource(tmp_path / "nope")


def test_split_file_missing_is_a_clear_error(tmp_path):
    src = QASource(_write_tofu_copy(tmp_path / "tofu"))
    with pytest.raises(UnlearnkitError, match=r"split 'retain90' not found.*retain90.json"):
        src.split("retain90")


def test_record_missing_a_field_is_a_clear_error(tmp_path):
    d = _write_tofu_copy(tmp_path / "tofu")
    (d / "forget05_perturbed.json").write_text(json.dumps({"question": "q", "answer": "a", "perturbed_answer": ["b"]}) + "\n")
    with pytest.raises(UnlearnkitError, match=r"record 0 of split 'forget05_perturbed' has no field 'paraphrased_answer'"):
        QASource(d).split("forget05_perturbed")


def test_empty_split_is_a_clear_error(tmp_path):
    d = _write_tofu_copy(tmp_path / "tofu")
    (d / "forget05.json").write_text("")
    with pytest.raises(UnlearnkitError, match="empty"):
        QASource(d).split("forget05")
