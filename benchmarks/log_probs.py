"""Benchmark: peak memory of the evaluation pass, memory-lean (ours) vs naive, at a 128 k vocabulary.

A Llama-shaped model of tiny depth (1 layer, hidden 256) with Llama-3's vocabulary (128 256
tokens) scores a batch of long answers: every per-token statistic the metrics need — log π(y_i),
the argmax flag and the Min-K%++ score z_i — computed two ways on the same batch:

- **naive**: the model's full (batch, seq, vocab) fp32 logits, ``log_softmax`` over them, then
  the statistics per sample (what common evaluation tools do; benchmarks/eval_passes.py's naive pass);
- **lean** (:func:`unlearnkit.engine.passes.answer_stats`): hidden states gathered at answer
  positions, the head applied in row chunks of at most ``LOGITS_BUDGET`` (16 Mi) logits.

Each variant runs in its own process; its peak memory is the growth of the process's peak resident
set during the pass (``ru_maxrss``; on a GPU ``torch.cuda.max_memory_allocated``). The script checks
that both give the same numbers (log-probs and z within 1e-5, identical argmax flags) and prints
one JSON line per variant and the ratio.

    python benchmarks/log_probs.py [--batch 4] [--seq 512] [--answer 448] [--vocab 128256] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _model(vocab: int, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).to(device).eval()


def _batch(args, device: str):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(args.vocab, (args.batch, args.seq), generator=g)
    labels = ids.clone()
    labels[:, : args.seq - args.answer] = -100  # the prompt is not scored
    return ids.to(device), torch.ones_like(ids).to(device), labels.to(device)


@torch.no_grad()
def naive(model, ids, mask, labels):
    """Full logits (B, T, V) in fp32, log_softmax over all of them, then each sample's answer positions."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (B, T−1, V)
    logp = torch.log_softmax(logits, -1)
    tgt_all = labels[:, 1:]
    out = []
    for i in range(ids.shape[0]):
        m = tgt_all[i] != -100
        lp_all, t = logp[i][m], tgt_all[i][m]
        lp = lp_all.gather(1, t[:, None]).squeeze(1)
        p = lp_all.exp()
        mu = (p * lp_all).sum(-1)
        sd = ((p * lp_all.square()).sum(-1) - mu.square()).clamp_min(0).sqrt().clamp_min(1e-8)
        out.append((lp, logits[i][m].argmax(-1) == t, (lp - mu) / sd))
    return [torch.cat([o[k] for o in out]) for k in range(3)]


@torch.no_grad()
def lean(model, ids, mask, labels):
    from unlearnkit.engine.passes import answer_stats

    targets = labels[:, 1:]
    select = torch.zeros_like(ids, dtype=torch.bool)
    select[:, :-1] = targets != -100
    return list(answer_stats(model, ids, mask, select, targets[targets != -100]))


def _peak_bytes(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(args) -> None:
    """One variant in this process: prints {variant, peak_mib, seconds} and saves its arrays."""
    torch.set_num_threads(args.threads)
    model = _model(args.vocab, args.device)
    ids, mask, labels = _batch(args, args.device)
    fn = naive if args.variant == "naive" else lean
    fn(model, ids[:1, :8], mask[:1, :8], labels[:1, :8])  # warm up kernels and allocator
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if args.device.startswith("cuda") else _peak_bytes(args.device)
    t0 = time.perf_counter()
    lp, correct, z = fn(model, ids, mask, labels)
    seconds = time.perf_counter() - t0
    peak = _peak_bytes(args.device) - before
    np.savez(args.out, lp=lp.double().cpu().numpy(), correct=correct.cpu().numpy(), z=z.double().cpu().numpy())
    print(json.dumps({"variant": args.variant, "peak_mib": round(peak / 2**20, 1), "seconds": round(seconds, 3),
                      "answer_tokens": int(lp.numel()), "batch": args.batch, "seq": args.seq, "vocab": args.vocab,
                      "device": args.device}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--answer", type=int, default=448, help="answer tokens per sequence (scored positions)")
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", choices=["naive", "lean"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        child(args)
        return
    rows, arrays = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("naive", "lean"):
            out = str(Path(tmp) / f"{variant}.npz")
            cmd = [sys.executable, __file__, "--variant", variant, "--out", out,
                   *(f"--{k}={getattr(args, k)}" for k in ("batch", "seq", "answer", "vocab", "device", "threads"))]
            line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            rows[variant] = json.loads(line)
            print(line, flush=True)
            with np.load(out) as f:
                arrays[variant] = {k: f[k] for k in f.files}
    a, b = arrays["naive"], arrays["lean"]
    diff = {k: float(np.max(np.abs(a[k] - b[k]))) for k in ("lp", "z")}
    same = bool(np.array_equal(a["correct"], b["correct"])) and max(diff.values()) <= 1e-5
    print(json.dumps({"ratio_naive_over_lean": round(rows["naive"]["peak_mib"] / max(rows["lean"]["peak_mib"], 1e-9), 2),
                      "max_abs_diff": diff, "same_results": same}))
    if not same:
        raise SystemExit("the lean pass disagrees with the naive one")


if __name__ == "__main__":
    main()
