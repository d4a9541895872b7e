"""The argument parser of ``unlearnkit``: one subparser per command, each bound to its handler
(:mod:`unlearnkit.cli.commands`). The choices and help texts that name registered things come from
:mod:`unlearnkit.cli.choices`.

A subcommand's options are added when the command is first used (parsed, or its ``--help`` printed):
``unlearnkit --help`` and ``--version`` need only the command names, and stay instant although the
registries behind some options import torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from unlearnkit import __version__
from unlearnkit.cli import choices
from unlearnkit.cli.catalogue import LISTINGS
from unlearnkit.cli.commands import (
    cmd_attack,
    cmd_calibrate,
    cmd_data_build,
    cmd_eval,
    cmd_ls,
    cmd_models_build,
    cmd_reliability,
    cmd_run,
    cmd_run_vision,
    cmd_sweep,
    cmd_unlearn,
)
from unlearnkit.cli.parsers_analyses import add_analyses, add_judge, add_report, add_runs
from unlearnkit.cli.parsing import Parser, add_config_args, add_dtype_arg, command, need_action, subcommands


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="unlearnkit", description="Run machine-unlearning methods and evaluate them reliably.")
    p.add_argument("--version", action="version", version=f"unlearnkit {__version__}")
    p.add_argument("--allow-pickle", action="store_true", help="also load pickled model weights (pytorch_model.bin); "
                   "off by default because unpickling can run code — use only for files you trust")
    sub = subcommands(p, dest="command", metavar="COMMAND")
    _add_build(sub)
    command(sub, "eval", _fill_eval, help="evaluate a model on a task (TOFU by default; every metric the task "
            "declares)", description="Evaluate one model on a task and compare it with the reference θ_r. Task "
            "options as overrides: task_options.KEY=VALUE; metric conventions: metrics.convention=…")
    _add_run(sub)
    _add_comparison(sub)
    add_analyses(sub)
    add_runs(sub)
    add_report(sub)
    add_judge(sub)
    command(sub, "ls", _fill_ls, help="list registered things: methods, tasks")
    return p


def _fill_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=list(LISTINGS))
    p.set_defaults(func=cmd_ls)


def _add_build(sub) -> None:
    data = sub.add_parser("data", help="build the embedded fictitious-facts benchmark")
    dsub = subcommands(data, dest="data_command", metavar="ACTION")
    command(dsub, "build", _fill_data_build,
            help="generate the embedded benchmark (TOFU layout) under $UNLEARNKIT_HOME")
    data.set_defaults(func=lambda a: need_action(data))

    models = sub.add_parser("models", help="build the embedded base / original / reference models")
    msub = subcommands(models, dest="models_command", metavar="ACTION")
    command(msub, "build", _fill_models_build,
            help="build (or reuse) data, tokenizer, base, original θ_o and reference θ_r",
            description="Build (or reuse) data, tokenizer, base, θ_o and θ_r. --config takes a build config or a run "
            "preset (its build: section, θ_r for its forget split): `unlearnkit models build --config "
            "configs/smollm2.yaml` builds SmolLM2's θ_o and θ_r as that run uses them.")
    models.set_defaults(func=lambda a: need_action(models))


def _fill_data_build(db: argparse.ArgumentParser) -> None:
    add_config_args(db)
    db.add_argument("--out", metavar="DIR", help="write the files to DIR instead of the cache")
    db.add_argument("--force", action="store_true", help="regenerate even if cached")
    db.add_argument("-v", "--verbose", action="store_true", help="print the split sizes")
    db.set_defaults(func=cmd_data_build)


def _fill_models_build(mb: argparse.ArgumentParser) -> None:
    add_config_args(mb)
    mb.add_argument("--force", action="store_true", help="rebuild even if cached")
    mb.set_defaults(func=cmd_models_build)


def _fill_eval(ev: argparse.ArgumentParser) -> None:
    published = "|".join(choices.benchmarks()[1:])
    ev.add_argument("--model", required=True, metavar="PATH", help="model directory or hub name org/name (with its "
                    "tokenizer)")
    ev.add_argument("--task", default=choices.default_task(), help=f"the task (`unlearnkit ls tasks`): "
                    f"{choices.task_names()} (default {choices.default_task()})")
    ev.add_argument("--benchmark", choices=choices.benchmarks(), default="embedded",
                    help=f"embedded: the task's offline twin; {published}: the task's published data (--data or the "
                    "hub)")
    ev.add_argument("--data", metavar="PATH", help="the published data: a local directory in its layout (default: the "
                    "embedded build, or the task's hub name)")
    ev.add_argument("--forget", default=None, help=f"forget split ({choices.forget_help()})")
    ev.add_argument("--reference", metavar="PATH", help="retrained reference θ_r for FQ and PrivLeak "
                    "(embedded default: the built θ_r)")
    ev.add_argument("--no-reference", action="store_true", help="skip FQ and PrivLeak explicitly")
    ev.add_argument("--out", metavar="DIR", help="output directory (default: a new run under $UNLEARNKIT_HOME/runs)")
    ev.add_argument("--force", action="store_true", help="recompute even if --out holds this evaluation (the old "
                    "output is moved aside)")
    add_dtype_arg(ev, "")
    ev.add_argument("--judge", metavar="BACKEND", nargs="?", const="",
                    help="also judge the forget answers: Naturalness/Similarity with BACKEND (local:MODEL or "
                         "openai:MODEL) and the offline proxies; --judge alone: proxies only")
    ev.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint of an openai: judge")
    add_config_args(ev)
    ev.set_defaults(func=cmd_eval)


def _add_run(sub) -> None:
    rn = sub.add_parser(
        "run", help="the main job: run the unlearning benchmark end to end (resumable); `run vision` for images",
        description="`unlearnkit run [lm]` runs the language-model benchmark (the default); `unlearnkit run vision` "
                    "the image-classifier benchmark. Rerunning the same command resumes it.")
    rsub = subcommands(rn, dest="run_target", metavar="TARGET")
    command(rsub, "lm", _fill_run_lm, help="the language-model benchmark (what `unlearnkit run` does)")
    command(rsub, "vision", _fill_run_vision, help="the image-classifier label-domain benchmark",
            description="Image-classifier unlearning in the four label-domain scenarios (all matched, target / model "
                        "/ data mismatch): trains θ_o and θ_r (cached), runs each method, prints UA/RA/TA/MIA/Gap/TIME "
                        "per scenario. Default: the embedded synthetic set on the CPU with Retrain, FT, GA, RL.",
            epilog="examples:\n  unlearnkit run vision\n  unlearnkit run vision --methods all\n"
                   "  unlearnkit run vision --dataset cifar10 --data-dir ~/data --model resnet18 --methods all\n"
                   "  unlearnkit run vision method_params.ft.epochs=3 scenario.superclass=beta",
            formatter_class=argparse.RawDescriptionHelpFormatter)
    rn.set_defaults(func=lambda a: need_action(rn))


def _fill_run_lm(lm: argparse.ArgumentParser) -> None:
    lm.description = ("Build or reuse the models, run every method, evaluate Original, Retrain and each θ_u, and print "
                      "the comparison table. Rerunning the same command resumes it; entries whose inputs changed are "
                      f"recomputed. task={choices.task_list()} picks the evaluation task (`unlearnkit ls tasks`, "
                      "presets configs/muse.yaml, configs/wmdp.yaml); eval_every.* evaluates during training; "
                      "metrics.convention=openunlearning reproduces OpenUnlearning's definitions.")
    add_config_args(lm)
    lm.add_argument("--retry-failed", action="store_true", help="rerun entries that failed earlier (e.g. NaN loss)")
    lm.set_defaults(func=cmd_run)


def _fill_run_vision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=choices.vision_choices("data.dataset"), help="image set (default synthetic)")
    p.add_argument("--data-dir", metavar="PATH", help="local CIFAR (python pickles) or Fashion-MNIST (IDX) directory")
    p.add_argument("--no-download", action="store_true", help="never download CIFAR; require --data-dir")
    p.add_argument("--model", choices=choices.vision_choices("model.arch"), help="classifier architecture")
    p.add_argument("--methods", metavar="LIST", help="comma-separated method names or 'all' (default "
                   f"{choices.vision_default('methods')})")
    p.add_argument("--scenarios", metavar="LIST", help="comma-separated scenarios or 'all' "
                   f"({', '.join(choices.vision_choices('scenarios'))})")
    p.add_argument("--seeds", metavar="LIST", help=f"comma-separated seeds (default {choices.vision_default('seeds')})")
    p.add_argument("--fresh", action="store_true", help="recompute entries even if finished (models stay cached)")
    p.add_argument("--list-methods", action="store_true", help="list the registered vision methods and exit")
    add_config_args(p)
    p.set_defaults(func=cmd_run_vision)


def _add_comparison(sub) -> None:
    command(sub, "unlearn", _fill_unlearn, help="unlearn a forget split from a model with one method; saves θ_u")
    command(sub, "calibrate", _fill_config(cmd_calibrate, run=True),
            help="calibrate a finished run by model mixing θ(α) = (1−α)θ_o + αθ_u",
            description="For every method of a finished run, find the largest α whose retain metric keeps "
                        "τ · metric(θ_o), evaluate θ(α), and print the calibrated table beside the uncalibrated one. "
                        "Overrides: tau=0.9 metric=retain.es_exact tol=1e-3.")
    command(sub, "attack", _fill_attack,
            help="attack every θ_u of a finished run (relearning, quantization, prompts): how much forgetting survives",
            description="Original, Retrain and every saved θ_u of a finished run, unattacked and under each attack "
                        "(`unlearnkit ls attacks`), measured on the half of the forget set the attacker did not "
                        "train on; prints the recovery (m_attacked − m_u) / (m_o − m_u) per attack and the worst "
                        "case. Overrides: attacks=[relearn,quant4] attack_params.relearn.steps=20 "
                        "metrics=[es,prob,truth_ratio,rouge] recovery_metric=prob seed=1.")
    command(sub, "reliability", _fill_config(cmd_reliability),
            help="metric reliability: Pearson correlation before/after red-team interventions",
            description="Build a pool of models (methods × strengths × checkpoints), apply each intervention "
                        "(attacks of `unlearnkit ls attacks`; default relearn, jailbreak, paraphrase, noise, quant8, "
                        "quant4), and report per metric the Pearson "
                        "correlation of its values before and after, on forget and retain data.")
    command(sub, "sweep", _fill_config(cmd_sweep),
            help="hyperparameter study (LR, BS, early stopping, temperature, loss selection), compared after "
                 "calibration",
            description="Vary each knob of one method over a grid (others at the base setting), run every variant, "
                        "calibrate all of them by model mixing, and report the best variant per knob. Overrides: "
                        "method=kl grids.lr=[1e-4,4e-4] calibration.tau=0.9.")


def _fill_config(handler: Callable, run: bool = False) -> Callable[[argparse.ArgumentParser], None]:
    """Options of a command configured by ``--config`` and overrides (``--run RUN`` first for ``calibrate``)."""
    def fill(p: argparse.ArgumentParser) -> None:
        if run:
            p.add_argument("--run", required=True, metavar="RUN", help="run name (or unique prefix) or the run "
                           "directory printed by `unlearnkit run`")
        add_config_args(p)
        p.set_defaults(func=handler)

    return fill


def _fill_attack(p: argparse.ArgumentParser) -> None:
    _fill_config(cmd_attack, run=True)(p)
    p.add_argument("--attacks", metavar="A,B", help="attacks to run (default: relearn, relearn_benign, quant8, quant4, "
                   "jailbreak, paraphrase); same as attacks=[A,B]")


def _fill_unlearn(ul: argparse.ArgumentParser) -> None:
    ul.add_argument("--method", required=True, help="method name (see `unlearnkit ls methods`), e.g. npo or npo+kl")
    ul.add_argument("--model", required=True, metavar="PATH", help="θ_o: model directory or hub name")
    ul.add_argument("--task", choices=[t.name for t in choices.tasks()], default=choices.default_task(),
                    help=f"whose forget and retain data to train on: {choices.task_names()} "
                         f"(default {choices.default_task()})")
    ul.add_argument("--forget", default=None, help=f"forget split ({choices.forget_help()})")
    ul.add_argument("--benchmark", choices=choices.benchmarks(), default="embedded",
                    help="embedded (the task's offline twin data) or the task's published data")
    ul.add_argument("--data", metavar="PATH", help="the task's data directory (default: the embedded set, or the "
                                                     "published data's hub name with --benchmark)")
    ul.add_argument("--out", metavar="DIR", help="where to save θ_u (default: a new directory under $UNLEARNKIT_HOME/runs)")
    ul.add_argument("--force", action="store_true", help="replace an existing θ_u in --out (moved aside first)")
    ul.add_argument("overrides", nargs="*", metavar="key=value",
                    help="hyperparameters, e.g. lr=2e-4 epochs=5 beta=0.1; task_options.KEY=VALUE for the task "
                         "(e.g. task_options.chunk_tokens=128 for muse)")
    ul.set_defaults(func=cmd_unlearn)
