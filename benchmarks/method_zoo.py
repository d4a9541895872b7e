"""Measurements behind docs/methods.md for the language-model method zoo (not tests).

    python benchmarks/method_zoo.py cost  [--repeats 3] [--methods ga flat rt …]
        seconds per optimiser step of every registered LM method (or of --methods), relative to GA
        (embedded benchmark, forget10/retain90, lr 2e-4, batch 8, 5 epochs, default retain terms);
        setup_s is the time spent outside the training loop (e.g. AltPO's one-off generation of
        alternates). A step-based post-hoc method (RT) is timed on its own steps, applied to GA's
        θ_u; CRU is not step-based and is skipped.
    python benchmarks/method_zoo.py sweep --methods ga npo wga tnpo --lrs 3e-5 6e-5 8e-5 1e-4 1.3e-4
        forget ES-exact, retain ES-exact and MU per (method, learning rate): compare methods at
        matched forget ES-exact instead of at one shared learning rate.
    python benchmarks/method_zoo.py squeeze --runs '{"method":"ga","lr":1e-4}' '{"method":"bs-t+none","lr":1e-4}'
        the BS-T check: mean per-token log-prob of the forget target, of θ_o's own top beam
        alternatives (target excluded), of the paraphrased answer, and the log of the mass
        θ_u puts on θ_o's top-5 non-target tokens at each target position — before and after.

Everything runs on the embedded benchmark under $UNLEARNKIT_HOME (built on first use), one
CPU thread. One JSON line per measurement on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings

import torch

warnings.filterwarnings("ignore")
torch.set_num_threads(1)

BASE = {"lr": 2e-4, "epochs": 5, "batch_size": 8}


def setup():
    import transformers

    from unlearnkit.data.tofu import QASource
    from unlearnkit.models.build import build_models

    transformers.logging.set_verbosity_error()
    ms = build_models()
    return QASource(ms.data_dir), str(ms.original)


def run_method(src, original, name: str, over: dict):
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model

    model, tok = load_model(original)
    spec, retain = resolve(name)
    params = make_params(spec, {**BASE, **over}, retain)
    log = unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"), src.refusals)
    return model, tok, log


def post_hoc_step_seconds(src, original, name: str) -> float | None:
    """Seconds per optimiser step of a step-based post-hoc method (its report has steps and wall_time),
    applied to GA's θ_u with its default params; None for a method that is not step-based."""
    from unlearnkit.methods import get_method
    from unlearnkit.methods.llm.posthoc import PostHocContext

    if name == "cru":
        return None
    spec = get_method(name, "llm")
    unlearned, tok, _ = run_method(src, original, "ga", {})
    ctx = PostHocContext(original=None, unlearned=unlearned, tokenizer=tok, source=src, forget="forget10",
                         reference=None, eval_config=None)
    _, report = spec.fn.apply(ctx, spec.params())
    return report["wall_time"] / report["steps"]


def cost(args) -> None:
    import time

    from unlearnkit.methods import get_method, methods_for
    from unlearnkit.methods.llm.posthoc import is_post_hoc

    src, original = setup()
    names = ["ga"] + [n for n in (args.methods or [s.name for s in methods_for("llm")]) if n != "ga"]
    per: dict[str, list[float]] = {}
    setup_s: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for n in names:
            if is_post_hoc(get_method(n, "llm")):
                sec = post_hoc_step_seconds(src, original, n)
                if sec is not None:
                    per.setdefault(n, []).append(sec)
                continue
            t0 = time.perf_counter()
            _, _, log = run_method(src, original, n, {})
            setup_s.setdefault(n, []).append(time.perf_counter() - t0 - log.wall_time)
            per.setdefault(n, []).append(log.wall_time / len(log.steps))
    ga = statistics.median(per["ga"])
    for n in names:
        if n not in per:
            print(json.dumps({"method": n, "note": "not step-based: no cost per step"}), flush=True)
            continue
        m = statistics.median(per[n])
        row = {"method": n, "s_per_step": round(m, 4), "x_ga": round(m / ga, 2)}
        if n in setup_s:
            row["setup_s"] = [round(x, 2) for x in setup_s[n]]
        print(json.dumps(row), flush=True)


