"""``unlearnkit attack --run RUN``: does each θ_u's forgetting survive the attacks of the registry?

    a finished language-model run (θ_u saved) → the forget evaluation set split in two halves by position
    (TOFU and the embedded set list a subject's facts together, so the halves split by subject; the seed picks
    which half the attacker holds) → Original, Retrain and every θ_u, unattacked and under each attack, measured
    on the other half (forget) and on the retain set → an entry each (``attacks/<setting>/``, a nested run;
    resumable, hashed by the model's fingerprint, the attack and its knobs) → recovery per entry and attack
    (docs/metrics.md, "Recovery under attack") and the worst case, as a table and ``attacks.json``.

Every attack sees the same target: the attacker's half of the forget training records (``forget_train``, what
``relearn`` fine-tunes on), as many retain training records (``retain_train``), the seed and the run's training
precision. Retrain attacked the same way is the floor: what an attack teaches a model that never saw the forget
set is generalisation, not recovery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from unlearnkit.attacks import AttackNames, AttackTarget, apply_attack, get_attack
from unlearnkit.config import Seed, StrictModel
from unlearnkit.data.tofu import RETAIN_OF
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.metrics.robustness import recovery, worst_recovery
from unlearnkit.models.lm import is_saved_model, load_model, model_fingerprint, pick_device, resolve_dtype
from unlearnkit.recipes.lm import LMBench, RunConfig, prepare_benchmark
from unlearnkit.results.layout import entry_name
from unlearnkit.results.provenance import provenance
from unlearnkit.results.store import EntryInfo, Metric, Run
from unlearnkit.results.tables import format_table

Say = Callable[[str], None]
DEFAULT_ATTACKS = ("relearn", "relearn_benign", "quant8", "quant4", "jailbreak", "paraphrase")  # incontext: set k to fit the context
PROTOCOL = "halves-by-position-v1"  # the split; in every entry's hash


class AttackRunConfig(StrictModel):
    attacks: AttackNames = Field(default_factory=lambda: list(DEFAULT_ATTACKS), min_length=1,
                               description="attacks of the registry (`unlearnkit ls attacks`)")
    metrics: list[str] = Field(default_factory=lambda: ["es", "prob", "truth_ratio"], min_length=1,
                               description="forget / retain metrics measured (the task's reliability metrics)")
    recovery_metric: str = Field("es", description="the forget metric whose recovery the table shows")
    attack_params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="knobs per attack")
    max_new_tokens: int = Field(48, ge=1, description="generation length of ROUGE-L (metrics=[…, rouge])")
    seed: Seed = 0

    @model_validator(mode="after")
    def _consistent(self) -> AttackRunConfig:
        if self.recovery_metric not in self.metrics:
            raise ValueError(f"recovery_metric {self.recovery_metric!r} is not measured: add it to metrics")
        for name, knobs in self.attack_params.items():
            if name not in self.attacks:
                raise ValueError(f"attack_params.{name}: {name!r} is not one of the attacks run")
            get_attack(name).params(**knobs)
        return self


@dataclass
class Halves:
    """The attacker's half (``train``: forget training records; ``retain_train``) and what is measured
    (``sets``: the other half of the forget evaluation set, and the retain evaluation set)."""

    train: list[dict]
    retain_train: list[dict]
    sets: dict[str, list[dict]]


def split_halves(forget_eval: list[dict], forget_train: list[dict], retain_train: list[dict], retain_eval: list[dict],
                 seed: int) -> Halves:
    """First half / second half by position (record i of ``forget_train`` is record i of ``forget_eval``); an even
    seed gives the attacker the first half, an odd one the second."""
    h = len(forget_eval) // 2
    first, second = list(range(h)), list(range(h, len(forget_eval)))
    own, other = (first, second) if seed % 2 == 0 else (second, first)
    train = [forget_train[i] for i in own]
    return Halves(train, retain_train[: len(train)], {"forget": [forget_eval[i] for i in other], "retain": retain_eval})


@dataclass
class Attacking:
    """What every attacked entry shares: the finished run, its attack setting, the configs, the benchmark, the split."""

    parent: Run
    child: Run
    cfg: AttackRunConfig
    run_cfg: RunConfig
    bench: LMBench
    halves: Halves
    say: Say


@dataclass
class AttackRun:
    run: Run  # the attack setting (nested run)
    values: dict[str, dict[str, dict[str, float]]]  # entry → condition ("none" or an attack) → "<set>.<metric>"
    recoveries: dict[str, dict[str, float | None]]  # entry → attack → recovery of the recovery metric
    table: str


def attack_run(parent: Run, cfg: AttackRunConfig, say: Say = print) -> AttackRun:
    """Every entry of ``parent`` (Original, Retrain, each saved θ_u) unattacked and under each attack."""
    ctx = _setting(parent, cfg, say)
    values = {entry: _attack_entry(ctx, entry, path) for entry, path in _models(parent, ctx.run_cfg).items()}
    rec = recoveries(values, cfg.attacks, f"forget.{cfg.recovery_metric}")
    table = attack_table(values, rec, cfg)
    ctx.child.write_json("attacks.json", {"values": values, "recoveries": rec, "recovery_metric": cfg.recovery_metric,
                                          "protocol": PROTOCOL})
    ctx.child.write_text("table.md", table + "\n")
    return AttackRun(ctx.child, values, rec, table)


def _setting(parent: Run, cfg: AttackRunConfig, say: Say) -> Attacking:
    if parent.kind != "lm" or parent.record("original") is None:
        raise UnlearnkitError(f"{parent.name!r} is not a finished `unlearnkit run` (language-model) run: run the "
                              "benchmark first, then attack it")
    run_cfg = RunConfig.model_validate(parent.config())
    bench = prepare_benchmark(run_cfg, say=lambda s: None)
    known = bench.task.reliability_metrics
    if not known:
        raise UnlearnkitError(f"task {bench.task.name} has no attack measurement yet: attack a task=tofu run")
    bad = [m for m in cfg.metrics if m not in known]
    if bad:
        raise UnlearnkitError(f"metric {bad[0]!r} is not measured under attack: use some of {', '.join(known)}")
    src, forget = bench.source, run_cfg.forget
    halves = split_halves(src.split(f"{forget}_perturbed"), src.split(forget), src.split(RETAIN_OF[forget]),
                          src.split("retain_perturbed"), cfg.seed)
    setting = f"attacks-{content_hash(cfg.model_dump(), 8)}"
    child = parent.child("attack", setting, cfg.model_dump(), group="attacks")
    say(f"attack setting: {child.layout.root}")
    return Attacking(parent, child, cfg, run_cfg, bench, halves, say)


def _models(parent: Run, run_cfg: RunConfig) -> dict[str, str]:
    """Original, Retrain and every finished (method, seed) entry's saved θ_u."""
    inputs = parent.inputs()
    out = {"original": inputs["original"], "retrain": inputs["reference"]}
    for method in run_cfg.methods:
        for seed in run_cfg.seeds:
            entry = entry_name(method, seed)
            if parent.record(entry) is None:
                continue
            if not is_saved_model(parent.layout.model(entry)):
                raise UnlearnkitError(f"run entry {entry} has no saved θ_u (the run used save_models=false): rerun "
                                      "it with save_models=true to attack it")
            out[entry] = str(parent.layout.model(entry))
    return out


