"""The ``unlearnkit`` command: parses the command line and dispatches to a recipe. Every
subcommand has ``--help``; ``key=value`` overrides may appear anywhere after the subcommand.

User errors (:class:`UnlearnkitError`) print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Callable

from unlearnkit import __version__
from unlearnkit.errors import UnlearnkitError

Handler = Callable[[argparse.Namespace], int]

# Warnings that libraries emit on every run and that say nothing to a user of unlearnkit.
NOISY_WARNINGS = (
    r".*TypedStorage is deprecated.*",
    r".*`torch_dtype` is deprecated.*",
    r".*generation flags are not valid.*",
    r".*The attention mask and the pad token id were not set.*",
    r".*Setting `pad_token_id` to `eos_token_id`.*",
    r".*does not have many workers which may be a bottleneck.*",
    r".*upper bound on the number of threads.*",
    r".*`resume_download` is deprecated.*",
    r".*copying from a non-meta parameter in the checkpoint to a meta parameter.*",
)


def _quiet() -> None:
    for pattern in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _say(msg: str) -> None:
    """Print for the user: under a launcher (torchrun, accelerate launch) the main process speaks for all."""
    from unlearnkit.io import launcher_rank

    if launcher_rank() == 0:
        print(msg, flush=True)


def _split(values: list[str] | str | None) -> list[str]:
    out: list[str] = []
    for v in [values] if isinstance(values, str) else (values or []):
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def _overrides(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "overrides", None) or [])


def _config_file(args: argparse.Namespace) -> str | None:
    if args.config is not None and not str(args.config).strip():
        raise UnlearnkitError("--config was given an empty path: name a YAML file (presets in configs/) or drop --config")
    return args.config


# ---------------------------------------------------------------------------------------------
# Handlers: each turns arguments into a recipe call and prints what it returns


def build_config(args: argparse.Namespace):
    """The BuildConfig of ``data build`` / ``models build``: ``--config`` is a build config, or a run preset
    (``configs/smollm2.yaml``) whose ``build:`` section is used — with θ_r for the preset's forget split — so
    ``unlearnkit models build --config configs/smollm2.yaml`` builds exactly the models that run uses;
    ``key=value`` overrides apply to the build config either way."""
    from unlearnkit.config import BuildConfig, deep_merge, load_yaml, parse_overrides, validate
    from unlearnkit.data.tofu import FORGET_SPLITS

    path = _config_file(args)
    data = load_yaml(path) if path is not None else {}
    forget = None
    if isinstance(data, dict) and isinstance(data.get("build"), dict):
        forget = data.get("forget", "forget10")
        data = data["build"]
    cfg = validate(BuildConfig, deep_merge(data, parse_overrides(_overrides(args))))
    return cfg.with_forget(forget) if forget in FORGET_SPLITS else cfg


def cmd_data_build(args: argparse.Namespace) -> int:
    from unlearnkit.io import read_json
    from unlearnkit.recipes.build import build_data

    out = build_data(build_config(args), args.out, args.force)
    _say(f"embedded fictitious-facts data: {out}")
    if args.verbose:
        for k, v in read_json(out / "meta.json")["sizes"].items():
            _say(f"  {k:<24} {v:>5} records")
    return 0


def cmd_models_build(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.build import build_model_set
    from unlearnkit.results.tables import models_report

    ms = build_model_set(build_config(args), force=args.force, say=_say)
    _say("")
    _say(models_report(ms))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config, parse_overrides
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.recipes.evaluate import evaluate_paths
    from unlearnkit.results.tables import eval_table
    from unlearnkit.tasks import get_task

    task = get_task(args.task)
    if args.judge is not None and task.name != "tofu":
        raise UnlearnkitError("--judge judges answers to TOFU-format questions: use it with --task tofu")
    overrides = [o for o in _overrides(args) if not o.startswith("task_options.")]
    options = parse_overrides([o for o in _overrides(args) if o.startswith("task_options.")]).get("task_options", {})
    cfg = load_config(EvalConfig, _config_file(args), [*overrides, f"forget={args.forget or task.default_forget}"])
    res, run = evaluate_paths(model=args.model, benchmark=args.benchmark, data=args.data, reference=args.reference,
                              no_reference=args.no_reference, cfg=cfg, out=args.out, dtype=args.dtype,
                              force=args.force, say=_say, task=task.name, task_options=options)
    _say("")
    _say(eval_table(res))
    if args.judge is not None:
        from unlearnkit.data.tofu import QASource
        from unlearnkit.recipes.judge import judge_eval

        means = judge_eval(run, args.judge or None, args.base_url, QASource(run.config()["data"]), cfg.forget)
        _say("judge (forget answers vs ground truth): " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()
                                                                     if v is not None))
    _say(f"\nresults: {run.layout.result_file('model')}  (per-sample values: {run.layout.per_sample('model')})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    cfg = load_config(RunConfig, _config_file(args), _overrides(args))
    out = run_benchmark(cfg, say=_say, retry_failed=args.retry_failed)
    _say("")
    _say(out.table)
    if cfg.calibrate:
        from unlearnkit.recipes.calibrate import calibrate_run

        _say_calibrated(cfg.calibration, calibrate_run(out.run, cfg.calibration, say=_say))
    _say(f"\nresults: {out.run.layout.root}  (table.md, results/<entry>/results.json, logs/, models/; "
         f"`unlearnkit runs show {out.run.name}`)")
    if cfg.report:
        _say_report(out.run)
    return 1 if out.failures else 0


def cmd_run_vision(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.vision import resolve_config, run_vision

    if args.list_methods:
        from unlearnkit.methods import methods_for
        from unlearnkit.results.tables import format_table

        _say(format_table(["method", "summary", "paper"], [[s.name, s.summary, s.paper] for s in methods_for("vision")]))
        return 0
    cfg = resolve_config(_config_file(args), _overrides(args), _vision_flags(args))
    run = run_vision(cfg, say=_say, fresh=args.fresh)
    if cfg.report:
        _say_report(run)
    return 0


def _say_report(run) -> None:
    from unlearnkit.recipes.report import report_run

    rep = report_run(run)
    _say(f"report: {rep.path}  ({rep.size / 1024:.0f} KB, built in {rep.seconds:.1f}s; opens offline in any browser)")


def cmd_report(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.report import report

    rep = report(args.runs, args.output)
    _say(f"report of {', '.join(rep.runs)}: {rep.path}  ({rep.size / 1024:.0f} KB, built in {rep.seconds:.1f}s)")
    return 0


def _vision_flags(args: argparse.Namespace) -> dict:
    flags: dict = {}
    data = {k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir)) if v}
    if args.no_download:
        data["download"] = False
    if data:
        flags["data"] = data
    if args.model:
        flags["model"] = {"arch": args.model}
    if args.methods:
        flags["methods"] = _split(args.methods)
    if args.scenarios:
        from unlearnkit.data.scenarios import SCENARIOS

        sc = _split(args.scenarios)
        flags["scenarios"] = list(SCENARIOS) if sc == ["all"] else sc
    if args.seeds:
        try:
            flags["seeds"] = [int(s) for s in _split(args.seeds)]
        except ValueError:
            raise UnlearnkitError(f"--seeds {args.seeds!r} must be comma-separated integers") from None
    return flags


def cmd_calibrate(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.calibration import CalibrationConfig
    from unlearnkit.config import load_config
    from unlearnkit.recipes.calibrate import calibrate_run
    from unlearnkit.results.store import Run

    cfg = load_config(CalibrationConfig, _config_file(args), _overrides(args))
    cal = calibrate_run(Run.resolve(args.run), cfg, say=_say)
    _say("\nUncalibrated:")
    _say(cal.table_uncalibrated)
    _say_calibrated(cfg, cal)
    return 0


def _say_calibrated(cfg, cal) -> None:
    _say(f"\nCalibrated ({cfg.metric} ≥ {cfg.tau:g} · θ_o, α per method):")
    _say(cal.table)
    _say(f"\ncalibration: {cal.run.layout.root}  (alphas.json, curves.json, curves.png, table.md)")


def cmd_unlearn(args: argparse.Namespace) -> int:
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.unlearn import unlearn_model

    u = unlearn_model(args.method, args.model, args.forget, args.benchmark, args.data, args.out,
                      parse_overrides(_overrides(args)), args.force, say=_say)
    if not u.reused:
        _say(f"unlearned {args.model} with {args.method} on {args.forget} in {u.seconds:.1f}s ({u.steps} steps)")
    _say(f"θ_u: {u.out}  (training log: {u.out / 'train_log.json'})")
    return 0


def cmd_reliability(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.reliability import ReliabilityConfig
    from unlearnkit.config import load_config
    from unlearnkit.recipes.reliability import run_reliability

    run, _, table, names = run_reliability(load_config(ReliabilityConfig, _config_file(args), _overrides(args)),
                                           say=_say)
    _say("")
    _say(table)
    _say(f"\npool: {len(names)} models. reliability: {run.layout.root}  (values.json, pcc.json, table.md, scatter_*.png)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from unlearnkit.config import load_config
    from unlearnkit.recipes.sweep import SweepConfig, run_sweep

    cfg = load_config(SweepConfig, _config_file(args), _overrides(args))
    sw = run_sweep(cfg, say=_say)
    _say(f"\nBest variant per knob, after calibration ({cfg.calibration.metric} ≥ {cfg.calibration.tau:g} · θ_o):")
    _say(sw.best)
    _say("\nAll variants:")
    _say(sw.every)
    _say(f"\nsweep: {sw.run.layout.root}  (sweep_table.md, sweep.json, calibration/)")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from unlearnkit.results.tables import format_table

    if args.what == "tasks":
        from unlearnkit.tasks import all_tasks

        _say("tasks (`unlearnkit run task=NAME`, `unlearnkit eval --task NAME`; docs/tasks.md):")
        _say(format_table(["name", "what it evaluates", "forget splits", "published data"],
                          [[t.name, t.summary, ", ".join(t.forget_splits), f"benchmark={t.published} ({t.hub})"]
                           for t in all_tasks()]))
        return 0
    from unlearnkit.methods import methods_for
    from unlearnkit.methods.llm.base import LMObjective

    for domain, title in (("llm", "language-model methods"), ("vision", "image-classifier methods")):
        specs = methods_for(domain)
        _say(f"{title}:")
        _say(format_table(["name", "what it does", "needs"],
                          [[s.name, s.summary, ", ".join(s.needs) or "-"] for s in specs]))
        _say("")
    own = ", ".join(f"{s.name}+{k}" for s in methods_for("llm") if isinstance(s.fn, LMObjective)
                    for k in s.fn.extra_retain)
    _say("Language-model methods combine with a retain term by name: <method>+<none|nll|kl>, e.g. npo+kl"
         + (f"; method-specific retain terms: {own}." if own else "."))
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from unlearnkit.recipes.judge import agreement_report, judge_run

    if args.action == "agreement":
        _say(agreement_report(args.backend or [], args.base_url))
        return 0
    if not args.run:
        raise UnlearnkitError("name the run to judge: unlearnkit judge --run RUN [--backend local:MODEL|openai:MODEL]; "
                              "or `unlearnkit judge agreement`")
    if len(args.backend or []) > 1:
        raise UnlearnkitError("give one --backend to judge a run (several are for `judge agreement`)")
    _say("")
    from unlearnkit.recipes.judge import default_fluency_model

    fluency = None if args.fluency_model == "none" else (args.fluency_model or default_fluency_model())
    _say(judge_run(args.run, (args.backend or [None])[0], args.base_url, not args.no_proxies, fluency, say=_say))
    return 0


# ---------------------------------------------------------------------------------------------
# runs ls / show / compare


def cmd_runs(args: argparse.Namespace) -> int:
    import json

    from unlearnkit.recipes import runs

    if args.runs_command == "reindex":
        _say(f"indexed {runs.reindex_all()} run(s)")
        return 0
    if args.runs_command == "ls":
        data, text = runs.ls()
    elif args.runs_command == "show":
        data, text = runs.show(args.run)
    else:
        data, text = runs.compare(args.runs, _split(args.metrics) or None)
    _say(json.dumps(data, indent=2, default=str) if args.json else text)
    return 0


# ---------------------------------------------------------------------------------------------
# analyses


def _bench_args(args: argparse.Namespace):
    from unlearnkit.recipes.analyses import BenchArgs

    return BenchArgs(args.benchmark, args.data, args.model, getattr(args, "reference", None), args.forget)


def cmd_gradient(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.g_effect import GEffectProbe
    from unlearnkit.analysis.track import gradient_report, gradient_summary, gradient_table
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import positive, run_tracked

    every = positive("--every", args.every)
    if args.n_retain is not None and args.n_retain <= 0:
        raise UnlearnkitError(f"--n-retain must be ≥ 1, got {args.n_retain}")
    run, table, files, failed = run_tracked(
        "gradient", _split(args.method),
        lambda: GEffectProbe(every=every, n_retain=args.n_retain, pointwise=args.pointwise),
        gradient_report, gradient_table, gradient_summary, _bench_args(args), parse_overrides(_overrides(args)),
        args.out, _say, every=every, pointwise=args.pointwise)
    return _said_tracked(table, files, failed)


def cmd_squeeze(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.squeezing import SqueezeProbe
    from unlearnkit.analysis.track import squeeze_report, squeeze_summary, squeeze_table
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import positive, run_tracked

    every = positive("--every", args.every)
    if args.samples <= 0 or args.temperature <= 0 or args.max_new_tokens <= 0:
        raise UnlearnkitError("--samples, --temperature and --max-new-tokens must be positive")
    run, table, files, failed = run_tracked(
        "squeeze", _split(args.method),
        lambda: SqueezeProbe(every=every, n_samples=args.samples, temperature=args.temperature,
                             max_new_tokens=args.max_new_tokens, seed=args.seed),
        lambda res, run, meta: squeeze_report(res, run, meta, judge=args.judge), squeeze_table, squeeze_summary,
        _bench_args(args), parse_overrides(_overrides(args)),
        args.out, _say, every=every, samples=args.samples, temperature=args.temperature)
    return _said_tracked(table, files, failed)


def _said_tracked(table: str, files: list, failed: bool) -> int:
    _say("")
    _say(table)
    _say("\nfiles: " + ", ".join(str(f) for f in files))
    return 1 if failed else 0


def cmd_layers(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.layers import cru_table, layers_table
    from unlearnkit.config import parse_overrides
    from unlearnkit.recipes.analyses import LayersOptions, run_layers

    try:
        layers = [int(x) for x in args.layers.split(",") if x.strip()] if args.layers else None
    except ValueError:
        raise UnlearnkitError(f"--layers takes comma-separated layer indices (e.g. 0,2), got {args.layers!r}") from None
    opt = LayersOptions(bench=_bench_args(args), unlearned=args.unlearned, method=args.method,
                        overrides=parse_overrides(_overrides(args)), layers=layers, cru=args.cru, k=args.k,
                        max_new_tokens=args.max_new_tokens, out=args.out, dtype=args.dtype)
    run, doc, files = run_layers(opt, _say)
    _say("")
    _say(layers_table(doc))
    if "cru" in doc:
        _say("")
        _say(cru_table(doc["cru"]))
    _say("\nfiles: " + ", ".join(str(f) for f in files))
    return 0


# ---------------------------------------------------------------------------------------------
# The parser


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (presets in configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. finetune.epochs=30")


def _add_bench_args(p: argparse.ArgumentParser, reference: bool = False) -> None:
    p.add_argument("--model", metavar="PATH", help="θ_o: model directory or hub name (default: the embedded θ_o)")
    p.add_argument("--benchmark", choices=["embedded", "tofu"], default="embedded")
    p.add_argument("--data", metavar="PATH", help="TOFU-format data directory (default: the embedded set, or locuslab/TOFU)")
    p.add_argument("--forget", default="forget10", help="forget01 | forget05 | forget10 (default forget10)")
    if reference:
        p.add_argument("--reference", metavar="PATH", help="θ_r retrained without the forget split, for FQ "
                       "(default: the embedded θ_r)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: a new run under $UNLEARNKIT_HOME/runs)")


def _add_build(sub) -> None:
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
    mb = msub.add_parser("build", help="build (or reuse) data, tokenizer, base, original θ_o and reference θ_r",
                         description="Build (or reuse) data, tokenizer, base, θ_o and θ_r. --config takes a build "
                         "config or a run preset (its build: section, θ_r for its forget split): `unlearnkit models "
                         "build --config configs/smollm2.yaml` builds SmolLM2's θ_o and θ_r as that run uses them.")
    _add_config_args(mb)
    mb.add_argument("--force", action="store_true", help="rebuild even if cached")
    mb.set_defaults(func=cmd_models_build)
    models.set_defaults(func=lambda a: _need_action(models))


def _add_eval(sub) -> None:
    ev = sub.add_parser("eval", help="evaluate a model on a task (TOFU by default; every metric the task declares)",
                        description="Evaluate one model on a task and compare it with the reference θ_r. Task options "
                                    "as overrides: task_options.KEY=VALUE; metric conventions: metrics.convention=…")
    ev.add_argument("--model", required=True, metavar="PATH", help="model directory or hub name org/name (with its "
                    "tokenizer)")
    ev.add_argument("--task", default="tofu", help="the task (`unlearnkit ls tasks`): tofu, muse, wmdp (default tofu)")
    ev.add_argument("--benchmark", choices=["embedded", "tofu", "muse", "wmdp"], default="embedded",
                    help="embedded: the task's offline twin; tofu|muse|wmdp: the task's published data (--data or the "
                    "hub)")
    ev.add_argument("--data", metavar="PATH", help="the published data: a local directory in its layout (default: the "
                    "embedded build, or the task's hub name)")
    ev.add_argument("--forget", default=None, help="forget split (TOFU: forget01 | forget05 | forget10, default "
                    "forget10; MUSE: forget | scal1..4; WMDP: forget)")
    ev.add_argument("--reference", metavar="PATH", help="retrained reference θ_r for FQ and PrivLeak "
                    "(embedded default: the built θ_r)")
    ev.add_argument("--no-reference", action="store_true", help="skip FQ and PrivLeak explicitly")
    ev.add_argument("--out", metavar="DIR", help="output directory (default: a new run under $UNLEARNKIT_HOME/runs)")
    ev.add_argument("--force", action="store_true", help="recompute even if --out holds this evaluation (the old "
                    "output is moved aside)")
    _add_dtype_arg(ev, "")
    ev.add_argument("--judge", metavar="BACKEND", nargs="?", const="",
                    help="also judge the forget answers: Naturalness/Similarity with BACKEND (local:MODEL or "
                         "openai:MODEL) and the offline proxies; --judge alone: proxies only")
    ev.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint of an openai: judge")
    _add_config_args(ev)
    ev.set_defaults(func=cmd_eval)


def _add_run(sub) -> None:
    rn = sub.add_parser(
        "run", help="the main job: run the unlearning benchmark end to end (resumable); `run vision` for images",
        description="`unlearnkit run [lm]` runs the language-model benchmark (the default); `unlearnkit run vision` "
                    "the image-classifier benchmark. Rerunning the same command resumes it.")
    rsub = rn.add_subparsers(dest="run_target", metavar="TARGET")
    lm = rsub.add_parser(
        "lm", help="the language-model benchmark (what `unlearnkit run` does)",
        description="Build or reuse the models, run every method, evaluate Original, Retrain and each θ_u, and print "
                    "the comparison table. Rerunning the same command resumes it; entries whose inputs changed are "
                    "recomputed. task=tofu (default) | muse | wmdp picks the evaluation task (`unlearnkit ls tasks`, "
                    "presets configs/muse.yaml, configs/wmdp.yaml); eval_every.* evaluates during training; "
                    "metrics.convention=openunlearning reproduces OpenUnlearning's definitions.")
    _add_config_args(lm)
    lm.add_argument("--retry-failed", action="store_true", help="rerun entries that failed earlier (e.g. NaN loss)")
    lm.set_defaults(func=cmd_run)
    _add_run_vision(rsub)
    rn.set_defaults(func=lambda a: _need_action(rn))


SCENARIO_NAMES = "all_matched, target_mismatch, model_mismatch, data_mismatch"  # data/scenarios.py, docs/vision.md


def _add_run_vision(rsub) -> None:
    p = rsub.add_parser(
        "vision", help="the image-classifier label-domain benchmark",
        description="Image-classifier unlearning in the four label-domain scenarios (all matched, target / model / "
                    "data mismatch): trains θ_o and θ_r (cached), runs each method, prints UA/RA/TA/MIA/Gap/TIME per "
                    "scenario. Default: the embedded synthetic set on the CPU with Retrain, FT, GA, RL.",
        epilog="examples:\n  unlearnkit run vision\n  unlearnkit run vision --methods all\n"
               "  unlearnkit run vision --dataset cifar10 --data-dir ~/data --model resnet18 --methods all\n"
               "  unlearnkit run vision method_params.ft.epochs=3 scenario.superclass=beta",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["synthetic", "cifar10", "cifar100", "fashion-mnist"],
                   help="image set (default synthetic)")
    p.add_argument("--data-dir", metavar="PATH", help="local CIFAR (python pickles) or Fashion-MNIST (IDX) directory")
    p.add_argument("--no-download", action="store_true", help="never download CIFAR; require --data-dir")
    p.add_argument("--model", choices=["cnn", "cnn_flat", "resnet20", "resnet18", "wrn50"], help="classifier architecture")
    p.add_argument("--methods", metavar="LIST", help="comma-separated method names or 'all' (default retrain,ft,ga,rl)")
    p.add_argument("--scenarios", metavar="LIST", help=f"comma-separated scenarios or 'all' ({SCENARIO_NAMES})")
    p.add_argument("--seeds", metavar="LIST", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--fresh", action="store_true", help="recompute entries even if finished (models stay cached)")
    p.add_argument("--list-methods", action="store_true", help="list the registered vision methods and exit")
    _add_config_args(p)
    p.set_defaults(func=cmd_run_vision)


def _add_comparison(sub) -> None:
    ul = sub.add_parser("unlearn", help="unlearn a forget split from a model with one method; saves θ_u")
    ul.add_argument("--method", required=True, help="method name (see `unlearnkit ls methods`), e.g. npo or npo+kl")
    ul.add_argument("--model", required=True, metavar="PATH", help="θ_o: model directory or hub name")
    ul.add_argument("--forget", default="forget10", help="forget01 | forget05 | forget10")
    ul.add_argument("--benchmark", choices=["embedded", "tofu"], default="embedded")
    ul.add_argument("--data", metavar="PATH", help="TOFU-format data directory (default: the embedded set)")
    ul.add_argument("--out", metavar="DIR", help="where to save θ_u (default: a new directory under $UNLEARNKIT_HOME/runs)")
    ul.add_argument("--force", action="store_true", help="replace an existing θ_u in --out (moved aside first)")
    ul.add_argument("overrides", nargs="*", metavar="key=value", help="hyperparameters, e.g. lr=2e-4 epochs=5 beta=0.1")
    ul.set_defaults(func=cmd_unlearn)

    ca = sub.add_parser("calibrate", help="calibrate a finished run by model mixing θ(α) = (1−α)θ_o + αθ_u",
                        description="For every method of a finished run, find the largest α whose retain metric "
                                    "keeps τ · metric(θ_o), evaluate θ(α), and print the calibrated table beside "
                                    "the uncalibrated one. Overrides: tau=0.9 metric=retain.es_exact tol=1e-3.")
    ca.add_argument("--run", required=True, metavar="RUN", help="run name (or unique prefix) or the run directory "
                    "printed by `unlearnkit run`")
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


def _add_report(sub) -> None:
    rp = sub.add_parser(
        "report", help="a self-contained HTML report of one run, or of several runs side by side",
        description="Write one HTML file that opens offline (figures inline, no network): the run's tables (click a "
                    "header to sort; best per column marked), the trade-off plot (forget ES-exact vs MU, raw and "
                    "calibrated), the run's analysis figures (α-curves, reliability, sweep, G-effect, layers, "
                    "squeezing, continual, vision Gap and TARF identification), links to per-sample files, "
                    "provenance. Several runs: one comparison table and overlaid trade-off plots first.",
        epilog="examples:\n  unlearnkit report lm-forget10-3f2a\n  unlearnkit report RUN_A RUN_B -o compare.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("runs", nargs="+", metavar="RUN", help="run name, unique name prefix, or run directory")
    rp.add_argument("-o", "--output", metavar="FILE", help="where to write the HTML (default: <run dir>/report.html "
                    "for one run; $UNLEARNKIT_HOME/reports/ for several)")
    rp.set_defaults(func=cmd_report)


def _add_judge(sub) -> None:
    j = sub.add_parser(
        "judge", help="Naturalness and Similarity of a run's answers (LLM judge + offline proxies); judge agreement",
        description="`unlearnkit judge --run RUN [--backend B]` adds Naturalness and Similarity (vs the original "
                    "model's answers) of every entry's forget answers to the run, with the judge B (local:MODEL, "
                    "openai:MODEL) and the offline proxies; `unlearnkit judge agreement [--backend B …]` prints each "
                    "judge's and proxy's agreement with the shipped labelled set.")
    j.add_argument("action", nargs="?", choices=["agreement"], help="agreement: compare judges with the labelled set")
    j.add_argument("--run", metavar="RUN", help="run name, unique prefix or directory (a language-model run)")
    j.add_argument("--backend", action="append", metavar="BACKEND", help="local:MODEL (e.g. local:smollm2-135m) or "
                   "openai:MODEL (API key from $OPENAI_API_KEY; repeat for agreement)")
    j.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server …)")
    j.add_argument("--no-proxies", action="store_true", help="judge with the backend only")
    j.add_argument("--fluency-model", metavar="MODEL", help="reference LM of the perplexity fluency proxy (default: "
                   "smollm2-135m when its wheel is installed; `none` to skip)")
    j.set_defaults(func=cmd_judge)


def _add_runs(sub) -> None:
    rs = sub.add_parser("runs", help="the run index: list, show and compare finished runs")
    rsub = rs.add_subparsers(dest="runs_command", metavar="ACTION")
    ls = rsub.add_parser("ls", help="every run, newest first: name, kind, when, entries done/failed")
    sh = rsub.add_parser("show", help="a run's table(s)")
    sh.add_argument("run", help="run name or a unique prefix of it")
    cp = rsub.add_parser("compare", help="an aligned table of the metrics two or more runs share")
    cp.add_argument("runs", nargs="+", metavar="RUN", help="run names or unique prefixes (at least two)")
    cp.add_argument("--metrics", metavar="LIST", help="compare these metrics (comma-separated index names, "
                    "e.g. forget.es_exact,mu) instead of the shared table columns")
    ri = rsub.add_parser("reindex", help="rebuild the index from the run directories under $UNLEARNKIT_HOME/runs")
    for p in (ls, sh, cp):
        p.add_argument("--json", action="store_true", help="machine-readable output")
    for p in (ls, sh, cp, ri):
        p.set_defaults(func=cmd_runs)
    rs.set_defaults(func=lambda a: _need_action(rs))


def _add_analyses(sub) -> None:
    g = sub.add_parser(
        "gradient", help="G-effect curves along unlearning runs (e_u, e_r per parameter group)",
        description="Unlearn θ_o with each method and every s optimiser steps compute the G-effects "
                    "e_u = ⟨∇L_obj(D_f), ∇R(D_f)⟩ and e_r = ⟨∇L_obj(D_f), ∇R(D_r)⟩ (R = mean answer NLL) per parameter "
                    "group (embedding, each transformer layer, head) and in total. Writes g_effect.json/.csv and plots.")
    g.add_argument("--method", action="append", metavar="NAME", help="method (repeat, or comma-separated): ga,npo,npo+kl …")
    g.add_argument("--every", type=int, default=1, metavar="S", help="compute every S optimiser steps (S ≥ 1; default 1)")
    g.add_argument("--pointwise", action="store_true", help="also the point-wise G-effect of every forget sample")
    g.add_argument("--n-retain", type=int, metavar="N", help="retain records for R(D_r) (default: as many as forget records)")
    _add_bench_args(g)
    g.add_argument("overrides", nargs="*", metavar="key=value", help="method hyperparameters, e.g. lr=2e-4 epochs=5")
    g.set_defaults(func=cmd_gradient)

    s = sub.add_parser(
        "squeeze", help="squeezing-effect curves: log-prob of target, paraphrase and θ_o samples by likelihood band",
        description="Unlearn θ_o with each method; every s steps measure the mean log-prob of the forget answers, their "
                    "paraphrases, and answers sampled from θ_o grouped into high/mid/low likelihood bands. Writes "
                    "squeezing.json/.csv and squeezing.png.")
    s.add_argument("--method", action="append", metavar="NAME", help="method (repeat, or comma-separated)")
    s.add_argument("--every", type=int, default=1, metavar="S", help="measure every S optimiser steps (default 1)")
    s.add_argument("--samples", type=int, default=8, metavar="N", help="answers sampled from θ_o per forget question")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1, the full softmax)")
    s.add_argument("--max-new-tokens", type=int, default=64, help="length cap of a sampled answer")
    s.add_argument("--seed", type=int, default=0, help="sampling seed")
    s.add_argument("--judge", metavar="BACKEND", help="Similarity per likelihood band with this judge (local:MODEL "
                   "or openai:MODEL; default: the sentence-embedding proxy)")
    _add_bench_args(s)
    s.add_argument("overrides", nargs="*", metavar="key=value", help="method hyperparameters, e.g. lr=2e-4 epochs=5")
    s.set_defaults(func=cmd_squeeze)
    _add_layers(sub)


def _add_dtype_arg(p, what: str) -> None:
    """``--dtype``: the one evaluation precision (config.EvalDtype), for every command that evaluates models."""
    from typing import get_args

    from unlearnkit.config import EvalDtype

    p.add_argument("--dtype", choices=list(get_args(EvalDtype)), default="auto",
                   help=what + "auto: float64 for float64 models (the embedded ones), else bfloat16 on a GPU that supports it, "
                   "else float32")


def _add_layers(sub) -> None:
    ly = sub.add_parser(
        "layers", help="layer-wise patching sweep (θ_o with one layer from θ_u) and CRU",
        description="For each transformer layer l (and the embedding and head groups), evaluate θ_o with layer l taken "
                    "from θ_u: FQ, MU, forget ES. θ_u is --unlearned PATH, or made here with --method NAME. With --cru, "
                    "also select layers by rank(FQ)+rank(MU) on a validation half of the subjects, choose k there, "
                    "and report θ_o, θ_u and the CRU model on the other half.")
    src = ly.add_mutually_exclusive_group(required=True)
    src.add_argument("--unlearned", metavar="PATH", help="θ_u: an unlearned model directory")
    src.add_argument("--method", metavar="NAME", help="unlearn θ_o with this method first (key=value hyperparameters)")
    ly.add_argument("--layers", metavar="L,L,…", help="only these transformer layers (0-based; default: all)")
    ly.add_argument("--cru", action="store_true", help="also run CRU (validation/test halves of the subjects)")
    ly.add_argument("--k", type=int, metavar="K", help="CRU: keep exactly K groups from θ_u (default: chosen on validation)")
    ly.add_argument("--max-new-tokens", type=int, default=200, help="generation cap for ROUGE-L in MU (default 200)")
    _add_dtype_arg(ly, "precision of every evaluated model (θ_o, θ_u, θ_r and each patched model; θ_u is trained in "
                   "float32 weights — float64 for float64 models — first); ")
    _add_bench_args(ly, reference=True)
    ly.add_argument("overrides", nargs="*", metavar="key=value", help="with --method: hyperparameters, e.g. lr=2e-4")
    ly.set_defaults(func=cmd_layers)


class _Parser(argparse.ArgumentParser):
    """Usage errors in the same one-line form as every other error (exit status 2)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unlearnkit", description="Run machine-unlearning methods and evaluate them reliably.")
    p.add_argument("--version", action="version", version=f"unlearnkit {__version__}")
    p.add_argument("--allow-pickle", action="store_true", help="also load pickled model weights (pytorch_model.bin); "
                   "off by default because unpickling can run code — use only for files you trust")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_build(sub)
    _add_eval(sub)
    _add_run(sub)
    _add_comparison(sub)
    _add_analyses(sub)
    _add_runs(sub)
    _add_report(sub)
    _add_judge(sub)
    ls = sub.add_parser("ls", help="list registered things: methods, tasks")
    ls.add_argument("what", choices=["methods", "tasks"])
    ls.set_defaults(func=cmd_ls)
    return p


