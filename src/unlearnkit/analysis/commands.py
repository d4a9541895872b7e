"""CLI subcommands of the analyses: ``gradient``, ``squeeze`` and ``layers`` (registered in cli.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from unlearnkit.errors import UnlearnkitError


def _say(msg: str) -> None:
    print(msg, flush=True)


def _methods(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    if not out:
        raise UnlearnkitError("name at least one method: --method ga (repeat it or use commas: --method ga,npo)")
    if len(set(out)) != len(out):
        raise UnlearnkitError(f"a method is listed twice in --method {','.join(out)}")
    return out


def _positive_every(v: int) -> int:
    if v <= 0:
        raise UnlearnkitError(f"--every must be a positive number of optimiser steps (s ≥ 1), got {v}")
    return v


def _out_dir(args: argparse.Namespace, kind: str) -> Path:
    from unlearnkit.io import home

    return Path(args.out) if args.out else home() / "analysis" / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _add_benchmark_args(p: argparse.ArgumentParser, reference: bool = False) -> None:
    p.add_argument("--model", metavar="PATH", help="θ_o: model directory or hub name (default: the embedded θ_o)")
    p.add_argument("--benchmark", choices=["embedded", "tofu"], default="embedded")
    p.add_argument("--data", metavar="PATH", help="TOFU-format data directory (default: the embedded set, or locuslab/TOFU)")
    p.add_argument("--forget", default="forget10", help="forget01 | forget05 | forget10 (default forget10)")
    if reference:
        p.add_argument("--reference", metavar="PATH", help="θ_r retrained without the forget split, for FQ "
                       "(default: the embedded θ_r)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: $UNLEARNKIT_HOME/analysis/<kind>-<time>)")


def _meta(args: argparse.Namespace, bench, overrides: dict, **extra) -> dict:
    from unlearnkit.results.provenance import provenance

    return provenance({"command": args.command, "model": bench.original, "data": bench.data, "forget": bench.forget,
                       "overrides": overrides, **extra})


# ---------------------------------------------------------------------------------------------


def _run_tracked(args: argparse.Namespace, kind: str, methods: list[str], make_probe, report, table,
                 **meta) -> int:
    """The shared flow of ``gradient`` and ``squeeze``: unlearn with each method under a probe,
    write the report (data + plots) with provenance, print the table and the files."""
    from unlearnkit.analysis.track import resolve_benchmark, track_methods
    from unlearnkit.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    bench = resolve_benchmark(args.benchmark, args.data, args.model, None, args.forget, False, _say)
    out = _out_dir(args, kind)
    res = track_methods(methods, make_probe, bench, overrides, _say)
    files = report(res, out, _meta(args, bench, overrides, **meta))
    _say("")
    _say(table(res))
    _say("\nfiles: " + ", ".join(str(f) for f in files))
    return 1 if any(r["error"] for r in res.values()) else 0


def cmd_gradient(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.g_effect import GEffectProbe
    from unlearnkit.analysis.track import gradient_report

    methods = _methods(args.method)
    every = _positive_every(args.every)
    if args.n_retain is not None and args.n_retain <= 0:
        raise UnlearnkitError(f"--n-retain must be ≥ 1, got {args.n_retain}")
    return _run_tracked(args, "gradient", methods,
                        lambda: GEffectProbe(every=every, n_retain=args.n_retain, pointwise=args.pointwise),
                        gradient_report, gradient_table, every=every, pointwise=args.pointwise)


def gradient_table(res: dict) -> str:
    from unlearnkit.results.tables import format_table

    rows = []
    for m, r in res.items():
        recs = r["probe"].records
        for rec in (recs[0], recs[len(recs) // 2], recs[-1]) if len(recs) > 2 else recs:
            f = rec["effects"]["forget"]
            emb_share = _share(f["e_r"], "embedding")
            rows.append([m, rec["step"], f["e_u"]["total"], f["e_r"]["total"], emb_share,
                         rec["effects"].get("total", {}).get("e_r", {}).get("total")])
    return format_table(["method", "step", "e_u (forget term)", "e_r (forget term)", "|e_r| share embedding",
                         "e_r (forget+retain)"], rows)


def _share(d: dict[str, float], group: str) -> float:
    tot = sum(abs(v) for g, v in d.items() if g != "total")
    return abs(d.get(group, 0.0)) / tot if tot else 0.0


def cmd_squeeze(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.squeezing import SqueezeProbe
    from unlearnkit.analysis.track import squeeze_report

    methods = _methods(args.method)
    every = _positive_every(args.every)
    if args.samples <= 0 or args.temperature <= 0:
        raise UnlearnkitError("--samples and --temperature must be positive")
    return _run_tracked(args, "squeeze", methods,
                        lambda: SqueezeProbe(every=every, n_samples=args.samples, temperature=args.temperature,
                                             max_new_tokens=args.max_new_tokens, seed=args.seed),
                        squeeze_report, squeeze_table, every=every, samples=args.samples,
                        temperature=args.temperature)


def squeeze_table(res: dict) -> str:
    from unlearnkit.analysis.squeezing import GROUPS
    from unlearnkit.results.tables import format_table

    rows = []
    for m, r in res.items():
        recs = r["probe"].records
        first, last = recs[0], recs[-1]
        rows.append([m, last["step"], *[(last[g]["tok"] - first[g]["tok"]) if first[g]["tok"] is not None else None
                                       for g in GROUPS], f"{r['probe'].sampling.get('kept')}/{r['probe'].sampling.get('drawn')}"])
    return ("Change of the mean per-token log-prob from step 0 to the last step:\n"
            + format_table(["method", "steps", *GROUPS, "samples kept"], rows))


def cmd_layers(args: argparse.Namespace) -> int:
    from unlearnkit.analysis.layers import layers_main

    return layers_main(args, _say)


# ---------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "gradient", help="G-effect curves along unlearning runs (e_u, e_r per parameter group)",
        description="Unlearn θ_o with each method and every s optimiser steps compute the G-effects "
                    "e_u = ⟨∇L_obj(D_f), ∇R(D_f)⟩ and e_r = ⟨∇L_obj(D_f), ∇R(D_r)⟩ (R = mean answer NLL) per parameter "
                    "group (embedding, each transformer layer, head) and in total. Writes g_effect.json/.csv and plots.")
    g.add_argument("--method", action="append", metavar="NAME", help="method (repeat, or comma-separated): ga,npo,npo+kl …")
    g.add_argument("--every", type=int, default=1, metavar="S", help="compute every S optimiser steps (S ≥ 1; default 1)")
    g.add_argument("--pointwise", action="store_true", help="also the point-wise G-effect of every forget sample")
    g.add_argument("--n-retain", type=int, metavar="N", help="retain records for R(D_r) (default: as many as forget records)")
    _add_benchmark_args(g)
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
    _add_benchmark_args(s)
    s.add_argument("overrides", nargs="*", metavar="key=value", help="method hyperparameters, e.g. lr=2e-4 epochs=5")
    s.set_defaults(func=cmd_squeeze)

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
    _add_benchmark_args(ly, reference=True)
    ly.add_argument("overrides", nargs="*", metavar="key=value", help="with --method: hyperparameters, e.g. lr=2e-4")
    ly.set_defaults(func=cmd_layers)
