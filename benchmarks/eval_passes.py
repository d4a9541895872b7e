"""Benchmark: our one-pass-per-variant evaluation vs a naive one-pass-per-metric evaluation.

The naive evaluator computes each TOFU metric the way common tools do: every metric runs its own
forward passes over full (batch, seq, vocab) logits — probability, ES-exact, ES-perturb, EM,
paraphrased probability, truth ratio, normalised probability, the four MIA attacks, the Mem
composite's components, FQ's and PrivLeak's inputs — with the same batching. Both use the same
greedy generations for ROUGE-L (timed separately). The script checks that every aggregate
agrees (≤ 1e-6) and prints the speed ratio.

    python benchmarks/eval_passes.py [--model PATH] [--repeats 3]

Default model: the embedded θ_o (built if needed). Caches are disabled for the timing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from unlearnkit import metrics as M
from unlearnkit.data.prompts import IGNORE, collate, encode_pair
from unlearnkit.data.tofu import QASource
from unlearnkit.engine.generate import generate_answers
from unlearnkit.models.lm import load_model
from unlearnkit.tasks import tofu_eval as E


@torch.no_grad()
def naive_pass(model, tok, pairs, batch_size=32):
    """Full-logits forward pass; per-sample (logprobs, correct, z)."""
    enc = [encode_pair(tok, q, a) for q, a in pairs]
    out = []
    for s in range(0, len(enc), batch_size):
        chunk = enc[s : s + batch_size]
        b = collate(chunk, tok.pad_token_id)
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1)
        tgt = b["labels"][:, 1:]
        for i in range(len(chunk)):
            m = tgt[i] != IGNORE
            lp_all = logp[i][m]
            t = tgt[i][m]
            lp = lp_all.gather(1, t[:, None]).squeeze(1)
            p = lp_all.exp()
            mu = (p * lp_all).sum(-1)
            sd = ((p * lp_all.square()).sum(-1) - mu.square()).clamp_min(0).sqrt().clamp_min(1e-8)
            out.append((lp.double().numpy(), (logits[i][m].argmax(-1) == t).numpy(), ((lp - mu) / sd).double().numpy()))
    return out


def naive_evaluate(model, tok, src, cfg, gens):
    sets = {role: src.split(split, fields=E.SET_FIELDS[role]) for role, split in E.eval_sets(cfg.forget).items()}
    P = lambda role, v: naive_pass(model, tok, E.variant_pairs(sets[role], v), cfg.batch_size)  # noqa: E731

    def groups(role, flat):
        out, s = [], 0
        for r in sets[role]:
            k = len(r["perturbed_answer"])
            out.append([x[0].mean() for x in flat[s : s + k]])
            s += k
        return out

    def tr(role, correct_variant):
        a = [x[0].mean() for x in P(role, correct_variant)]
        return [M.truth_ratio(ai, bi) for ai, bi in zip(a, groups(role, P(role, "qpert")))]

    agg = {}
    for role in ("forget", "retain"):
        agg[f"{role}.prob"] = np.mean([M.probability(x[0]) for x in P(role, "qa")])
        agg[f"{role}.es_exact"] = np.mean([M.extraction_strength(x[1]) for x in P(role, "qa")])
        agg[f"{role}.es_perturb"] = np.mean([M.extraction_strength(x[1]) for x in P(role, "pqa")])
        agg[f"{role}.em"] = np.mean([M.exact_memorization(x[1]) for x in P(role, "qa")])
        agg[f"{role}.para_prob"] = np.mean([M.probability(x[0]) for x in P(role, "qpa")])
        agg[f"{role}.rouge"] = np.mean(M.rouge_l_recall_batch(gens[role], [r["answer"] for r in sets[role]]))
    agg["forget.truth_ratio"] = M.truth_ratio_forget(tr("forget", "qpa"))
    agg["retain.truth_ratio"] = M.truth_ratio_retain(tr("retain", "qpa"))
    for role in ("ra", "wf"):
        a = [x[0].mean() for x in P(role, "qa")]
        agg[f"{role}.norm_prob"] = np.mean([M.normalized_probability(ai, bi) for ai, bi in zip(a, groups(role, P(role, "qpert")))])
        agg[f"{role}.truth_ratio"] = M.truth_ratio_retain(tr(role, "qa"))
        agg[f"{role}.rouge"] = np.mean(M.rouge_l_recall_batch(gens[role], [r["answer"] for r in sets[role]]))
    for attack, fn in (("loss", lambda x, r: M.mia_loss_score(x[0])), ("zlib", lambda x, r: M.mia_zlib_score(x[0], r["answer"])),
                       ("min_k", lambda x, r: M.mia_min_k_score(x[0], cfg.min_k)),
                       ("min_k_plus_plus", lambda x, r: M.mia_min_k_plus_plus_score(x[2], cfg.min_k))):
        mem = [fn(x, r) for x, r in zip(P("forget", "qa"), sets["forget"])]
        non = [fn(x, r) for x, r in zip(P("holdout", "qa"), sets["holdout"])]
        agg[f"mia.auc_{attack}"] = M.mia_auc(mem, non)
    agg["mu"] = M.model_utility([agg[k] for k in ("retain.prob", "retain.rouge", "retain.truth_ratio", "ra.norm_prob",
                                                   "ra.rouge", "ra.truth_ratio", "wf.norm_prob", "wf.rouge", "wf.truth_ratio")])
    es = np.mean([M.extraction_strength(x[1]) for x in P("forget", "qa")])
    em = np.mean([M.exact_memorization(x[1]) for x in P("forget", "qa")])
    pp = np.mean([M.probability(x[0]) for x in P("forget", "qpa")])
    agg["mem"] = M.mem_util_agg(es, em, pp, M.truth_ratio_retain(tr("forget", "qpa")), agg["mu"]).mem
    agg["fq_input"] = np.mean(tr("forget", "qpa"))  # FQ re-derives the forget truth ratios once more
    return agg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model directory (default: the embedded θ_o)")
    ap.add_argument("--data", help="TOFU-format data directory (default: the embedded set)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    args = ap.parse_args()
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.model is None or args.data is None:
        from unlearnkit.models.build import build_models

        ms = build_models()
        args.model, args.data = args.model or str(ms.original), args.data or str(ms.data_dir)
    model, tok = load_model(args.model)
    src = QASource(args.data)
    cfg = E.EvalConfig(max_new_tokens=args.max_new_tokens, cache=False)
    E.evaluate(model, tok, src, cfg)  # warm-up

    t_gen = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        gens = {role: generate_answers(model, tok, [r["question"] for r in src.split(split)], cfg.max_new_tokens,
                                       cfg.generation_batch_size)
                for role, split in E.eval_sets(cfg.forget).items() if role in E.GENERATE}
        t_gen.append(time.perf_counter() - t0)
    t_ours, t_naive = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = E.evaluate(model, tok, src, cfg)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive = naive_evaluate(model, tok, src, cfg, gens)
        t_naive.append(time.perf_counter() - t0 + min(t_gen))  # the naive evaluator generates too
    worst = 0.0
    for k, v in naive.items():
        if k == "fq_input":
            continue
        diff = abs(ours.value(k) - v)
        worst = max(worst, diff)
        assert diff <= 1e-6, (k, ours.value(k), v)
    o, n, g = min(t_ours), min(t_naive), min(t_gen)
    print(f"model {args.model}")
    print(f"aggregates compared: {len(naive) - 1}, max |difference| = {worst:.2e} (≤ 1e-6 required)")
    print(f"ours  (one pass per variant): {o:.2f}s   naive (one pass per metric): {n:.2f}s   ratio {n / o:.2f}x")
    print(f"of which greedy generation for ROUGE (same in both): {g:.2f}s;"
          f" forward passes only: ours {o - g:.2f}s, naive {n - g:.2f}s, ratio {(n - g) / max(o - g, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