def _need_action(p: argparse.ArgumentParser) -> int:
    choices = next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})
    print(f"error: {p.prog}: choose one of {', '.join(choices)} (see `{p.prog} --help`)", file=sys.stderr)
    return 2


def _default_run_target(argv: list[str]) -> list[str]:
    """``unlearnkit run [...]`` means ``unlearnkit run lm [...]`` (the language-model benchmark)."""
    if argv[:1] == ["run"] and (len(argv) == 1 or argv[1] not in ("lm", "vision", "-h", "--help")):
        return ["run", "lm", *argv[1:]]
    return argv


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse; ``key=value`` words left over after the options join the command's overrides."""
    parser = build_parser()
    args, rest = parser.parse_known_args(_default_run_target(argv))
    if rest:
        if hasattr(args, "overrides") and all("=" in r and not r.startswith("-") for r in rest):
            args.overrides = [*(args.overrides or []), *rest]
        else:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(argv)
    except SystemExit as e:  # --help / --version (0) or a usage error (2, already printed)
        if e.code not in (0, None):
            return int(e.code)
        raise
    if args.allow_pickle:
        os.environ["UNLEARNKIT_ALLOW_PICKLE"] = "1"
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    return _guarded(lambda: args.func(args))


def _guarded(fn: Callable[[], int | None]) -> int:
    _quiet()
    try:
        from unlearnkit.io import cleanup_stale_temps

        cleanup_stale_temps()
        return int(fn() or 0)
    except UnlearnkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"error: no space left on device while writing {e.filename or 'a result file'}: free some space "
                  "or set UNLEARNKIT_HOME to a larger disk", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
