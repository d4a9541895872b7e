"""Determinism across CPU kernel paths and thread counts: the default table under each setting.

Runs ``unlearnkit run`` (the embedded default, cold: a fresh ``$UNLEARNKIT_HOME`` per setting) once per
(kernel path × thread count) and compares the printed tables cell by cell with the first setting's:

- ``native``: whatever this CPU has (``torch.backends.cpu.get_cpu_capability()``);
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=AVX2`` (an AVX2 machine's kernels);
- ``default``: ``ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=SSE41`` (no vector kernels);

each under ``OMP_NUM_THREADS`` = 1 and 2. Extra ``key=value`` arguments go to every run (e.g.
``build.model.dtype=float32`` measures the float32 models). Writes ``kernel_paths.json`` (tables, seconds,
provenance of each setting) and ``kernel_paths.md`` into ``--out``.

    python benchmarks/kernel_paths.py --out docs/measurements/cpu-2026-12-08 [--paths native,avx2,default]
        [--threads 1,2 | --settings native:2,default:1,…] [--tag float32] [key=value ...]

On an AMX CPU, ``avx2``/``default`` break torch's bfloat16 SDPA (a limit of the emulation); the default run is
float64 and does not use it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATHS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def table_of(output: str) -> list[list[str]]:
    """The cells of the first markdown table in ``output`` (header row included, separator row left out)."""
    rows = [line for line in output.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows if not re.fullmatch(r"\|[-|]+\|", r)]


def run_setting(path: str, threads: int, overrides: list[str]) -> dict:
    env = {**os.environ, **PATHS[path], "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as home:
        env["UNLEARNKIT_HOME"] = home
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "unlearnkit", "run", *overrides], env=env, capture_output=True,
                             text=True)
        seconds = time.perf_counter() - t0
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability(), "
                                "torch.get_num_threads())"], env=env, capture_output=True, text=True).stdout.split()
    if out.returncode != 0:
        return {"path": path, "threads": threads, "error": (out.stderr or out.stdout)[-2000:], "seconds": seconds}
    return {"path": path, "threads": threads, "capability": probe[0] if probe else None, "seconds": round(seconds, 1),
            "table": table_of(out.stdout)}


def differing_cells(a: list[list[str]], b: list[list[str]]) -> list[str]:
    """``row/column: a → b`` for every cell that differs (the unlearning-time column, a wall clock, left out)."""
    header = a[0] if a else []
    out = []
    for ra, rb in zip(a[1:], b[1:]):
        for h, x, y in zip(header, ra, rb):
            if x != y and not h.startswith("unlearn s"):
                out.append(f"{ra[0]}/{h}: {x} → {y}")
    if len(a) != len(b):
        out.append(f"row count {len(a)} → {len(b)}")
    return out


def markdown(results: list[dict], tag: str) -> str:
    first = next((r for r in results if "table" in r), None)
    lines = [f"## {tag}: the default table under each kernel path and thread count", "",
             "| setting | capability | threads | cold s | cells differing from the first setting |", "|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['path']} | - | {r['threads']} | {r['seconds']:.0f} | failed: "
                         f"{r['error'].strip().splitlines()[-1][:100]} |")
            continue
        diff = differing_cells(first["table"], r["table"])
        lines.append(f"| {r['path']} | {r['capability']} | {r['threads']} | {r['seconds']:.0f} | "
                     f"{len(diff)}{': ' + '; '.join(diff[:6]) + (' …' if len(diff) > 6 else '') if diff else ''} |")
    if first:
        lines += ["", "First setting's table:", "", *("| " + " | ".join(r) + " |" for r in first["table"][:1]),
                  "|" + "---|" * len(first["table"][0]), *("| " + " | ".join(r) + " |" for r in first["table"][1:])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for kernel_paths[-TAG].json/.md")
    ap.add_argument("--paths", default="native,avx2,default")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tag", default="default", help="a name for this measurement (file suffix)")
    ap.add_argument("--settings", help="PATH:THREADS,… in this order instead of --paths × --threads (e.g. "
                    "native:2,default:1 first: a partial measurement then already spans the extremes)")
    ap.add_argument("overrides", nargs="*", help="key=value for every `unlearnkit run`")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.tag == "default" else f"-{args.tag}"
    settings = ([(s.split(":")[0], int(s.split(":")[1])) for s in args.settings.split(",")] if args.settings else
                [(p, int(t)) for p in args.paths.split(",") for t in args.threads.split(",")])
    results = []
    for path, threads in settings:
        r = run_setting(path, threads, args.overrides)
        print(f"{path} × {threads} thread(s): {r['seconds']:.0f} s{' FAILED' if 'error' in r else ''}", flush=True)
        results.append(r)  # written after every setting: an interrupted measurement keeps what it measured
        (out / f"kernel_paths{suffix}.json").write_text(json.dumps({"overrides": args.overrides, "results": results},
                                                                   indent=1))
        (out / f"kernel_paths{suffix}.md").write_text(markdown(results, args.tag))
    print(markdown(results, args.tag))


if __name__ == "__main__":
    main()
