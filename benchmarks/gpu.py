"""GPU benchmark: unlearnkit's engine beside plain Hugging Face eager on the same machine (issue #15).

Measured for a Llama-shaped 1 B model (Llama-3.2-1B's shape: hidden 2048, 16 layers, 32 heads / 8 KV heads,
MLP 8192, vocabulary 128 256, tied embeddings; random initialisation; bf16; sequences of 512 tokens):

- ``train``    unlearning step throughput (tokens/s, MFU): unlearnkit's training loop (accelerate, bf16 autocast
               over fp32 master weights, SDPA attention) with the GA forget term, vs HF eager (bf16 weights, eager
               attention, ``model(input_ids, labels).loss``), AdamW both;
- ``train_lora`` the same step training LoRA adapters (r 16, all linear layers) — memory with and without LoRA;
- ``eval``     evaluation-pass tokens/s: :func:`unlearnkit.engine.passes.answer_stats` (log-prob, argmax flag and
               Min-K%++ z of every position, logits in row chunks) vs HF eager's full logits + ``log_softmax``;
- ``generate`` greedy generation, new tokens/s at batch 64 (prompts of 128, 128 new tokens):
               :func:`unlearnkit.engine.generate.generate_ids` vs HF eager ``generate``;
- ``lora8b``   peak memory of one LoRA training step on an 8 B-shaped model (Llama-3.1-8B's shape).

Every row has the measurement's peak memory — model, gradients, optimiser state, activations —
(``torch.cuda.max_memory_allocated``; on a CPU the growth of the process's peak RSS after imports).
Each measurement runs in its own process. Reference numbers for HF eager on an H200 (from the issue): training
44.4 k tok/s ≈ 33 % MFU, eval forward 156 k tok/s, generate 3.6 k new tok/s at batch 64; targets for unlearnkit:
≥ 45 % MFU, ≥ 1.5× the eval forward, ≥ 3× generation. MFU = (6·N + 12·L·d·T)·tokens/s / peak FLOP/s (N
parameters without the embedding, L layers, d hidden size, T sequence length; --peak-tflops, H200 dense bf16:
989). ``--toy`` runs everything at toy size on a CPU in about a minute (the script's own check; the numbers
mean nothing there).

    python benchmarks/gpu.py [--toy] [--only train,eval,...] [--steps 10] [--compile]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=8, vocab_size=32000, tie_word_embeddings=True),  # ~50 M: CPU memory figures
    "toy": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True),
}
MEASUREMENTS = ("train_hf", "train", "train_lora", "eval_hf", "eval", "generate_hf", "generate", "lora8b")


def model_of(shape: str, attn: str, dtype: torch.dtype, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, rope_theta=500000.0, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, attn_implementation=attn)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model.to(dtype)


def flops_per_token(model, seq: int) -> float:
    c = model.config
    n = sum(p.numel() for n_, p in model.named_parameters() if "embed" not in n_)
    return 6 * n + 12 * c.num_hidden_layers * c.hidden_size * seq


def batches(args, vocab: int, n: int, device: str, answer_from: int = 0):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(3, vocab, (args.batch, args.seq), generator=g)
        labels = ids.clone()
        labels[:, :answer_from] = -100
        out.append({"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
                    "labels": labels.to(device)})
    return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_hf(args, shape: str = "1b") -> dict:
    model = model_of(shape, "eager", torch.bfloat16, args.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    data = batches(args, model.config.vocab_size, args.steps + 2, args.device)

    def step(b):
        model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed(args, step, data, model, "train_hf")


def train_ours(args, lora: bool = False, shape: str = "1b") -> dict:
    from unlearnkit.engine.train import train_loop
    from unlearnkit.methods.llm.base import ForgetInputs, LMParams
    from unlearnkit.methods.llm.ga import ga_forget
    from unlearnkit.models.adapters import LoraSpec, add_lora

    model = model_of(shape, "sdpa", torch.float32, args.device)
    if lora:
        model = add_lora(model, LoraSpec(r=16, alpha=32))
    if args.compile:
        model.forward = torch.compile(model.forward)
    params = LMParams()
    data = batches(args, model.config.vocab_size, args.steps + 2, args.device)
    loss = lambda m, b: (ga_forget(ForgetInputs(m, b, params))[0], {})  # noqa: E731
    train_loop(model, data[:2], loss, lr=1e-5, epochs=1, desc="warm-up")  # kernels, allocator, compile
    sync(args.device)
    t0 = time.perf_counter()
    log = train_loop(model, data[2:], loss, lr=1e-5, epochs=1, desc="bench")
    sync(args.device)
    return result(args, model, "train_lora" if lora else "train", time.perf_counter() - t0, len(log.steps))


def eval_hf(args) -> dict:
    model = model_of("1b", "eager", torch.bfloat16, args.device).eval()
    data = batches(args, model.config.vocab_size, args.steps + 2, args.device, answer_from=args.seq // 4)

    @torch.no_grad()
    def step(b):
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1)
        tgt = b["labels"][:, 1:]
        logp.gather(-1, tgt.clamp_min(0)[..., None]).squeeze(-1)[tgt != -100].sum().item()

    return timed(args, step, data, model, "eval_hf")


def eval_ours(args) -> dict:
    from unlearnkit.engine.passes import answer_stats

    model = model_of("1b", "sdpa", torch.bfloat16, args.device).eval()
    if args.compile:
        model.model.forward = torch.compile(model.model.forward)
    data = batches(args, model.config.vocab_size, args.steps + 2, args.device, answer_from=args.seq // 4)

    @torch.no_grad()
    def step(b):
        tgt = b["labels"][:, 1:]
        select = torch.zeros_like(b["input_ids"], dtype=torch.bool)
        select[:, :-1] = tgt != -100
        answer_stats(model, b["input_ids"], b["attention_mask"], select, tgt[tgt != -100])[0].sum().item()

    return timed(args, step, data, model, "eval")


class _Tok:
    eos_token_id, pad_token_id = 2, 0


def generate(args, ours: bool) -> dict:
    from unlearnkit.engine.generate import generate_ids

    model = model_of("1b", "sdpa" if ours else "eager", torch.bfloat16, args.device).eval()
    model.generation_config.eos_token_id = None  # random weights: decode the full length
    if ours and args.compile:
        model.generation_config.cache_implementation = "static"
        model.forward = torch.compile(model.forward, mode="reduce-overhead")
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, model.config.vocab_size, (args.gen_batch, args.prompt), generator=g).tolist()
    new = args.new_tokens

    def run(ps):
        if ours:
            return generate_ids(model, _Tok(), ps, max_new_tokens=new, batch_size=args.gen_batch)
        ids = torch.tensor(ps, device=args.device)
        return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new,
                              min_new_tokens=new, eos_token_id=None, pad_token_id=0)

    run([p[:8] for p in prompts[:2]])  # warm-up
    sync(args.device)
    t0 = time.perf_counter()
    run(prompts)
    sync(args.device)
    seconds = time.perf_counter() - t0
    return {"measurement": "generate" if ours else "generate_hf", "new_tokens_per_s": args.gen_batch * new / seconds,
            "batch": args.gen_batch, "peak_mib": peak_mib(args.device), "seconds": seconds}


def lora8b(args) -> dict:
    out = train_ours(args, lora=True, shape="8b" if not args.toy else "toy")
    return {**out, "measurement": "lora8b"}


def timed(args, step, data, model, name: str) -> dict:
    for b in data[:2]:
        step(b)
    sync(args.device)
    t0 = time.perf_counter()
    for b in data[2:]:
        step(b)
    sync(args.device)
    return result(args, model, name, time.perf_counter() - t0, len(data) - 2)


def result(args, model, name: str, seconds: float, steps: int) -> dict:
    tokens = steps * args.batch * args.seq
    out = {"measurement": name, "tokens_per_s": tokens / seconds, "peak_mib": peak_mib(args.device),
           "steps": steps, "batch": args.batch, "seq": args.seq}
    if name.startswith("train"):
        out["mfu"] = flops_per_token(model, args.seq) * out["tokens_per_s"] / (args.peak_tflops * 1e12)
    return out


_BASE = [0]


def reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        _BASE[0] = torch.cuda.memory_allocated()
    else:
        _BASE[0] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return round((torch.cuda.max_memory_allocated() - _BASE[0]) / 2**20, 1)
    return round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - _BASE[0]) / 2**20, 1)


RUN = {"train_hf": train_hf, "train": train_ours, "train_lora": lambda a: train_ours(a, lora=True),
       "eval_hf": eval_hf, "eval": eval_ours, "generate_hf": lambda a: generate(a, False),
       "generate": lambda a: generate(a, True), "lora8b": lora8b}


def summary(rows: dict[str, dict]) -> dict:
    def ratio(a, b, key):
        return round(rows[a][key] / rows[b][key], 2) if a in rows and b in rows else None

    return {"train_mfu": round(rows["train"]["mfu"], 4) if "train" in rows else None,
            "train_speedup_vs_hf": ratio("train", "train_hf", "tokens_per_s"),
            "eval_speedup_vs_hf": ratio("eval", "eval_hf", "tokens_per_s"),
            "generate_speedup_vs_hf": ratio("generate", "generate_hf", "new_tokens_per_s"),
            "train_peak_mib_full_vs_lora": [rows.get("train", {}).get("peak_mib"), rows.get("train_lora", {}).get("peak_mib")],
            "targets": {"train_mfu": 0.45, "eval_speedup_vs_hf": 1.5, "generate_speedup_vs_hf": 3.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--toy", action="store_true", help="toy sizes on the CPU (a check that the script runs)")
    ap.add_argument("--shape", choices=["1b", "small"], default="1b", help="the model of every measurement but "
                    "lora8b (small: ~50 M parameters, for memory figures on a CPU)")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8, help="sequences per training / eval step")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H200: 989)")
    ap.add_argument("--compile", action="store_true", help="torch.compile unlearnkit's forward (static KV cache for "
                    "generation)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.shape != "1b":
        SHAPES["1b"] = SHAPES[args.shape]
    if args.toy:
        SHAPES["1b"] = SHAPES["toy"]
        args.steps, args.batch, args.seq, args.gen_batch, args.prompt, args.new_tokens = 2, 2, 32, 4, 8, 4
    if args.child:
        reset(args.device)  # peak memory counts from here: the model, its gradients, optimiser state, activations
        print(json.dumps(RUN[args.child](args)), flush=True)
        return
    rows = {}
    for m in (args.only.split(",") if args.only else MEASUREMENTS):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", m]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(json.dumps({"measurement": m, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
            continue
        rows[m] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(rows[m]), flush=True)
    print(json.dumps({"summary": summary(rows), "device": torch.cuda.get_device_name() if args.device.startswith(
        "cuda") else "cpu", "toy": args.toy}))


if __name__ == "__main__":
    main()