def _attack_entry(ctx: Attacking, entry: str, path: str) -> dict[str, dict[str, float]]:
    """``entry``'s model unattacked ("none") and under every attack: condition → "<set>.<metric>" → value."""
    model = tok = None
    out: dict[str, dict[str, float]] = {}
    fingerprint = model_fingerprint(path)
    for cond in ("none", *ctx.cfg.attacks):
        info = _entry_info(ctx, entry, cond, fingerprint)
        with ctx.child.lock(info.name):
            if ctx.child.status(info) != "done":
                if model is None:
                    model, tok = load_model(path, device=pick_device(), dtype=resolve_dtype(ctx.run_cfg.dtype, path),
                                            prompt=ctx.run_cfg.prompt)
                _measure_and_write(ctx, info, model, tok, cond)
            rec = ctx.child.record(info.name)
            out[cond] = {k: rec.value(k) for k in rec.aggregates}
    return out


def _entry_info(ctx: Attacking, entry: str, cond: str, fingerprint: str) -> EntryInfo:
    cfg = ctx.cfg
    inputs = {"model": fingerprint, "attack": cond, "params": _params(cfg, cond), "metrics": cfg.metrics,
              "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed, "protocol": PROTOCOL,
              "forget": ctx.run_cfg.forget, "dtype": str(ctx.bench.dtype)}
    return EntryInfo(name=f"{entry}__{cond}", hash=content_hash(inputs), method=cond, group=entry, inputs=inputs)


