"""The parsers of the analyses (``gradient``, ``squeeze``, ``layers``) and of the commands that read finished runs
(``runs``, ``report``, ``judge``); :func:`unlearnkit.cli.parsers.build_parser` adds them."""

from __future__ import annotations

import argparse

from unlearnkit.cli.commands import cmd_gradient, cmd_judge, cmd_layers, cmd_report, cmd_runs, cmd_squeeze
from unlearnkit.cli.parsing import add_bench_args, add_dtype_arg, command, need_action


def add_analyses(sub) -> None:
    command(sub, "gradient", _fill_gradient,
            help="G-effect curves along unlearning runs (e_u, e_r per parameter group)",
            description="Unlearn θ_o with each method and every s optimiser steps compute the G-effects "
                        "e_u = ⟨∇L_obj(D_f), ∇R(D_f)⟩ and e_r = ⟨∇L_obj(D_f), ∇R(D_r)⟩ (R = mean answer NLL) per "
                        "parameter group (embedding, each transformer layer, head) and in total. Writes "
                        "g_effect.json/.csv and plots.")
    command(sub, "squeeze", _fill_squeeze,
            help="squeezing-effect curves: log-prob of target, paraphrase and θ_o samples by likelihood band",
            description="Unlearn θ_o with each method; every s steps measure the mean log-prob of the forget answers, "
                        "their paraphrases, and answers sampled from θ_o grouped into high/mid/low likelihood bands. "
                        "Writes squeezing.json/.csv and squeezing.png.")
    command(sub, "layers", _fill_layers, help="layer-wise patching sweep (θ_o with one layer from θ_u) and CRU",
            description="For each transformer layer l (and the embedding and head groups), evaluate θ_o with layer l "
                        "taken from θ_u: FQ, MU, forget ES. θ_u is --unlearned PATH, or made here with --method NAME. "
                        "With --cru, also select layers by rank(FQ)+rank(MU) on a validation half of the subjects, "
                        "choose k there, and report θ_o, θ_u and the CRU model on the other half.")


def _fill_gradient(g: argparse.ArgumentParser) -> None:
    g.add_argument("--method", action="append", metavar="NAME", help="method (repeat, or comma-separated): ga,npo,npo+kl …")
    g.add_argument("--every", type=int, default=1, metavar="S", help="compute every S optimiser steps (S ≥ 1; default 1)")
    g.add_argument("--pointwise", action="store_true", help="also the point-wise G-effect of every forget sample")
    g.add_argument("--n-retain", type=int, metavar="N", help="retain records for R(D_r) (default: as many as forget records)")
    add_bench_args(g)
    g.add_argument("overrides", nargs="*", metavar="key=value", help="method hyperparameters, e.g. lr=2e-4 epochs=5")
    g.set_defaults(func=cmd_gradient)


def _fill_squeeze(s: argparse.ArgumentParser) -> None:
    s.add_argument("--method", action="append", metavar="NAME", help="method (repeat, or comma-separated)")
    s.add_argument("--every", type=int, default=1, metavar="S", help="measure every S optimiser steps (default 1)")
    s.add_argument("--samples", type=int, default=8, metavar="N", help="answers sampled from θ_o per forget question")
    s.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1, the full softmax)")
    s.add_argument("--max-new-tokens", type=int, default=64, help="length cap of a sampled answer")
    s.add_argument("--seed", type=int, default=0, help="sampling seed")
    s.add_argument("--judge", metavar="BACKEND", help="Similarity per likelihood band with this judge (local:MODEL "
                   "or openai:MODEL; default: the sentence-embedding proxy)")
    add_bench_args(s)
    s.add_argument("overrides", nargs="*", metavar="key=value", help="method hyperparameters, e.g. lr=2e-4 epochs=5")
    s.set_defaults(func=cmd_squeeze)


def _fill_layers(ly: argparse.ArgumentParser) -> None:
    src = ly.add_mutually_exclusive_group(required=True)
    src.add_argument("--unlearned", metavar="PATH", help="θ_u: an unlearned model directory")
    src.add_argument("--method", metavar="NAME", help="unlearn θ_o with this method first (key=value hyperparameters)")
    ly.add_argument("--layers", metavar="L,L,…", help="only these transformer layers (0-based; default: all)")
    ly.add_argument("--cru", action="store_true", help="also run CRU (validation/test halves of the subjects)")
    ly.add_argument("--k", type=int, metavar="K", help="CRU: keep exactly K groups from θ_u (default: chosen on validation)")
    ly.add_argument("--max-new-tokens", type=int, default=200, help="generation cap for ROUGE-L in MU (default 200)")
    add_dtype_arg(ly, "precision of every evaluated model (θ_o, θ_u, θ_r and each patched model; θ_u is trained in "
                  "float32 weights — float64 for float64 models — first); ")
    add_bench_args(ly, reference=True)
    ly.add_argument("overrides", nargs="*", metavar="key=value", help="with --method: hyperparameters, e.g. lr=2e-4")
    ly.set_defaults(func=cmd_layers)


def add_runs(sub) -> None:
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
    rs.set_defaults(func=lambda a: need_action(rs))


def add_report(sub) -> None:
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


def add_judge(sub) -> None:
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
