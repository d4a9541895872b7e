"""The pieces every parser of :mod:`unlearnkit.cli.parsers` is made of: the parser class (usage errors as one
line), subcommands whose options are added on first use, and the option groups several commands share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from unlearnkit.cli import choices


class Parser(argparse.ArgumentParser):
    """Usage errors in the same one-line form as every other error (exit status 2)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


class Commands(dict):
    """Subcommand name → its parser, whose options are added by ``fill[name]`` on the first lookup (argparse
    looks a subcommand up when it parses it, or prints its ``--help``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fill: dict[str, Callable[[], None]] = {}

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        if name in self.fill:
            self.fill.pop(name)()
        return super().__getitem__(name)


def subcommands(p: argparse.ArgumentParser, **kw) -> argparse._SubParsersAction:
    """``p.add_subparsers(**kw)`` whose subcommands may be filled on first use (:func:`command`)."""
    sub = p.add_subparsers(**kw)
    sub.choices = sub._name_parser_map = Commands()
    return sub


def command(sub: argparse._SubParsersAction, name: str, fill: Callable[[argparse.ArgumentParser], None],
            **kw) -> argparse.ArgumentParser:
    """Subcommand ``name`` (``kw``: its help, description …); ``fill(parser)`` adds its options when it is used."""
    parser = sub.add_parser(name, **kw)
    sub.choices.fill[name] = lambda: fill(parser)
    return parser


def need_action(p: argparse.ArgumentParser) -> int:
    """A command that takes a subcommand, given none: name the choices (exit status 2)."""
    names = next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})
    print(f"error: {p.prog}: choose one of {', '.join(names)} (see `{p.prog} --help`)", file=sys.stderr)
    return 2


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file (presets in configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. finetune.epochs=30")


def add_bench_args(p: argparse.ArgumentParser, reference: bool = False) -> None:
    """Where θ_o and the TOFU-format data come from (``gradient``, ``squeeze``, ``layers``)."""
    tofu = choices.tofu()
    p.add_argument("--model", metavar="PATH", help="θ_o: model directory or hub name (default: the embedded θ_o)")
    p.add_argument("--benchmark", choices=["embedded", tofu.published], default="embedded")
    p.add_argument("--data", metavar="PATH", help=f"TOFU-format data directory (default: the embedded set, or {tofu.hub})")
    p.add_argument("--forget", default=tofu.default_forget, help=f"{choices.tofu_splits()} (default "
                   f"{tofu.default_forget})")
    if reference:
        p.add_argument("--reference", metavar="PATH", help="θ_r retrained without the forget split, for FQ "
                       "(default: the embedded θ_r)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: a new run under $UNLEARNKIT_HOME/runs)")


def add_dtype_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--dtype``: the one evaluation precision (config.EvalDtype), for every command that evaluates models."""
    from typing import get_args

    from unlearnkit.config import EvalDtype

    p.add_argument("--dtype", choices=list(get_args(EvalDtype)), default="auto",
                   help=what + "auto: float64 for float64 models (the embedded ones), else bfloat16 on a GPU that supports it, "
                   "else float32")