def sweep(args) -> None:
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.tasks.tofu_eval import evaluate

    src, original = setup()
    for m in args.methods:
        for lr in args.lrs:
            model, tok, log = run_method(src, original, m, {"lr": lr})
            res = evaluate(model, tok, src, EvalConfig(cache=False))
            print(json.dumps({"method": m, "lr": lr, "forget_es_exact": round(res.value("forget.es_exact"), 3),
                              "retain_es_exact": round(res.value("retain.es_exact"), 3),
                              "mu": round(res.value("mu"), 3)}), flush=True)


def squeeze(args) -> None:
    from unlearnkit.data.prompts import Encoded, collate, encode_answer, encode_prompt
    from unlearnkit.methods.llm.base import token_logprobs
    from unlearnkit.models.lm import load_model

    src, original = setup()
    model, tok = load_model(original)
    eos, pad = tok.eos_token_id, tok.pad_token_id
    probe = []
    for rec in src.split("forget10")[: args.n]:
        p = encode_prompt(tok, rec["question"])
        target = encode_answer(tok, rec["answer"])
        ids = torch.tensor([p])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=8, num_return_sequences=8,
                                 do_sample=False, max_new_tokens=40, eos_token_id=eos, pad_token_id=pad,
                                 top_k=None, top_p=None, temperature=None)[:, len(p):].tolist()
        alts = []
        for seq in out:
            seq = seq[: seq.index(eos) + 1] if eos in seq else seq
            if seq != target and seq not in alts:
                alts.append(seq)
        probe.append({"prompt": p, "target": target, "alts": alts[:5],
                      "para": encode_answer(tok, rec["paraphrased_answer"])})

    @torch.no_grad()
    def logits_of(m, prompt, answers):
        b = collate([Encoded(prompt, a) for a in answers], pad)
        return m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"]

    def mean_lp(m, prompt, answers):
        lg, labels = logits_of(m, prompt, answers)
        lp, mask = token_logprobs(lg, labels)
        return ((lp * mask).sum(-1) / mask.sum(-1)).tolist()

    # θ_o's top-5 non-target tokens at every target position
    for x in probe:
        lg, labels = logits_of(model, x["prompt"], [x["target"]])
        lab = labels[0, 1:]
        x["sets"] = [(i, [v for v in lg[0, i].topk(6).indices.tolist() if v != lab[i].item()][:5])
                     for i in (lab != -100).nonzero().flatten().tolist()]

    def measure(m) -> dict:
        t, a, pa, mass = [], [], [], []
        for x in probe:
            t += mean_lp(m, x["prompt"], [x["target"]])
            a += mean_lp(m, x["prompt"], x["alts"]) if x["alts"] else []
            pa += mean_lp(m, x["prompt"], [x["para"]])
            lg, _ = logits_of(m, x["prompt"], [x["target"]])
            logp = torch.log_softmax(lg[0, :-1].float(), -1)
            mass += [torch.logsumexp(logp[i, vs], 0).item() for i, vs in x["sets"]]
        avg = lambda v: round(sum(v) / len(v), 3)  # noqa: E731
        return {"target": avg(t), "alternatives": avg(a), "paraphrase": avg(pa), "alt_token_mass": avg(mass)}

    print(json.dumps({"model": "original", **measure(model)}), flush=True)
    for r in args.runs:
        over = json.loads(r)
        name = over.pop("method")
        m, _, _ = run_method(src, original, name, over)
        print(json.dumps({"model": name, **over, **measure(m)}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--methods", nargs="+", default=None, help="methods to time (default: every LM method); GA always")
    s = sub.add_parser("sweep")
    s.add_argument("--methods", nargs="+", default=["ga", "npo", "wga", "tnpo", "wtnpo", "satimp"])
    s.add_argument("--lrs", nargs="+", type=float, default=[3e-5, 6e-5, 8e-5, 1e-4, 1.3e-4, 2e-4])
    q = sub.add_parser("squeeze")
    q.add_argument("--n", type=int, default=40, help="forget samples probed")
    q.add_argument("--runs", nargs="+", default=['{"method": "ga", "lr": 1e-4}', '{"method": "bs-t+none", "lr": 1e-4}'])
    args = p.parse_args()
    {"cost": cost, "sweep": sweep, "squeeze": squeeze}[args.what](args)


if __name__ == "__main__":
    main()
