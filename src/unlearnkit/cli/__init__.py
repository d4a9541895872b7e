"""The ``unlearnkit`` command: parses the command line and dispatches to a recipe. Every
subcommand has ``--help``; ``key=value`` overrides may appear anywhere after the subcommand.

User errors (:class:`UnlearnkitError`) print one line, ``error: ...``, and exit with status 2.

The modules: :mod:`.parsers` (:func:`build_parser`; the analyses' and run readers' parsers in
:mod:`.parsers_analyses`, the shared pieces in :mod:`.parsing`), :mod:`.choices` (option choices and help
texts drawn from the registries), :mod:`.commands` (one handler per command: arguments → one recipe call →
printed result), :mod:`.catalogue` (``ls``), :mod:`.common` (printing, overrides, flags → configs).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import warnings
from collections.abc import Callable

from unlearnkit.cli.common import build_config
from unlearnkit.cli.parsers import build_parser
from unlearnkit.errors import UnlearnkitError

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


__all__ = ["NOISY_WARNINGS", "build_config", "build_parser", "main", "parse"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
