"""What a task is: its data (loader or embedded twin, and the models built on it), its evaluation
sets and the metrics over them, and how a run summarises them (table columns).

A task is a :class:`Task` subclass in its own file under ``tasks/``, registered there with
:func:`unlearnkit.tasks.register`. ``unlearnkit run task=<name>`` (and ``eval --task``,
``calibrate``, eval-during-training) only talk to it through these methods:

- :meth:`Task.prepare` → :class:`TaskData`: build or reuse the embedded twin (data, tokenizer, base,
  θ_o, θ_r), or take the published data and given models; the forget and retain records a method
  trains on;
- :meth:`Task.training_data` → :class:`TrainingData`: only those records (the twin's data built offline, no
  models), for ``unlearnkit unlearn`` and for :meth:`Task.prepare`;
- :meth:`Task.evaluate` → :class:`~unlearnkit.engine.result.EvalResult` (per-sample values and
  aggregates named ``<set>.<metric>``), and :meth:`Task.compare` for what needs θ_r's result;
- :attr:`Task.columns` (the run table), :attr:`Task.probes` and :meth:`Task.probe` (cheap named
  metrics: calibration targets, evaluation during training), :attr:`Task.calibration_metrics`.

:class:`CorpusTask` is :meth:`Task.prepare` written once for the tasks whose unlearner trains on raw-text
corpora (MUSE, WMDP): each supplies its pieces (source, corpora, twin models, fingerprint).

docs/tasks.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from unlearnkit.config import BuildConfig, StrictModel
from unlearnkit.engine.evaluate import EvalConfig
from unlearnkit.engine.result import EvalResult, bootstrap_statistic
from unlearnkit.errors import UnlearnkitError

Say = Callable[[str], None]


class NoOptions(StrictModel):
    """A task without options."""


@dataclass
class TaskRequest:
    """What a run asks of a task (the task-independent part of the run config)."""

    benchmark: str  # "embedded" (the twin) or the task's published benchmark (Task.published)
    build: BuildConfig  # tiny-model architecture, training recipes, pretrained start, prompt format
    data: str | None  # published data: local directory or hub name (None = the task's hub name)
    original: str | None  # θ_o path or hub name (published benchmark)
    reference: str | None  # θ_r path or hub name (published benchmark)
    forget: str  # forget split (Task.forget_splits)
    options: Any  # the task's validated options (Task.options)


@dataclass
class TaskData:
    """A prepared task: where the data and models are, and what methods train on."""

    task: str
    source: Any  # what Task.evaluate reads (QASource, MuseSource, WmdpSource)
    data: str  # data location (recorded in the run's inputs)
    original: str  # θ_o
    reference: str  # θ_r (retrained without the forget set)
    forget_records: list[dict]  # D_f ({"question", "answer"} or {"text"} records)
    retain_records: list[dict]  # D_r given to the unlearner
    refusals: list[str]
    fingerprint: str  # content hash of every record the run reads
    info: dict = field(default_factory=dict)  # sizes, notes (printed, recorded)


@dataclass
class TrainingData:
    """What an unlearner trains on, read from one data location (no models needed)."""

    source: Any  # the loader the records came from (QASource, MuseSource, WmdpSource)
    data: str  # data location
    forget_records: list[dict]  # D_f
    retain_records: list[dict]  # D_r
    refusals: list[str]


def _quiet(s: str) -> None:
    pass


@dataclass(frozen=True)
class Probe:
    """A named metric a task computes cheaply on the current weights (no cache): for calibration
    (hold a retain metric), evaluation during training and best-checkpoint selection."""

    name: str
    higher_is_better: bool | None
    summary: str


class Task:
    """Base class of a task; subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    summary: ClassVar[str]
    published: ClassVar[str]  # the `benchmark=` value of the published data, e.g. "tofu"
    hub: ClassVar[str]  # default hub name of the published data
    paper: ClassVar[str] = ""
    forget_splits: ClassVar[tuple[str, ...]]
    default_forget: ClassVar[str]
    options: ClassVar[type[StrictModel]] = NoOptions
    columns: ClassVar[tuple[tuple[str, str], ...]]  # the run table: (header, metric)
    notes: ClassVar[tuple[str, ...]] = ()  # lines printed under the run table
    probes: ClassVar[tuple[Probe, ...]] = ()
    calibration_metrics: ClassVar[tuple[str, ...]] = ()  # retain-side probes calibration may hold
    calibration_forget: ClassVar[str | None] = None  # forget-side probe of the α-curve
    reliability_metrics: ClassVar[tuple[str, ...]] = ()  # metrics of the reliability study (empty: none)
    default_methods: ClassVar[tuple[str, ...]] = ("ga", "gd", "kl", "npo")
    mia_sets: ClassVar[tuple[str, str]] = ("forget", "holdout")  # members, non-members of the MIAs and PrivLeak

    def check_forget(self, forget: str) -> str:
        if forget not in self.forget_splits:
            raise UnlearnkitError(f"task {self.name} has no forget split {forget!r}: use one of "
                                  f"{', '.join(self.forget_splits)}")
        return forget

    def check_benchmark(self, benchmark: str) -> None:
        if benchmark not in ("embedded", self.published):
            raise UnlearnkitError(f"task {self.name} runs on benchmark=embedded (its offline twin) or "
                                  f"benchmark={self.published} (the published data), not {benchmark!r}")

    # -- data and models ------------------------------------------------------------------------
    def prepare(self, req: TaskRequest, say: Say) -> TaskData:
        raise NotImplementedError

    def training_data(self, req: TaskRequest, say: Say = _quiet) -> TrainingData:
        """The forget (``req.forget``) and retain records of ``req.data`` (None: the embedded twin's data, built
        offline, or the published data); ``req.original`` names the tokenizer where texts are cut in chunks. Uses
        no collectives (callers run it under :func:`unlearnkit.engine.distributed.main_first`)."""
        raise NotImplementedError

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, tokenizer, data: TaskData, cfg: EvalConfig, options: Any,
                 model_id: str | None = None) -> EvalResult:
        raise NotImplementedError

    def compare(self, res: EvalResult, ref: EvalResult) -> EvalResult:
        """Add what needs the reference θ_r's result (FQ, PrivLeak, …); θ_r compared with itself is the
        Retrain row."""
        return res

    def statistic(self, metric: str, res: EvalResult, ref: EvalResult | None):
        """(eval-set sizes, bootstrap statistic) recomputing ``metric`` of ``res`` from its resampled per-sample
        values (θ_r's ``ref`` resampled alike), or None when the stored values cannot give it: then the run
        table shows no interval for it (:mod:`unlearnkit.results.intervals`)."""
        return bootstrap_statistic(metric, res, ref, *self.mia_sets)

    def probe(self, model, tokenizer, data: TaskData, names: list[str], cfg: EvalConfig,
              options: Any) -> dict[str, float]:
        raise UnlearnkitError(f"task {self.name} has no cheap probes")

    def headline(self, res: EvalResult, n: int = 3) -> str:
        """The first ``n`` table columns of ``res``, for progress lines."""
        cols = [(h, m) for h, m in self.columns if res.get(m) is not None][:n]
        return ", ".join(f"{h.rstrip(' ↑↓')} {res.value(m):.3f}" for h, m in cols)

    def check_probes(self, names: list[str]) -> list[str]:
        known = [p.name for p in self.probes]
        bad = [n for n in names if n not in known]
        if bad:
            raise UnlearnkitError(f"task {self.name} has no probe metric {bad[0]!r}: use one of {', '.join(known)}")
        return names

    # -- continual unlearning (sustainability) --------------------------------------------------
    def requests(self, data: TaskData, k: int) -> list[list[dict]]:
        """The forget set as k requests applied one after another (contiguous, sizes as equal as possible)."""
        import numpy as np

        recs = data.forget_records
        if not 1 <= k <= len(recs):
            raise UnlearnkitError(f"continual={k} needs 1 ≤ k ≤ {len(recs)} (the forget records)")
        return [[recs[i] for i in part] for part in np.array_split(np.arange(len(recs)), k)]

    def stage_keys(self) -> dict[str, str]:
        """Curve key → aggregate name, for the continual curves."""
        return {m.replace(".", "_"): m for _, m in self.columns}


