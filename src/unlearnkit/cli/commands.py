"""The command handlers: each turns its parsed arguments into one recipe call and prints what the recipe returns
(exit status 0; 1 where an entry failed; user errors raise :class:`~unlearnkit.errors.UnlearnkitError`)."""

from __future__ import annotations

import argparse

from unlearnkit.cli.common import build_config, config_file, overrides_of, say, split_list, vision_flags
from unlearnkit.errors import UnlearnkitError

# ---------------------------------------------------------------------------------------------
# data build, models build, eval, unlearn


def cmd_data_build(args: argparse.Namespace) -> int:
    from unlearnkit.io import read_json
    from unlearnkit.recipes.build import build_data

    out = build_data(build_config(args), args.out, args.force)
    say(f"embedded fictitious-facts data: {out}")
    if args.verbose:
        for k, v in read_json(out / "meta.json")["sizes"].items():
            say(f"  {k:<24} {v:>5} records")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.build import build_model_set
    from unlearnkit.results.tables import models_report

    ms = build_model_set(build_config(args), force=args.force, say=say)
    say("")
    say(models_report(ms))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.evaluate import evaluate_model
    from unlearnkit.recipes.judge import check_judgeable
    from unlearnkit.results.tables import eval_table

    if args.judge is not None:
        check_judgeable(args.task)
    res, run = evaluate_model(args.task, args.model, config=config_file(args), overrides=overrides_of(args),
                              forget=args.forget, benchmark=args.benchmark, data=args.data, reference=args.reference,
                              no_reference=args.no_reference, out=args.out, dtype=args.dtype, force=args.force, say=say)
    say("")
    say(eval_table(res))
    if args.judge is not None:
        _say_judged(run, args.judge or None, args.base_url)
    say(f"\nresults: {run.layout.result_file('model')}  (per-sample values: {run.layout.per_sample('model')})")
    return 0


def _say_judged(run, backend: str | None, base_url: str | None) -> None:
    from unlearnkit.recipes.judge import judge_eval_run

    means = judge_eval_run(run, backend, base_url)
    say("judge (forget answers vs ground truth): " + ", ".join(f"{k} {v:.4f}" for k, v in means.items() if v is not None))


def cmd_unlearn(args: argparse.Namespace) -> int:
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.evaluate import split_task_options
    from unlearnkit.recipes.unlearn import unlearn_model

    rest, options = split_task_options(overrides_of(args))
    u = unlearn_model(args.method, args.model, task=args.task, forget=args.forget, benchmark=args.benchmark,
                      data=args.data, out=args.out, overrides=parse_overrides(rest), options=options,
                      force=args.force, say=say)
    if not u.reused:
        say(f"unlearned {args.model} with {args.method} on {u.forget} in {u.seconds:.1f}s ({u.steps} steps)")
    say(f"θ_u: {u.out}  (training log: {u.out / 'train_log.json'})")
    return 0


# ---------------------------------------------------------------------------------------------
# run [lm], run vision, report


