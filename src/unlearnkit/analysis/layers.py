"""Layer-wise patching sweep and CRU (SPEC §3 CRU, §4; seed: "On the Fragility of Latent Knowledge").

**Patching.** θ_o with the tensors of one group g (a transformer layer, or the embedding / the
head; see :mod:`unlearnkit.analysis.groups`) taken from θ_u:

    θ_{o←u}[g] = θ_u on the tensors of g,  θ_o everywhere else.

The sweep evaluates FQ, MU and forget ES of θ_{o←u}[l] for every layer l; the seed finds a
U-shape in MU (middle layers hurt utility most).

**CRU.** Rank the groups by rank(FQ) + rank(MU) of their patched models on a *validation*
half of the benchmark (rank 1 = best; values equal after rounding MU to 3 and ln p to 2 decimals are ties
and share the average rank; order among equal sums: higher FQ, then higher MU); keep the top-k groups from θ_u and the rest from θ_o; choose k on
validation by the same rank-sum criterion over the candidates k = 0..K (k = 0 is θ_o, k = K is
θ_u when the units are all groups). Reported on the *test* half: θ_o, θ_u and the CRU model.

**Validation / test halves.** Subjects of each evaluation set alternate between the halves
(embedded data: records are grouped by the subject name in the question, from the generator's
meta.json; TOFU layout: blocks of 20 records per author when the split size is a multiple of 20;
otherwise single records alternate). FQ on a half compares with θ_r on the same half.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unlearnkit.analysis.groups import LayerMap, locate_layers
from unlearnkit.data.tofu import QASource
from unlearnkit.errors import UnlearnkitError

SUMMARY_KEYS = {
    "fq": "fq", "fq_log_p": "fq_log_p", "mu": "mu", "forget_es_exact": "forget.es_exact",
    "forget_es_perturb": "forget.es_perturb", "retain_es_exact": "retain.es_exact", "privleak": "privleak",
    "mem": "mem", "agg": "agg",
}

# ---------------------------------------------------------------------------------------------
# Patching


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (each tied tensor once) and persistent buffers, by name."""
    out = dict(model.named_parameters())
    persistent = set(model.state_dict())
    out.update({n: b for n, b in model.named_buffers() if n in persistent})
    return out


def group_tensor_names(model: torch.nn.Module, groups: Iterable[str], layer_map: LayerMap | None = None) -> list[str]:
    lm = layer_map or locate_layers(model)
    want = set(groups)
    unknown = want - set(lm.groups())
    if unknown:
        raise UnlearnkitError(f"unknown parameter group(s) {sorted(unknown)}: the model has {', '.join(lm.groups())}")
    return [n for n in _tensors(model) if lm.group_of(n) in want]


def _check_same_architecture(a: torch.nn.Module, b: torch.nn.Module) -> None:
    ta, tb = _tensors(a), _tensors(b)
    if set(ta) != set(tb) or any(ta[n].shape != tb[n].shape for n in ta):
        raise UnlearnkitError("θ_u and θ_o have different architectures (tensor names or shapes differ): patch an "
                              "unlearned model with the original it was made from")


@contextlib.contextmanager
def patched(original: torch.nn.Module, unlearned: torch.nn.Module, groups: Iterable[str],
            layer_map: LayerMap | None = None) -> Iterator[torch.nn.Module]:
    """``original`` with the tensors of ``groups`` copied from ``unlearned``; restored on exit."""
    _check_same_architecture(original, unlearned)
    names = group_tensor_names(original, groups, layer_map)
    to, tu = _tensors(original), _tensors(unlearned)
    saved = {n: to[n].detach().clone() for n in names}
    try:
        with torch.no_grad():
            for n in names:
                to[n].copy_(tu[n])
        yield original
    finally:
        with torch.no_grad():
            for n in names:
                to[n].copy_(saved[n])


def patched_copy(original: torch.nn.Module, unlearned: torch.nn.Module, groups: Iterable[str],
                 layer_map: LayerMap | None = None) -> torch.nn.Module:
    """A new model: θ_o with ``groups`` from θ_u (the inputs are not modified)."""
    with patched(original, unlearned, groups, layer_map) as m:
        return copy.deepcopy(m)