class CorpusTask(Task):
    """A task whose unlearner trains on raw-text corpora (MUSE, WMDP): its embedded twin (data built offline,
    then the twin's models) or the published data with the given θ_o and θ_r, whose texts train in chunks of
    ``options.chunk_tokens`` tokens of θ_o's tokenizer. A subclass supplies the pieces below."""

    published_needs: ClassVar[str]  # the error when the published data comes without original= and reference=

    def prepare(self, req: TaskRequest, say: Say) -> TaskData:
        self.check_benchmark(req.benchmark)
        if req.benchmark == "embedded":
            train = self.training_data(replace(req, data=None), say)  # the twin's models learn its own data
            original, reference = self.twin_models(req, train, say)
        else:
            if not (req.original and req.reference):
                raise UnlearnkitError(self.published_needs)
            train = self.training_data(req, say)
            original, reference = req.original, req.reference
        return TaskData(self.name, train.source, train.data, original, reference, train.forget_records,
                        train.retain_records, train.refusals, self.fingerprint(train),
                        info=self.data_info(req.options, req.benchmark == "embedded"))

    def training_data(self, req: TaskRequest, say: Say = _quiet) -> TrainingData:
        twin = req.benchmark == "embedded"
        location = req.data
        if location is None and twin:
            location = str(self.twin_data(req.options))
            say(f"{self.name + ' twin data':<22} ready    {location}")
        src = self.source(location or self.published_data(req.options), req.options, twin)
        forget, retain = self.corpora(src, req.forget)
        if not twin:
            from unlearnkit.engine.data import chunk_texts
            from unlearnkit.models.lm import load_tokenizer

            tok, n = load_tokenizer(req.original), req.options.chunk_tokens
            forget, retain = (chunk_texts(tok, [r["text"] for r in recs], n) for recs in (forget, retain))
        return TrainingData(src, src.location, forget, retain, src.refusals)

    # -- the pieces a corpus task supplies --------------------------------------------------------
    def twin_data(self, options: Any) -> Path:
        """Build (or reuse) the embedded twin's data directory."""
        raise NotImplementedError

    def published_data(self, options: Any) -> str:
        """The published data's hub name (when ``data=`` is not given)."""
        raise NotImplementedError

    def source(self, location: str, options: Any, twin: bool) -> Any:
        """The loader of ``location`` (``twin``: the embedded twin's data)."""
        raise NotImplementedError

    def corpora(self, source: Any, forget: str) -> tuple[list[dict], list[dict]]:
        """The forget corpus of split ``forget`` and the retain corpus: ``{"text"}`` records, not yet chunked."""
        raise NotImplementedError

    def twin_models(self, req: TaskRequest, train: TrainingData, say: Say) -> tuple[str, str]:
        """Build (or reuse) the twin's θ_o and θ_r; their paths."""
        raise NotImplementedError

    def fingerprint(self, train: TrainingData) -> str:
        """Content hash of every record a run reads (training and evaluation sets)."""
        raise NotImplementedError

    def data_info(self, options: Any, twin: bool) -> dict:
        """What :attr:`TaskData.info` records."""
        return {}
