"""What the entries of a language-model run share (:class:`RunContext`) and what one (method, seed) entry is
(:class:`MethodJob`): the entry lifecycle (:mod:`.entries`, :mod:`unlearnkit.recipes.continual`) takes these
instead of long argument lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unlearnkit.engine.result import EvalResult
from unlearnkit.methods import MethodSpec
from unlearnkit.recipes.lm.bench import LMBench
from unlearnkit.recipes.lm.config import RunConfig
from unlearnkit.results.store import EntryInfo, Run

Say = Callable[[str], None]


@dataclass
class RunContext:
    """One run of the benchmark: its directory, the prepared benchmark, the reference results (``retrain``,
    ``original``), the config, where messages go, and whether entries that failed earlier are rerun."""

    run: Run
    bench: LMBench
    refs: dict[str, EvalResult]
    cfg: RunConfig
    say: Say
    retry_failed: bool = False


@dataclass
class MethodJob:
    """One (method, seed) entry: its identity and hash, the method's spec and its validated hyperparameters."""

    info: EntryInfo
    spec: MethodSpec
    params: Any  # the method's params model, with the seed
