"""Benchmark: the whole ``unlearnkit eval`` against its physical floor on the same machine.

The floor for evaluating a model (and the reference θ_r it is compared with) is what no
implementation can avoid: one bare forward pass over exactly the evaluated (prompt + answer)
token sequences, batched like ours, and bare greedy generation of exactly the lengths our
generations have. Everything else — tokenisation, the per-token statistics, metrics, ROUGE,
imports, model loads, writing results — is overhead.

    python benchmarks/eval_floor.py --model PATH --reference PATH [--data DIR] [--max-new-tokens 200]
    python benchmarks/eval_floor.py --smollm2          # θ_o and θ_r of configs/smollm2.yaml (built if needed),
                                                       # in that preset's dtype and evaluation batch sizes

It runs ``unlearnkit eval`` as a subprocess with caches disabled (the time a user waits), then, in
this process, the same evaluation with timers around passes, generation and metrics, and the floor.
Prints the split and the ratio (whole eval / floor). The GradNorm MIA (``eval.mia_gradnorm``, on by default)
needs one forward *and backward* pass per member and non-member sample — work outside a forward-only floor — so
its time is reported on its own, with a second ratio that counts it in the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def whole_eval_seconds(model: str, reference: str, data: str | None, cfg, dtype: str) -> float:
    """Wall time of the real command (imports, loads, both evaluations, writing)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "unlearnkit", "eval", "--model", model, "--reference", reference, "--out",
               str(Path(out) / "eval"), "--dtype", dtype, "cache=false",
               *(f"{k}={getattr(cfg, k)}" for k in ("max_new_tokens", "batch_size", "generation_batch_size"))]
        if data:
            cmd += ["--data", data]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        return time.perf_counter() - t0


def timed_evaluation(path: str, src, cfg, dtype: torch.dtype) -> tuple[dict, list, list]:
    """Our evaluate() with timers; returns (seconds by part, the token sequences passed, generation lengths)."""
    from unlearnkit.engine import gradnorm as G
    from unlearnkit.engine import passes as P
    from unlearnkit.models.lm import load_model
    from unlearnkit.tasks import tofu_eval as E

    model, tok = load_model(path, dtype=dtype)
    parts = {"passes": 0.0, "generation": 0.0, "gradnorm": 0.0}
    seqs: list[list[int]] = []
    gen_lengths: list[list[int]] = []
    real_pass, real_gen = E.teacher_forced_pass, E.generate_answers

    def pass_(m, t, pairs, *a, **k):
        seqs.extend(P.encode_pair(t, q, ans).input_ids for q, ans in pairs)
        t0 = time.perf_counter()
        out = real_pass(m, t, pairs, *a, **k)
        parts["passes"] += time.perf_counter() - t0
        return out

    def gen_(m, t, qs, max_new, bs):
        t0 = time.perf_counter()
        out = real_gen(m, t, qs, max_new, bs)
        parts["generation"] += time.perf_counter() - t0
        gen_lengths.append([min(max_new, len(t(a, add_special_tokens=False)["input_ids"]) + 1) for a in out])
        return out

    real_norms = G.gradient_norms

    def norms_(*a, **k):  # the GradNorm MIA: one forward + backward per sample (bare already: it is the floor too)
        t0 = time.perf_counter()
        out = real_norms(*a, **k)
        parts["gradnorm"] += time.perf_counter() - t0
        return out

    E.teacher_forced_pass, E.generate_answers, G.gradient_norms = pass_, gen_, norms_
    try:
        t0 = time.perf_counter()
        E.evaluate(model, tok, src, cfg.model_copy(update={"cache": False}))
        parts["total"] = time.perf_counter() - t0
    finally:
        E.teacher_forced_pass, E.generate_answers, G.gradient_norms = real_pass, real_gen, real_norms
    parts["metrics"] = parts["total"] - parts["passes"] - parts["generation"] - parts["gradnorm"]
    return parts, seqs, gen_lengths


