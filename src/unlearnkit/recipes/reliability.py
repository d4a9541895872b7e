"""``unlearnkit reliability``: metric reliability under red-team interventions
(:mod:`unlearnkit.analysis.reliability`).

    build or reuse the models → the pool: a checkpoint after every epoch of every (method, strength)
    → each pool model measured under every condition (an entry each, resumable)
    → Pearson correlation per (set, metric, intervention) → table, values, scatter plots

A pool model's entry hash covers its fingerprint and the measurement settings, so changing an
intervention setting re-measures every model while the pool checkpoints are reused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from unlearnkit.analysis.reliability import ReliabilityConfig, correlations, measure_conditions, reliability_table
from unlearnkit.data.tofu import RETAIN_OF, QASource
from unlearnkit.engine.executor import check as check_executor
from unlearnkit.engine.executor import run_entries
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.methods.unlearn import make_params, resolve, unlearn
from unlearnkit.models.build import ModelSet, build_models
from unlearnkit.models.lm import load_model, model_fingerprint, resolve_dtype, save_model
from unlearnkit.results.plots import plot_scatter_grid
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run

Say = Callable[[str], None]
_MEASURE_KEYS = ("interventions", "metrics", "relearn", "noise_rate", "max_new_tokens", "seed", "forget", "precision",
                 "dtype")  # the last two only when set (older entries keep their hashes)


@dataclass
class Study:
    """What the pool trainings and measurements share: the run, the config, the built models and their data."""

    run: Run
    cfg: ReliabilityConfig
    ms: ModelSet
    src: QASource
    say: Say


def run_reliability(cfg: ReliabilityConfig, say: Say = print):
    """Build the pool, measure every (model, condition), write values, PCC table and plots."""
    n_pool = len(cfg.methods) * len(cfg.strengths) * cfg.epochs + int(cfg.include_original)
    if n_pool < 3:
        raise UnlearnkitError(f"the pool would hold {n_pool} models; Pearson correlation needs at least 3 "
                              "(add methods, strengths or epochs)")
    methods = {m: resolve(m) for m in cfg.methods}
    check_executor(cfg.executor)
    run = Run.open("reliability", cfg.name or f"reliability-{content_hash(cfg.model_dump(exclude={'name', 'executor'}))}",
                   cfg.model_dump())
    say(f"reliability directory: {run.layout.root}")
    ms = build_models(cfg.build.with_forget(cfg.forget), say=say)
    src = QASource(ms.data_dir)
    study = Study(run, cfg, ms, src, say)
    pool = build_pool(study, methods)
    sets = {"forget": src.split(f"{cfg.forget}_perturbed"), "retain": src.split("retain_perturbed")}
    measured = run_entries([functools.partial(measure_model, study, name, path, sets, src.split(cfg.forget))
                            for name, path in pool], cfg.executor)
    values = {name: v for (name, _), v in zip(pool, measured)}
    names = [n for n, _ in pool]
    pcc, scatter = correlations(values, names, cfg.metrics, cfg.interventions)
    table = reliability_table(pcc, cfg.metrics, cfg.interventions)
    flat = {f"{role}.{met}@{iv}": Metric(v, len(names), True)
            for role, per in pcc.items() for met, ivs in per.items() for iv, v in ivs.items()}
    run.write(EntryInfo(name="pcc", hash=content_hash([values, names]), method="pcc"), flat,
              provenance=provenance(cfg.model_dump()), extra={"pool": names})
    run.write_json("values.json", values)
    run.write_json("pcc.json", {"pcc": pcc, "pool": names, "provenance": provenance(cfg.model_dump())})
    run.write_summary([], table)
    for role in ("forget", "retain"):
        plot_scatter_grid(scatter[role], pcc[role], run.layout.file(f"scatter_{role}.png"),
                          f"{role} data: metric before (x) vs after (y) each intervention, {len(names)} models")
    return run, pcc, table, names


def build_pool(study: Study, methods: dict) -> list[tuple[str, str]]:
    """θ_o (optionally) and a checkpoint after every epoch of every (method, strength); the (method, strength)
    trainings are independent entries (``executor``: one after another, or Ray tasks)."""
    cfg = study.cfg
    pool: list[tuple[str, str]] = [("original", str(study.ms.original))] if cfg.include_original else []
    jobs = [(m, spec, retain_kind, lr) for m, (spec, retain_kind) in methods.items() for lr in cfg.strengths]
    tasks = [functools.partial(_pool_member, study, m, spec, kind, lr) for m, spec, kind, lr in jobs]
    for members in run_entries(tasks, cfg.executor):
        pool += members
    return pool


def _pool_member(study: Study, m: str, spec, retain_kind, lr: float) -> list[tuple[str, str]]:
    """The checkpoints of one (method, strength), trained now unless saved with the same hash."""
    run, cfg, ms, src = study.run, study.cfg, study.ms, study.src
    names = [f"{m}-lr{lr:g}-ep{e + 1}" for e in range(cfg.epochs)]
    paths = [run.layout.model(n) for n in names]
    key = content_hash({"original": model_fingerprint(ms.original), "method": m, "lr": lr,
                        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "seed": cfg.seed,
                        **({"precision": cfg.precision} if cfg.precision != "auto" else {})})
    log = run.read_log(f"pool-{m}-lr{lr:g}")
    if not (log and log.get("hash") == key and all((p / "config.json").is_file() for p in paths)):
        model, tok = load_model(ms.original)
        params = make_params(spec, {"lr": lr, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                                    "seed": cfg.seed, "precision": cfg.precision}, retain_kind)

        def keep(epoch: int, mdl) -> None:
            save_model(mdl, tok, paths[epoch])

        forget_train, retain_train = src.split(cfg.forget), src.split(RETAIN_OF[cfg.forget])
        unlearn(model, tok, spec, params, forget_train, retain_train, src.refusals, desc=f"{m} lr={lr:g}",
                on_epoch=keep)
        run.write_log(f"pool-{m}-lr{lr:g}", {"hash": key, "checkpoints": names})
        study.say(f"pool: {m} lr={lr:g} → {cfg.epochs} checkpoints")
    return [(n, str(p)) for n, p in zip(names, paths)]


def measure_model(study: Study, name: str, path: str, sets: dict, forget_train: list[dict]) -> dict:
    """One pool model under every condition (an entry of the run; resumable)."""
    run, cfg = study.run, study.cfg
    dump = cfg.model_dump()
    inputs = {"model": model_fingerprint(path), **{k: dump[k] for k in _MEASURE_KEYS if k in dump}}
    info = EntryInfo(name=name, hash=content_hash(inputs), method=name.split("-lr")[0], inputs=inputs)
    with run.lock(name):
        if run.status(info) == "done":
            return run.record(name).extra["conditions"]
        model, tok = load_model(path, dtype=resolve_dtype(cfg.dtype, path))
        conds = measure_conditions(model, tok, sets, forget_train, cfg,
                                   retain_train=study.src.split(RETAIN_OF[cfg.forget]))
        flat = {f"{role}.{met}@{c}": Metric(v, len(sets[role]), None)
                for c, roles in conds.items() for role, mets in roles.items() for met, v in mets.items()}
        run.write(info, flat, provenance=provenance(cfg.model_dump(), model=path), extra={"conditions": conds})
        study.say(f"measured {name}")
        return conds