def _params(cfg: AttackRunConfig, cond: str) -> dict:
    return {} if cond == "none" else get_attack(cond).params(**cfg.attack_params.get(cond, {})).model_dump()


def _measure_and_write(ctx: Attacking, info: EntryInfo, model, tok, cond: str) -> None:
    cfg, h = ctx.cfg, ctx.halves
    target = AttackTarget(model, tok, h.sets, forget_train=h.train, seed=cfg.seed,
                          precision=str(ctx.run_cfg.defaults.get("precision", "auto")), retain_train=h.retain_train)
    if cond != "none":
        target = apply_attack(cond, target, _params(cfg, cond))
    metrics = {}
    for role, recs in h.sets.items():
        vals = ctx.bench.task.measure(target.model, tok, recs, role, target.question(role), cfg.metrics,
                                      cfg.max_new_tokens)
        metrics.update({f"{role}.{m}": Metric(v, len(recs), None) for m, v in vals.items()})
    ctx.child.write(info, metrics, provenance=provenance(cfg.model_dump(), seed=cfg.seed, attack=cond,
                                                         run=ctx.parent.name))
    ctx.say(f"{info.group}: {cond:<10} " + ", ".join(f"{k} {m.value:.4f}" for k, m in metrics.items()))


def recoveries(values: dict, attacks: list[str], key: str) -> dict[str, dict[str, float | None]]:
    """entry → attack → recovery of ``key`` (θ_o's unattacked value, the entry's unattacked value, under attack)."""
    m_o = values["original"]["none"][key]
    return {e: {a: recovery(v[a][key], v["none"][key], m_o) for a in attacks} for e, v in values.items()}


def attack_table(values: dict, rec: dict, cfg: AttackRunConfig) -> str:
    """Rows: entries; columns: the recovery metric unattacked, its recovery under each attack, the worst case."""
    key = f"forget.{cfg.recovery_metric}"
    rows = []
    for entry, per in rec.items():
        cells = [per[a] if per[a] is not None else "-" for a in cfg.attacks]
        worst = worst_recovery(per.values())
        rows.append([_row_name(entry), values[entry]["none"][key], *cells, worst if worst is not None else "-"])
    heads = ["entry", f"{cfg.recovery_metric} (held-out half)", *(f"recovery {a}" for a in cfg.attacks), "worst"]
    return (format_table(heads, rows) + f"\nrecovery = (m_attacked − m_u) / (m_o − m_u) of forget {cfg.recovery_metric}"
            " on the held-out half (1 = θ_o's value restored, 0 = nothing; - = undefined: θ_u did not move it); "
            "docs/metrics.md")


def _row_name(entry: str) -> str:
    return {"original": "Original", "retrain": "Retrain"}.get(entry, entry)