def relative_change(original: torch.nn.Module, unlearned: torch.nn.Module,
                    layer_map: LayerMap | None = None) -> dict[str, float]:
    """Per group ‖θ_u − θ_o‖ / ‖θ_o‖ over its tensors: how far unlearning moved each group."""
    lm = layer_map or locate_layers(original)
    to, tu = _tensors(original), _tensors(unlearned)
    num: dict[str, float] = {g: 0.0 for g in lm.groups()}
    den: dict[str, float] = {g: 0.0 for g in lm.groups()}
    for n, t in to.items():
        if not t.is_floating_point():
            continue
        g = lm.group_of(n)
        num[g] += float((tu[n].double() - t.double()).square().sum())
        den[g] += float(t.double().square().sum())
    return {g: (num[g] / den[g]) ** 0.5 if den[g] else 0.0 for g in lm.groups()}


def transformer_layers(layer_map: LayerMap, layers: Iterable[int] | None = None) -> list[str]:
    idx = list(range(layer_map.n_layers)) if layers is None else [layer_map.check_layer(int(i)) for i in layers]
    return [f"layer.{i}" for i in idx]


# ---------------------------------------------------------------------------------------------
# Validation / test halves


def _subject_names(source: QASource) -> list[str] | None:
    if source.path is None or not (source.path / "meta.json").is_file():
        return None
    from unlearnkit.io import read_json

    subj = read_json(source.path / "meta.json").get("subjects", {})
    names = {n for v in subj.values() for n in v}
    return sorted(names, key=len, reverse=True) or None


def subject_blocks(records: list[dict], names: list[str] | None) -> list[list[int]]:
    """Record indices grouped by subject, in first-appearance order."""
    if names:
        blocks: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            who = next((n for n in names if n in r["question"]), f"#{i}")
            blocks.setdefault(who, []).append(i)
        return list(blocks.values())
    size = 20 if len(records) % 20 == 0 and len(records) >= 40 else 1  # TOFU: 20 QA pairs per author
    return [list(range(s, min(s + size, len(records)))) for s in range(0, len(records), size)]


class HalfSource:
    """One half (0 = validation, 1 = test) of every split of a :class:`QASource`, by alternating subjects."""

    def __init__(self, source: QASource, part: int) -> None:
        self.source, self.part = source, part
        self.location = f"{source.location}#half{part}"
        self._names = _subject_names(source)

    @property
    def refusals(self) -> list[str]:
        return self.source.refusals

    def split(self, name: str, fields: tuple[str, ...] | None = None) -> list[dict]:
        recs = self.source.split(name, fields)
        blocks = subject_blocks(recs, self._names)
        if len(blocks) < 2:
            raise UnlearnkitError(f"split {name!r} has one subject: it cannot be halved into validation and test")
        return [recs[i] for j, b in enumerate(blocks) if j % 2 == self.part for i in b]


# ---------------------------------------------------------------------------------------------
# Sweep and CRU


def summarise(res) -> dict[str, float]:
    return {k: res.get(v) for k, v in SUMMARY_KEYS.items()}


def evaluate_in_memory(model, tok, source, eval_cfg, ref_res):
    from unlearnkit.engine.evaluate import compare_to_reference, evaluate, state_fingerprint

    res = evaluate(model, tok, source, eval_cfg, model_id="mem-" + state_fingerprint(model))
    return compare_to_reference(res, ref_res)


def layer_sweep(original, unlearned, tok, source, eval_cfg, ref_res, units: list[str],
                say: Callable[[str], None] = lambda s: None) -> dict[str, dict[str, float]]:
    """Metrics of θ_o with each unit (group) taken from θ_u."""
    lm = locate_layers(original)
    out = {}
    for u in units:
        t0 = time.perf_counter()
        with patched(original, unlearned, [u], lm) as m:
            out[u] = summarise(evaluate_in_memory(m, tok, source, eval_cfg, ref_res))
        say(f"  θ_o ← θ_u[{u}]: MU {out[u]['mu']:.4f}  FQ(ln p) {out[u]['fq_log_p']:.3f}  "
            f"forget ES {out[u]['forget_es_exact']:.3f}  ({time.perf_counter() - t0:.1f}s)")
    return out