def cmd_run(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    cfg = load_config(RunConfig, config_file(args), overrides_of(args))
    out = run_benchmark(cfg, say=say, retry_failed=args.retry_failed)
    say("")
    say(out.table)
    _after_run(cfg, out.run)
    say(f"\nresults: {out.run.layout.root}  (table.md, results/<entry>/results.json, logs/, models/; "
        f"`unlearnkit runs show {out.run.name}`)")
    if cfg.report:
        _say_report(out.run)
    return 1 if out.failures else 0


def _after_run(cfg, run) -> None:
    """``calibrate=true`` and ``attacks=[…]`` of a finished run."""
    if cfg.calibrate:
        from unlearnkit.recipes.calibrate import calibrate_run

        _say_calibrated(cfg.calibration, calibrate_run(run, cfg.calibration, say=say))
    if cfg.attacks:
        from unlearnkit.recipes.attack import AttackRunConfig, attack_run

        say("\nAttacked (recovery of the forgetting; docs/attacks.md):\n" +
            attack_run(run, AttackRunConfig(attacks=cfg.attacks), say=say).table)


def cmd_run_vision(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.vision import resolve_config, run_vision

    if args.list_methods:
        from unlearnkit.cli.catalogue import vision_methods

        say(vision_methods())
        return 0
    cfg = resolve_config(config_file(args), overrides_of(args), vision_flags(args))
    run = run_vision(cfg, say=say, fresh=args.fresh)
    if cfg.report:
        _say_report(run)
    return 0


def _say_report(run) -> None:
    from unlearnkit.recipes.report import report_run

    rep = report_run(run)
    say(f"report: {rep.path}  ({rep.size / 1024:.0f} KB, built in {rep.seconds:.1f}s; opens offline in any browser)")


def cmd_report(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.report import report

    rep = report(args.runs, args.output)
    say(f"report of {', '.join(rep.runs)}: {rep.path}  ({rep.size / 1024:.0f} KB, built in {rep.seconds:.1f}s)")
    return 0


# ---------------------------------------------------------------------------------------------
# calibrate, reliability, sweep


def cmd_attack(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.recipes.attack import AttackRunConfig, attack_run
    from unlearnkit.results.store import Run

    extra = [f"attacks=[{args.attacks}]"] if args.attacks else []
    cfg = load_config(AttackRunConfig, config_file(args), [*overrides_of(args), *extra])
    out = attack_run(Run.resolve(args.run), cfg, say=say)
    say("\n" + out.table)
    say(f"\nresults: {out.run.layout.root}  (attacks.json, table.md, results/<entry>__<attack>/)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.calibration import CalibrationConfig
    from unlearnkit.config import load_config
    from unlearnkit.recipes.calibrate import calibrate_run
    from unlearnkit.results.store import Run

    cfg = load_config(CalibrationConfig, config_file(args), overrides_of(args))
    cal = calibrate_run(Run.resolve(args.run), cfg, say=say)
    say("\nUncalibrated:")
    say(cal.table_uncalibrated)
    _say_calibrated(cfg, cal)
    return 0


def _say_calibrated(cfg, cal) -> None:
    say(f"\nCalibrated ({cfg.metric} ≥ {cfg.tau:g} · θ_o, α per method):")
    say(cal.table)
    say(f"\ncalibration: {cal.run.layout.root}  (alphas.json, curves.json, curves.png, table.md)")


def cmd_reliability(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.reliability import ReliabilityConfig
    from unlearnkit.config import load_config
    from unlearnkit.recipes.reliability import run_reliability

    run, _, table, names = run_reliability(load_config(ReliabilityConfig, config_file(args), overrides_of(args)),
                                           say=say)
    say("")
    say(table)
    say(f"\npool: {len(names)} models. reliability: {run.layout.root}  (values.json, pcc.json, table.md, scatter_*.png)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.recipes.sweep import SweepConfig, run_sweep

    cfg = load_config(SweepConfig, config_file(args), overrides_of(args))
    sw = run_sweep(cfg, say=say)
    say(f"\nBest variant per knob, after calibration ({cfg.calibration.metric} ≥ {cfg.calibration.tau:g} · θ_o):")
    say(sw.best)
    say("\nAll variants:")
    say(sw.every)
    say(f"\nsweep: {sw.run.layout.root}  (sweep_table.md, sweep.json, calibration/)")
    return 0


# ---------------------------------------------------------------------------------------------
# ls, judge, runs


def cmd_ls(args: argparse.Namespace) -> int:
    from unlearnkit.cli.catalogue import LISTINGS

    say(LISTINGS[args.what]())
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.judge import agreement_report, fluency_model_of, judge_run, one_backend

    if args.action == "agreement":
        say(agreement_report(args.backend or [], args.base_url))
        return 0
    backend = one_backend(args.run, args.backend or [])
    say("")
    say(judge_run(args.run, backend, args.base_url, not args.no_proxies, fluency_model_of(args.fluency_model), say=say))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    import json

    from unlearnkit.recipes import runs

    if args.runs_command == "reindex":
        say(f"indexed {runs.reindex_all()} run(s)")
        return 0
    if args.runs_command == "ls":
        data, text = runs.ls()
    elif args.runs_command == "show":
        data, text = runs.show(args.run)
    else:
        data, text = runs.compare(args.runs, split_list(args.metrics) or None)
    say(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


# ---------------------------------------------------------------------------------------------
# analyses: gradient, squeeze, layers


def _bench_args(args: argparse.Namespace):
    from unlearnkit.recipes.analyses import BenchArgs

    return BenchArgs(args.benchmark, args.data, args.model, getattr(args, "reference", None), args.forget)


def cmd_gradient(args: argparse.Namespace) -> int:
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import run_gradient

    _, table, files, failed = run_gradient(
        split_list(args.method), _bench_args(args), parse_overrides(overrides_of(args)), every=args.every,
        n_retain=args.n_retain, pointwise=args.pointwise, out=args.out, say=say)
    return _said_tracked(table, files, failed)


def cmd_squeeze(args: argparse.Namespace) -> int:
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import run_squeeze

    _, table, files, failed = run_squeeze(
        split_list(args.method), _bench_args(args), parse_overrides(overrides_of(args)), every=args.every,
        samples=args.samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed,
        judge=args.judge, out=args.out, say=say)
    return _said_tracked(table, files, failed)


def _said_tracked(table: str, files: list, failed: bool) -> int:
    say("")
    say(table)
    say("\nfiles: " + ", ".join(str(f) for f in files))
    return 1 if failed else 0


def _layer_list(text: str | None) -> list[int] | None:
    try:
        return [int(x) for x in text.split(",") if x.strip()] if text else None
    except ValueError:
        raise UnlearnkitError(f"--layers takes comma-separated layer indices (e.g. 0,2), got {text!r}") from None


def cmd_layers(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.layers import cru_table, layers_table
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import LayersOptions, run_layers

    opt = LayersOptions(bench=_bench_args(args), unlearned=args.unlearned, method=args.method,
                        overrides=parse_overrides(overrides_of(args)), layers=_layer_list(args.layers), cru=args.cru,
                        k=args.k, max_new_tokens=args.max_new_tokens, out=args.out, dtype=args.dtype)
    _, doc, files = run_layers(opt, say)
    say("")
    say(layers_table(doc))
    if "cru" in doc:
        say("")
        say(cru_table(doc["cru"]))
    say("\nfiles: " + ", ".join(str(f) for f in files))
    return 0
