"""Benchmark: the whole ``unlearnkit eval`` against its physical floor on the same machine.

The floor for evaluating a model (and the reference θ_r it is compared with) is what no
implementation can avoid: one bare forward pass over exactly the evaluated (prompt + answer)
token sequences, batched like ours, and bare greedy generation of exactly the lengths our
generations have. Everything else — tokenisation, the per-token statistics, metrics, ROUGE,
imports, model loads, writing results — is overhead.

    python benchmarks/eval_floor.py --model PATH --reference PATH [--data DIR] [--max-new-tokens 200]
    python benchmarks/eval_floor.py --smollm2          # θ_o and θ_r of configs/smollm2.yaml (built if needed)

It runs ``unlearnkit eval`` as a subprocess with caches disabled (the time a user waits), then, in
this process, the same evaluation with timers around passes, generation and metrics, and the floor.
Prints the split and the ratio (whole eval / floor).
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


def whole_eval_seconds(model: str, reference: str, data: str | None, max_new: int) -> float:
    """Wall time of the real command (imports, loads, both evaluations, writing)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "unlearnkit", "eval", "--model", model, "--reference", reference, "--out",
               str(Path(out) / "eval"), f"max_new_tokens={max_new}", "cache=false"]
        if data:
            cmd += ["--data", data]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        return time.perf_counter() - t0


def timed_evaluation(path: str, src, cfg) -> tuple[dict, list, list]:
    """Our evaluate() with timers; returns (seconds by part, the token sequences passed, generation lengths)."""
    from unlearnkit.engine import evaluate as E
    from unlearnkit.engine import passes as P
    from unlearnkit.models.lm import load_model

    model, tok = load_model(path)
    parts = {"passes": 0.0, "generation": 0.0}
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

    E.teacher_forced_pass, E.generate_answers = pass_, gen_
    try:
        t0 = time.perf_counter()
        E.evaluate(model, tok, src, cfg.model_copy(update={"cache": False}))
        parts["total"] = time.perf_counter() - t0
    finally:
        E.teacher_forced_pass, E.generate_answers = real_pass, real_gen
    parts["metrics"] = parts["total"] - parts["passes"] - parts["generation"]
    return parts, seqs, gen_lengths


@torch.no_grad()
def floor_seconds(path: str, seqs: list[list[int]], gen_lengths: list[list[int]], questions: list[list[str]],
                  batch_size: int, gen_batch: int) -> dict:
    """Bare forward over the same sequences (length-sorted batches) + bare greedy generation of the same lengths."""
    from unlearnkit.data.prompts import encode_prompt
    from unlearnkit.engine.generate import left_pad
    from unlearnkit.models.lm import load_model

    model, tok = load_model(path)
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
    ap.add_argument("--max-new-tokens", type=int, default=200)
    args = ap.parse_args()
    from unlearnkit.config import BuildConfig, load_config
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import GENERATE, EvalConfig, eval_sets
    from unlearnkit.models.build import build_models

    model, reference, data = args.model, args.reference, args.data
    if args.smollm2 or not model:
        root = Path(__file__).resolve().parents[1]
        cfg_file = root / "configs" / ("smollm2.yaml" if args.smollm2 else "default.yaml")
        build = load_config(BuildConfig, None, [f"{k}={json.dumps(v)}" for k, v in
                                                __import__("yaml").safe_load(cfg_file.read_text()).get("build", {}).items()])
        ms = build_models(build, say=print)
        model, reference, data = str(ms.original), str(ms.reference_for("forget10")), str(ms.data_dir)
    torch.set_num_threads(torch.get_num_threads())
    cfg = EvalConfig(max_new_tokens=args.max_new_tokens)
    src = QASource(data)
    whole = whole_eval_seconds(model, reference, data, args.max_new_tokens)
    ours, floors = {}, {}
    for name, path in (("model", model), ("reference", reference)):
        parts, seqs, lens = timed_evaluation(path, src, cfg)
        qs = [[r["question"] for r in src.split(split)] for role, split in eval_sets(cfg.forget).items() if role in GENERATE]
        ours[name] = parts
        floors[name] = floor_seconds(path, seqs, lens, qs, cfg.batch_size, cfg.generation_batch_size)
    floor = sum(f["forward"] + f["generation"] for f in floors.values())
    inside = sum(p["total"] for p in ours.values())
    report = {"whole_eval_s": whole, "floor_s": floor, "ratio": whole / floor,
              "ours": ours, "floor": floors, "overhead_outside_evaluate_s": whole - inside}
    print(json.dumps(report, indent=2))
    print(f"\nunlearnkit eval {whole:.1f}s vs floor {floor:.1f}s → {whole / floor:.2f}× "
          f"(passes {sum(p['passes'] for p in ours.values()):.1f}s vs bare forward "
          f"{sum(f['forward'] for f in floors.values()):.1f}s; generation {sum(p['generation'] for p in ours.values()):.1f}s "
          f"vs bare {sum(f['generation'] for f in floors.values()):.1f}s; metrics "
          f"{sum(p['metrics'] for p in ours.values()):.1f}s; imports/loads/writing {whole - inside:.1f}s)")


if __name__ == "__main__":
    main()