# Values equal after rounding to these steps are ties when ranking (numerical noise, e.g. from patching a norm
# weight that barely moved, must not decide a rank): MU to 1e-3, FQ to 0.01 in ln p.
MU_TIE, FQ_TIE = 1e-3, 1e-2


def _ranks(values: list[float], tie: float = 0.0) -> np.ndarray:
    """Rank 1 = largest; values equal after rounding to ``tie`` share the average rank."""
    from scipy.stats import rankdata

    return rankdata([-(round(v / tie) if tie else v) for v in values], method="average")


def rank_units(sweep: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Units ordered by rank(FQ) + rank(MU) (ascending); ties: higher FQ, then higher MU, then model order."""
    units = list(sweep)
    fq = [sweep[u]["fq_log_p"] for u in units]
    mu = [sweep[u]["mu"] for u in units]
    rf, rm = _ranks(fq, FQ_TIE), _ranks(mu, MU_TIE)
    rows = [{"unit": u, "rank_fq": float(rf[i]), "rank_mu": float(rm[i]), "score": float(rf[i] + rm[i]),
             "fq_log_p": fq[i], "mu": mu[i], "order": i} for i, u in enumerate(units)]
    return sorted(rows, key=lambda r: (r["score"], -r["fq_log_p"], -r["mu"], r["order"]))


def choose_k(candidates: list[dict[str, float]]) -> int:
    """Index k with the best rank(FQ) + rank(MU) among the candidates; ties: higher FQ, then smaller k."""
    rf = _ranks([c["fq_log_p"] for c in candidates], FQ_TIE)
    rm = _ranks([c["mu"] for c in candidates], MU_TIE)
    return min(range(len(candidates)), key=lambda k: (rf[k] + rm[k], -candidates[k]["fq_log_p"], k))


def cru(original, unlearned, tok, val_source, eval_cfg, ref_val, units: list[str] | None = None, k: int | None = None,
        say: Callable[[str], None] = lambda s: None) -> tuple[list[str], dict]:
    """CRU selection on validation: returns (groups kept from θ_u, report)."""
    lm = locate_layers(original)
    units = units or lm.groups()
    if k is not None and not 0 <= k <= len(units):
        raise UnlearnkitError(f"CRU k={k} is out of range: choose 0..{len(units)} (the number of candidate groups)")
    say(f"CRU: patching sweep over {len(units)} groups on the validation half")
    sweep = layer_sweep(original, unlearned, tok, val_source, eval_cfg, ref_val, units, say)
    ranking = rank_units(sweep)
    order = [r["unit"] for r in ranking]
    ks = range(len(units) + 1) if k is None else [k]
    cands = []
    for kk in ks:
        with patched(original, unlearned, order[:kk], lm) as m:
            s = summarise(evaluate_in_memory(m, tok, val_source, eval_cfg, ref_val))
        cands.append({"k": kk, "groups": order[:kk], **s})
        say(f"  k={kk}: MU {s['mu']:.4f}  FQ(ln p) {s['fq_log_p']:.3f}  forget ES {s['forget_es_exact']:.3f}")
    chosen = cands[choose_k(cands)] if k is None else cands[0]
    report = {"units": units, "sweep_validation": sweep, "ranking": ranking, "candidates_validation": cands,
              "k": chosen["k"], "groups_from_unlearned": chosen["groups"],
              "k_chosen_on": "validation" if k is None else "given"}
    return chosen["groups"], report


# ---------------------------------------------------------------------------------------------
# `unlearnkit layers`


def layers_main(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from unlearnkit.analysis.track import resolve_benchmark
    from unlearnkit.config import parse_overrides
    from unlearnkit.engine.evaluate import EvalConfig, compare_to_reference, evaluate, state_fingerprint
    from unlearnkit.io import atomic_write_json, home
    from unlearnkit.models.lm import load_model, pick_device
    from unlearnkit.results.provenance import provenance

    overrides = parse_overrides(args.overrides)
    if overrides and not args.method:
        raise UnlearnkitError("key=value hyperparameters go with --method (θ_u made here); --unlearned is a saved model")
    layers = None
    if args.layers:
        try:
            layers = [int(x) for x in args.layers.split(",") if x.strip()]
        except ValueError:
            raise UnlearnkitError(f"--layers takes comma-separated layer indices (e.g. 0,2), got {args.layers!r}") from None
    if args.max_new_tokens <= 0:
        raise UnlearnkitError(f"--max-new-tokens must be ≥ 1, got {args.max_new_tokens}")
    if args.k is not None and not args.cru:
        raise UnlearnkitError("--k is a CRU option: add --cru")
    bench = resolve_benchmark(args.benchmark, args.data, args.model, args.reference, args.forget, True, say)
    device = pick_device()
    original, tok = load_model(bench.original, device=device)
    lm = locate_layers(original)
    units = transformer_layers(lm, layers)  # validates indices before any work
    out = Path(args.out) if args.out else home() / "analysis" / f"layers-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.unlearned:
        unlearned, _ = load_model(args.unlearned, device=device)
        made = {"unlearned": args.unlearned}
    else:
        unlearned, made = _make_unlearned(args.method, overrides, bench, device, say)
    _check_same_architecture(original, unlearned)
    cfg = EvalConfig(forget=bench.forget, max_new_tokens=args.max_new_tokens)
    reference, _ = load_model(bench.reference, device=device)

    def ref_on(src):
        r = evaluate(reference, tok, src, cfg, model_id="mem-" + state_fingerprint(reference))
        return compare_to_reference(r, r)

    ref_res = ref_on(bench.source)
    base = {"original": summarise(evaluate_in_memory(original, tok, bench.source, cfg, ref_res)),
            "unlearned": summarise(evaluate_in_memory(unlearned, tok, bench.source, cfg, ref_res))}
    say(f"patching sweep over {len(units) + 2} groups (θ_o: MU {base['original']['mu']:.4f}, "
        f"θ_u: MU {base['unlearned']['mu']:.4f})")
    sweep = layer_sweep(original, unlearned, tok, bench.source, cfg, ref_res,
                        ["embedding", *units, "head"] if layers is None else units, say)
    doc: dict[str, Any] = {"meta": provenance({"command": "layers", "model": bench.original, "data": bench.data,
                                               "forget": bench.forget, "reference": bench.reference, **made,
                                               "max_new_tokens": args.max_new_tokens}),
                           "layer_path": lm.path, "n_layers": lm.n_layers, "tied_embeddings": lm.tied_embeddings,
                           "baselines": base, "sweep": sweep, "relative_change": relative_change(original, unlearned, lm)}
    files = []
    if args.cru:
        val, test = HalfSource(bench.source, 0), HalfSource(bench.source, 1)
        ref_val, ref_test = ref_on(val), ref_on(test)
        cands = None if layers is None else units
        groups, report = cru(original, unlearned, tok, val, cfg, ref_val, cands, args.k, say)
        with patched(original, unlearned, groups, lm) as m:
            cru_test = summarise(evaluate_in_memory(m, tok, test, cfg, ref_test))
        report["test"] = {"original": summarise(evaluate_in_memory(original, tok, test, cfg, ref_test)),
                          "unlearned": summarise(evaluate_in_memory(unlearned, tok, test, cfg, ref_test)),
                          "cru": cru_test}
        doc["cru"] = report
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "layers.json", doc)
    files += [out / "layers.json", *write_layer_outputs(doc, out)]
    say("")
    say(layers_table(doc))
    if "cru" in doc:
        say("")
        say(cru_table(doc["cru"]))
    say("\nfiles: " + ", ".join(str(f) for f in files))
    return 0


def _make_unlearned(method: str, overrides: dict, bench, device, say):
    from unlearnkit.data.tofu import RETAIN_OF
    from unlearnkit.engine.unlearn import make_params, resolve, unlearn
    from unlearnkit.models.lm import load_model

    spec, retain = resolve(method)
    params = make_params(spec, overrides, retain)
    model, tok = load_model(bench.original, device=device)
    say(f"unlearning θ_o with {method}")
    log = unlearn(model, tok, spec, params, bench.source.split(bench.forget),
                  bench.source.split(RETAIN_OF[bench.forget]), bench.source.refusals, desc=method)
    return model, {"method": method, "params": params.model_dump(), "unlearn_seconds": round(log.wall_time, 2)}


def layers_table(doc: dict) -> str:
    from unlearnkit.results.tables import format_table

    rel = doc.get("relative_change", {})
    rows = [["θ_o", *_vals(doc["baselines"]["original"]), None],
            ["θ_u", *_vals(doc["baselines"]["unlearned"]), None]]
    rows += [[f"θ_o ← θ_u[{u}]", *_vals(v), rel.get(u)] for u, v in doc["sweep"].items()]
    return format_table(["model", "MU ↑", "FQ (ln p) ↑", "ES-exact forget ↓", "ES-exact retain ↑",
                         "‖Δθ_g‖/‖θ_o,g‖"], rows)


def _vals(s: dict) -> list[float]:
    return [s["mu"], s["fq_log_p"], s["forget_es_exact"], s["retain_es_exact"]]


def cru_table(rep: dict) -> str:
    from unlearnkit.results.tables import format_table

    t = rep["test"]
    rows = [[name, *_vals(t[key])] for name, key in (("θ_o", "original"), ("θ_u", "unlearned"),
                                                     (f"CRU (k={rep['k']})", "cru"))]
    return (f"CRU keeps {rep['k']} group(s) from θ_u: {', '.join(rep['groups_from_unlearned']) or '-'} "
            f"(k chosen on the validation half); test half:\n"
            + format_table(["model", "MU ↑", "FQ (ln p) ↑", "ES-exact forget ↓", "ES-exact retain ↑"], rows))


def write_layer_outputs(doc: dict, out: Path) -> list[Path]:
    from unlearnkit.analysis.plots import pyplot, save_figure, write_csv

    rows = [{"model": "original", **doc["baselines"]["original"]}, {"model": "unlearned", **doc["baselines"]["unlearned"]}]
    rows += [{"model": f"patch:{u}", **v, "relative_change": doc.get("relative_change", {}).get(u)}
             for u, v in doc["sweep"].items()]
    files = [write_csv(out / "layers.csv", rows)]
    plt = pyplot()
    units = list(doc["sweep"])
    x = np.arange(len(units))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, title in zip(axes, ("mu", "fq_log_p", "forget_es_exact"),
                              ("MU ↑", "FQ (ln p) ↑", "forget ES-exact ↓"), strict=True):
        ax.plot(x, [doc["sweep"][u][key] for u in units], marker="o", color="tab:purple", label="θ_o ← θ_u[group]")
        ax.axhline(doc["baselines"]["original"][key], ls="--", color="tab:green", label="θ_o")
        ax.axhline(doc["baselines"]["unlearned"][key], ls="--", color="tab:red", label="θ_u")
        ax.set_xticks(x, [u.replace("layer.", "L") for u in units], rotation=45)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle("Layer-wise patching: θ_o with one group taken from θ_u")
    files.append(save_figure(fig, out / "layers.png"))
    if "cru" in doc:
        rep = doc["cru"]
        files.append(write_csv(out / "cru.csv", [{k: (",".join(v) if isinstance(v, list) else v) for k, v in c.items()}
                                                  for c in rep["candidates_validation"]]))
        fig, ax = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"wspace": 0.45})
        c = rep["candidates_validation"]
        ax[0].plot([r["k"] for r in c], [r["mu"] for r in c], marker="o", label="MU")
        ax2 = ax[0].twinx()
        ax2.plot([r["k"] for r in c], [r["fq_log_p"] for r in c], marker="s", color="tab:red", label="FQ (ln p)")
        ax[0].axvline(rep["k"], color="grey", ls=":")
        ax[0].set_xlabel("k (groups kept from θ_u, best-ranked first)")
        ax[0].set_ylabel("MU (validation)")
        ax2.set_ylabel("FQ ln p (validation)", color="tab:red")
        ax[0].set_title("CRU: choosing k on validation")
        t = rep["test"]
        for name, key, col in (("θ_o", "original", "tab:green"), ("θ_u", "unlearned", "tab:red"),
                               (f"CRU k={rep['k']}", "cru", "tab:purple")):
            ax[1].scatter(t[key]["fq_log_p"], t[key]["mu"], s=60, color=col, label=name)
        ax[1].set_xlabel("FQ (ln p), test half")
        ax[1].set_ylabel("MU, test half")
        ax[1].set_title("MU–FQ trade-off on the test half")
        ax[1].legend(fontsize=8)
        files.append(save_figure(fig, out / "cru.png"))
    return files
