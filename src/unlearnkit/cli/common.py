"""What the handlers share: printing for the user, a command's ``--config`` and ``key=value`` overrides,
comma-separated flag values, and the configs that flags map to (``data build`` / ``models build``,
``run vision``)."""

from __future__ import annotations

import argparse

from unlearnkit.errors import UnlearnkitError


def say(msg: str) -> None:
    """Print for the user: under a launcher (torchrun, accelerate launch) the main process speaks for all."""
    from unlearnkit.io import launcher_rank

    if launcher_rank() == 0:
        print(msg, flush=True)


def split_list(values: list[str] | str | None) -> list[str]:
    """``a,b`` and repeated flags (``--method a --method b,c``) → one list of names."""
    out: list[str] = []
    for v in [values] if isinstance(values, str) else (values or []):
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def overrides_of(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "overrides", None) or [])


def config_file(args: argparse.Namespace) -> str | None:
    if args.config is not None and not str(args.config).strip():
        raise UnlearnkitError("--config was given an empty path: name a YAML file (presets in configs/) or drop --config")
    return args.config


def build_config(args: argparse.Namespace):
    """The BuildConfig of ``data build`` / ``models build``: ``--config`` is a build config, or a run preset
    (``configs/smollm2.yaml``) whose ``build:`` section is used — with θ_r for the preset's forget split — so
    ``unlearnkit models build --config configs/smollm2.yaml`` builds exactly the models that run uses;
    ``key=value`` overrides apply to the build config either way."""
    from unlearnkit.config import BuildConfig, deep_merge, load_yaml, parse_overrides, validate
    from unlearnkit.data.tofu import FORGET_SPLITS

    path = config_file(args)
    data = load_yaml(path) if path is not None else {}
    forget = None
    if isinstance(data, dict) and isinstance(data.get("build"), dict):
        forget = data.get("forget", "forget10")
        data = data["build"]
    cfg = validate(BuildConfig, deep_merge(data, parse_overrides(overrides_of(args))))
    return cfg.with_forget(forget) if forget in FORGET_SPLITS else cfg


def vision_flags(args: argparse.Namespace) -> dict:
    """The flags of ``run vision`` as a config layer (between the config file and the key=value overrides)."""
    flags: dict = {}
    data = {k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir)) if v}
    if args.no_download:
        data["download"] = False
    if data:
        flags["data"] = data
    if args.model:
        flags["model"] = {"arch": args.model}
    if args.methods:
        flags["methods"] = split_list(args.methods)
    if args.scenarios:
        from unlearnkit.data.scenarios import SCENARIOS

        sc = split_list(args.scenarios)
        flags["scenarios"] = list(SCENARIOS) if sc == ["all"] else sc
    if args.seeds:
        try:
            flags["seeds"] = [int(s) for s in split_list(args.seeds)]
        except ValueError:
            raise UnlearnkitError(f"--seeds {args.seeds!r} must be comma-separated integers") from None
    return flags
