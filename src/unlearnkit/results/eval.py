"""Language-model evaluations through the results API: an :class:`EvalResult` as a run entry
(aggregates, per-sample rows, notes), and θ_u saved into the run layout."""

from __future__ import annotations

from unlearnkit.engine import distributed as dist
from unlearnkit.engine.cache import state_fingerprint
from unlearnkit.engine.result import EvalResult
from unlearnkit.io import atomic_dir, atomic_write_text
from unlearnkit.models.lm import model_fingerprint, save_adapter_model, save_model
from unlearnkit.results.store import EntryInfo, EntryRecord, Metric, Run
from unlearnkit.results.tables import SECONDS


def write_eval(run: Run, info: EntryInfo, res: EvalResult, provenance: dict, seconds: float | None = None,
               extra: dict | None = None, metrics: dict[str, Metric] | None = None) -> EntryRecord:
    """``results/<entry>/results.json`` + ``per_sample.jsonl`` and the index rows of one evaluation.
    ``seconds`` (the unlearning wall time) is stored as the metric ``unlearn_seconds``; ``metrics`` adds
    others (e.g. a calibrated entry's α)."""
    aggregates: dict = {**res.aggregates, **(metrics or {})}
    if seconds is not None:
        aggregates[SECONDS] = Metric(seconds, None, False)
    return run.write(info, aggregates, per_sample_rows=res.per_sample_rows(), provenance=provenance,
                     extra={"forget": res.forget, "notes": res.notes, **(extra or {})})


def load_eval(run: Run, entry: str) -> EvalResult:
    """The :class:`EvalResult` of a finished entry (its evaluation aggregates only: metrics added beside
    them, like ``unlearn_seconds`` or a calibrated entry's ``alpha``, carry no sample count)."""
    rec = run.record(entry)
    if rec is None:
        raise FileNotFoundError(run.layout.result_file(entry))
    agg = {k: v for k, v in rec.aggregates.items() if v.get("n") is not None}
    return EvalResult.from_json({"forget": rec.extra.get("forget"), "aggregates": agg,
                                 "notes": rec.extra.get("notes", {})}, run.per_sample_rows(entry))


def save_model_entry(run: Run, entry: str, model, tokenizer, save: bool = True, adapter=None, base: str | None = None,
                     merged: bool = False) -> str:
    """θ_u into ``models/<entry>/`` (atomically; returns its fingerprint), or with ``save=False`` only its
    content hash into ``models/<entry>.sha256``. A LoRA θ_u (``adapter``, trained on ``base``) is saved as its
    adapter, plus the merged weights with ``merged``. The main process writes (several processes: same weights)."""
    return dist.on_main(lambda: _save_model_entry(run, entry, model, tokenizer, save, adapter, base, merged))


def _save_model_entry(run: Run, entry: str, model, tokenizer, save: bool, adapter, base, merged: bool) -> str:
    if save:
        with atomic_dir(run.layout.model(entry)) as tmp:
            if adapter is not None:
                save_adapter_model(adapter, tokenizer, tmp, base, merged=model if merged else None)
            else:
                save_model(model, tokenizer, tmp)
        return model_fingerprint(run.layout.model(entry))
    digest = state_fingerprint(model)
    atomic_write_text(run.layout.model_digest(entry), digest + "\n")
    return digest