@torch.no_grad()
def floor_seconds(path: str, seqs: list[list[int]], gen_lengths: list[list[int]], questions: list[list[str]],
                  batch_size: int, gen_batch: int, dtype: torch.dtype) -> dict:
    """Bare forward over the same sequences (length-sorted batches) + bare greedy generation of the same lengths."""
    from unlearnkit.data.prompts import encode_prompt
    from unlearnkit.engine.generate import left_pad
    from unlearnkit.models.lm import load_model

    model, tok = load_model(path, dtype=dtype)
    order = sorted(seqs, key=len)
    t0 = time.perf_counter()
    for s in range(0, len(order), batch_size):
        batch = order[s : s + batch_size]
        ids, mask, _ = left_pad(batch, tok.pad_token_id)
        model(input_ids=ids, attention_mask=mask)
    forward = time.perf_counter() - t0
    t0 = time.perf_counter()
    for qs, lens in zip(questions, gen_lengths, strict=True):
        prompts = [encode_prompt(tok, q) for q in qs]
        idx = sorted(range(len(qs)), key=lambda i: len(prompts[i]))
        for s in range(0, len(idx), gen_batch):
            chunk = idx[s : s + gen_batch]
            ids, mask, _ = left_pad([prompts[i] for i in chunk], tok.pad_token_id)
            n = max(lens[i] for i in chunk)
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           pad_token_id=tok.pad_token_id, eos_token_id=None)
    return {"forward": forward, "generation": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--reference")
    ap.add_argument("--data")
    ap.add_argument("--smollm2", action="store_true", help="θ_o and θ_r of configs/smollm2.yaml")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: the preset's, else 200")
    ap.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=None,
                    help="the one evaluation precision (default: the preset's, else auto)")
    args = ap.parse_args()
    from unlearnkit.config import load_config
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.lm import resolve_dtype
    from unlearnkit.recipes.lm import RunConfig, prepare_benchmark
    from unlearnkit.tasks.tofu_eval import GENERATE, eval_sets

    model, reference, data = args.model, args.reference, args.data
    run_cfg = None
    if args.smollm2 or not model:  # θ_o, θ_r and data as `unlearnkit run --config <preset>` prepares them
        root = Path(__file__).resolve().parents[1]
        run_cfg = load_config(RunConfig, root / "configs" / ("smollm2.yaml" if args.smollm2 else "default.yaml"), [])
        prepared = prepare_benchmark(run_cfg, say=print).prepared
        model, reference, data = prepared.original, prepared.reference, prepared.data
    dtype_name = args.dtype or (run_cfg.dtype if run_cfg else "auto")
    dtype = resolve_dtype(dtype_name)
    cfg = run_cfg.eval if run_cfg else EvalConfig()
    if args.max_new_tokens is not None:
        cfg = cfg.model_copy(update={"max_new_tokens": args.max_new_tokens})
    src = QASource(data)
    whole = whole_eval_seconds(model, reference, data, cfg, dtype_name)
    ours, floors = {}, {}
    for name, path in (("model", model), ("reference", reference)):
        parts, seqs, lens = timed_evaluation(path, src, cfg, dtype)
        qs = [[r["question"] for r in src.split(split)] for role, split in eval_sets(cfg.forget).items() if role in GENERATE]
        ours[name] = parts
        floors[name] = floor_seconds(path, seqs, lens, qs, cfg.batch_size, cfg.generation_batch_size, dtype)
    floor = sum(f["forward"] + f["generation"] for f in floors.values())
    gradnorm = sum(p["gradnorm"] for p in ours.values())
    inside = sum(p["total"] for p in ours.values())
    report = {"dtype": str(dtype), "eval": cfg.model_dump(), "whole_eval_s": whole, "floor_s": floor,
              "ratio": whole / floor, "gradnorm_s": gradnorm, "ratio_with_gradnorm_in_floor": whole / (floor + gradnorm),
              "ours": ours, "floor": floors, "overhead_outside_evaluate_s": whole - inside}
    print(json.dumps(report, indent=2))
    print(f"\nunlearnkit eval {whole:.1f}s vs floor {floor:.1f}s → {whole / floor:.2f}× "
          f"(passes {sum(p['passes'] for p in ours.values()):.1f}s vs bare forward "
          f"{sum(f['forward'] for f in floors.values()):.1f}s; generation {sum(p['generation'] for p in ours.values()):.1f}s "
          f"vs bare {sum(f['generation'] for f in floors.values()):.1f}s; GradNorm MIA (a backward pass per sample) "
          f"{gradnorm:.1f}s; metrics {sum(p['metrics'] for p in ours.values()):.1f}s; imports/loads/writing "
          f"{whole - inside:.1f}s)\nwith the GradNorm MIA's per-sample forward+backward counted in the floor: "
          f"{whole / (floor + gradnorm):.2f}×")


if __name__ == "__main__":
    main()
