"""The ``unlearnkit`` command. Every subcommand has ``--help``.

User errors (:class:`UnlearnkitError`) print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable

from unlearnkit import __version__
from unlearnkit.errors import UnlearnkitError

Handler = Callable[[argparse.Namespace], int]


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _say(msg: str) -> None:
    print(msg, flush=True)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (presets in configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. finetune.epochs=30")


# ---------------------------------------------------------------------------------------------
# data / models


def cmd_data_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearnkit.config import BuildConfig, load_config
    from unlearnkit.data import fictitious

    cfg = load_config(BuildConfig, args.config, args.overrides).data
    if args.out:
        out = Path(args.out)
        fictitious.write(fictitious.generate(cfg), out)
    else:
        out = fictitious.build(cfg, force=args.force)
    _say(f"embedded fictitious-facts data: {out}")
    if args.verbose:
        from unlearnkit.io import read_json

        for k, v in read_json(out / "meta.json")["sizes"].items():
            _say(f"  {k:<24} {v:>5} records")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from unlearnkit.config import BuildConfig, load_config
    from unlearnkit.models.build import build_models
    from unlearnkit.results.tables import models_report

    cfg = load_config(BuildConfig, args.config, args.overrides)
    ms = build_models(cfg, force=args.force, say=_say)
    _say("")
    _say(models_report(ms))
    return 0


# ---------------------------------------------------------------------------------------------
# eval


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearnkit.config import load_config
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.engine.lm_eval import evaluate_paths
    from unlearnkit.results.tables import eval_table

    cfg = load_config(EvalConfig, args.config, [*args.overrides, f"forget={args.forget}"])
    out = Path(args.out) if args.out else None
    res, out = evaluate_paths(
        model=args.model, benchmark=args.benchmark, data=args.data, reference=args.reference,
        no_reference=args.no_reference, cfg=cfg, out=out, dtype=args.dtype, say=_say,
    )
    _say("")
    _say(eval_table(res))
    _say(f"\nresults: {out / 'results.json'}  (per-sample values: {out / 'per_sample.jsonl'})")
    return 0


# ---------------------------------------------------------------------------------------------
# run / unlearn / ls


def cmd_run(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.run import RunConfig, run_benchmark

    cfg = load_config(RunConfig, args.config, args.overrides)
    run, _, failures, table = run_benchmark(cfg, say=_say)
    _say("")
    _say(table)
    if cfg.calibrate:
        from unlearnkit.analysis.calibration import calibrate_run

        out, _, _, table_c = calibrate_run(run.dir, cfg.calibration, say=_say)
        _say_calibrated(cfg.calibration, table_c, out)
    _say(f"\nresults: {run.dir}  (summary.json, table.md, results/<entry>/results.json, logs/, models/)")
    return 1 if failures else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unlearnkit.analysis.calibration import CalibrationConfig, calibrate_run
    from unlearnkit.config import load_config

    cfg = load_config(CalibrationConfig, args.config, args.overrides)
    out, alphas, table_u, table_c = calibrate_run(Path(args.run), cfg, say=_say)
    _say("\nUncalibrated:")
    _say(table_u)
    _say_calibrated(cfg, table_c, out)
    return 0


def _say_calibrated(cfg, table: str, out) -> None:
    _say(f"\nCalibrated ({cfg.metric} ≥ {cfg.tau:g} · θ_o, α per method):")
    _say(table)
    _say(f"\ncalibration: {out}  (alphas.json, curves.json, curves.png, table.md)")


def cmd_unlearn(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from unlearnkit.config import parse_overrides
    from unlearnkit.data.tofu import HUB_NAME, RETAIN_OF, QASource, check_split_name
    from unlearnkit.engine.unlearn import make_params, resolve, unlearn
    from unlearnkit.io import atomic_dir, atomic_write_json, home
    from unlearnkit.models.lm import load_model, pick_device, save_model

    spec, retain = resolve(args.method)
    params = make_params(spec, parse_overrides(args.overrides), retain)
    check_split_name(args.forget, ("forget01", "forget05", "forget10"))
    data = args.data
    if data is None:
        from unlearnkit.config import BuildConfig
        from unlearnkit.data import fictitious

        data = str(fictitious.build(BuildConfig().data)) if args.benchmark == "embedded" else HUB_NAME
    src = QASource(data)
    model, tok = load_model(args.model, device=pick_device())
    log = unlearn(model, tok, spec, params, src.split(args.forget), src.split(RETAIN_OF[args.forget]), src.refusals)
    out = Path(args.out) if args.out else home() / "runs" / f"unlearn-{args.method.replace('+', '_plus_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    with atomic_dir(out) as tmp:
        save_model(model, tok, tmp)
        atomic_write_json(tmp / "train_log.json", {"method": spec.name, "forget": args.forget, "model": args.model,
                                                   "params": params.model_dump(), **log.to_dict()})
    _say(f"unlearned {args.model} with {args.method} on {args.forget} in {log.wall_time:.1f}s ({len(log.steps)} steps)")
    _say(f"θ_u: {out}  (training log: {out / 'train_log.json'})")
    return 0


def cmd_reliability(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.reliability import ReliabilityConfig, run_reliability
    from unlearnkit.config import load_config

    cfg = load_config(ReliabilityConfig, args.config, args.overrides)
    out, _, table, names = run_reliability(cfg, say=_say)
    _say("")
    _say(table)
    _say(f"\npool: {len(names)} models. reliability: {out}  (values.json, pcc.json, table.md, scatter_*.png)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.sweep import SweepConfig, run_sweep
    from unlearnkit.config import load_config

    cfg = load_config(SweepConfig, args.config, args.overrides)
    out, best, every = run_sweep(cfg, say=_say)
    _say(f"\nBest variant per knob, after calibration ({cfg.calibration.metric} ≥ {cfg.calibration.tau:g} · θ_o):")
    _say(best)
    _say("\nAll variants:")
    _say(every)
    _say(f"\nsweep: {out}  (sweep_table.md, sweep.json, calibration/)")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from unlearnkit.methods import methods_for
    from unlearnkit.results.tables import format_table

    if args.what == "methods":
        for domain, title in (("llm", "language-model methods"), ("vision", "image-classifier methods")):
            specs = methods_for(domain)
            if not specs:
                continue
            _say(f"{title}:")
            rows = []
            for s in specs:
                needs = ", ".join(s.needs) if s.needs else "-"
                rows.append([s.name, s.summary, needs])
            _say(format_table(["name", "what it does", "needs"], rows))
            _say("")
        own = ", ".join(f"{s.name}+{k}" for s in methods_for("llm") for k in s.fn.extra_retain)
        _say("Language-model methods combine with a retain term by name: <method>+<none|nll|kl>, e.g. npo+kl"
             + (f"; method-specific retain terms: {own}." if own else "."))
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="unlearnkit", description="Run machine-unlearning methods and evaluate them reliably.")
    p.add_argument("--version", action="version", version=f"unlearnkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="build the embedded fictitious-facts benchmark")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    db = dsub.add_parser("build", help="generate the embedded benchmark (TOFU layout) under $UNLEARNKIT_HOME")
    _add_config_args(db)
    db.add_argument("--out", metavar="DIR", help="write the files to DIR instead of the cache")
    db.add_argument("--force", action="store_true", help="regenerate even if cached")
    db.add_argument("-v", "--verbose", action="store_true", help="print the split sizes")
    db.set_defaults(func=cmd_data_build)
    data.set_defaults(func=lambda a: _need_action(data))

    models = sub.add_parser("models", help="build the embedded base / original / reference models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    mb = msub.add_parser("build", help="build (or reuse) data, tokenizer, base, original θ_o and reference θ_r")
    _add_config_args(mb)
    mb.add_argument("--force", action="store_true", help="rebuild even if cached")
    mb.set_defaults(func=cmd_models_build)
    models.set_defaults(func=lambda a: _need_action(models))

    ev = sub.add_parser("eval", help="evaluate a model on the fictitious-facts benchmark (SPEC §2.2 metrics)")
    ev.add_argument("--model", required=True, metavar="PATH", help="model directory or hub name (with its tokenizer)")
    ev.add_argument("--benchmark", choices=["embedded", "tofu"], default="embedded",
                    help="embedded: the built-in fictitious-facts set; tofu: TOFU data (--data or the hub)")
    ev.add_argument("--data", metavar="PATH", help="TOFU-format data directory (default: embedded build, or locuslab/TOFU)")
    ev.add_argument("--forget", default="forget10", help="forget01 | forget05 | forget10 (default forget10)")
    ev.add_argument("--reference", metavar="PATH", help="retrained reference θ_r for FQ and PrivLeak "
                    "(embedded default: the built θ_r)")
    ev.add_argument("--no-reference", action="store_true", help="skip FQ and PrivLeak explicitly")
    ev.add_argument("--out", metavar="DIR", help="output directory (default: $UNLEARNKIT_HOME/runs/eval-<time>)")
    ev.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                    help="auto: bfloat16 on a GPU that supports it, else float32")
    _add_config_args(ev)
    ev.set_defaults(func=cmd_eval)

    rn = sub.add_parser(
        "run", help="the main job: run the unlearning benchmark end to end (resumable); `run vision` for images",
        description="Run the language-model benchmark: build or reuse the models, run every method, evaluate "
                    "Original, Retrain and each θ_u, and print the comparison table. Rerunning the same command "
                    "resumes it. `unlearnkit run vision --help` for the image-classifier benchmark.")
    _add_config_args(rn)
    rn.set_defaults(func=cmd_run)

    ul = sub.add_parser("unlearn", help="unlearn a forget split from a model with one method; saves θ_u")
    ul.add_argument("--method", required=True, help="method name (see `unlearnkit ls methods`), e.g. npo or npo+kl")
    ul.add_argument("--model", required=True, metavar="PATH", help="θ_o: model directory or hub name")
    ul.add_argument("--forget", default="forget10", help="forget01 | forget05 | forget10")
    ul.add_argument("--benchmark", choices=["embedded", "tofu"], default="embedded")
    ul.add_argument("--data", metavar="PATH", help="TOFU-format data directory (default: the embedded set)")
    ul.add_argument("--out", metavar="DIR", help="where to save θ_u (default under $UNLEARNKIT_HOME/runs)")
    ul.add_argument("overrides", nargs="*", metavar="key=value", help="hyperparameters, e.g. lr=2e-4 epochs=5 beta=0.1")
    ul.set_defaults(func=cmd_unlearn)

    ca = sub.add_parser("calibrate", help="calibrate a finished run by model mixing θ(α) = (1−α)θ_o + αθ_u",
                        description="For every method of a finished run, find the largest α whose retain metric "
                                    "keeps τ · metric(θ_o), evaluate θ(α), and print the calibrated table beside "
                                    "the uncalibrated one. Overrides: tau=0.9 metric=retain.es_exact tol=1e-3.")
    ca.add_argument("--run", required=True, metavar="DIR", help="run directory printed by `unlearnkit run`")
    _add_config_args(ca)
    ca.set_defaults(func=cmd_calibrate)

    rl = sub.add_parser("reliability", help="metric reliability: Pearson correlation before/after red-team interventions",
                        description="Build a pool of models (methods × strengths × checkpoints), apply each "
                                    "intervention (relearn, jailbreak, paraphrase, noise, quant8, quant4), and report "
                                    "per metric the Pearson correlation of its values before and after, on forget "
                                    "and retain data.")
    _add_config_args(rl)
    rl.set_defaults(func=cmd_reliability)

    sw = sub.add_parser("sweep", help="hyperparameter study (LR, BS, early stopping, temperature, loss selection), "
                        "compared after calibration",
                        description="Vary each knob of one method over a grid (others at the base setting), run every "
                                    "variant, calibrate all of them by model mixing, and report the best variant per "
                                    "knob. Overrides: method=kl grids.lr=[1e-4,4e-4] calibration.tau=0.9.")
    _add_config_args(sw)
    sw.set_defaults(func=cmd_sweep)

    ls = sub.add_parser("ls", help="list registered things")
    ls.add_argument("what", choices=["methods"])
    ls.set_defaults(func=cmd_ls)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _need_action(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


# Other modules add subcommands here: each entry is ``register(subparsers)``.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def _register_analysis(sub: argparse._SubParsersAction) -> None:
    from unlearnkit.analysis.commands import register

    register(sub)


_EXTRA_COMMANDS.append(_register_analysis)  # gradient, squeeze, layers


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["run", "vision"]:
        return _guarded(lambda: _run_vision(argv[2:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _guarded(lambda: args.func(args))


def _run_vision(argv: list[str]) -> int:
    from unlearnkit.vision_run import main as vision_main

    return vision_main(argv)


def _guarded(fn: Callable[[], int | None]) -> int:
    _quiet()
    try:
        return int(fn() or 0)
    except UnlearnkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
