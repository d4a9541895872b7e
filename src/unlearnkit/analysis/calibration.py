"""Calibration by model mixing (seed: "Towards Effective Evaluations and Comparisons").

θ(α) = (1−α)·θ_o + α·θ_u over every floating-point parameter and buffer. Methods trade
unlearning against retention differently, so a raw table compares apples with oranges; instead
find, per method, the largest α ∈ [0, 1] whose retain metric (ES-exact by default) keeps
τ·metric(θ_o), and compare the methods' forget metrics at that α. α = 1 is "no calibration".

The mix is written into ONE working model in place; θ_o and θ_u are read tensor by tensor
(memory-mapped safetensors files, or state dicts already in memory), so no third full copy of
the weights is materialised. ``torch.lerp`` is exact at the end points: α = 0 gives θ_o and
α = 1 gives θ_u bit for bit.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch
from pydantic import Field

from unlearnkit.config import StrictModel
from unlearnkit.errors import UnlearnkitError

RETAIN_METRICS = ("retain.es_exact", "retain.es_perturb", "retain.em", "retain.prob", "mu")


class CalibrationConfig(StrictModel):
    tau: float = Field(0.9, gt=0, le=1, description="keep τ · retain metric of θ_o")
    metric: str = Field("retain.es_exact", description=f"retain metric to hold: one of {', '.join(RETAIN_METRICS)}")
    tol: float = Field(1e-3, gt=0, lt=0.5, description="bisection tolerance on α")
    grid: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
                              description="coarse α grid: sanity check of monotonicity, and the α-curve")

    def model_post_init(self, _ctx) -> None:
        if self.metric not in RETAIN_METRICS:
            raise UnlearnkitError(f"calibration metric {self.metric!r} is not supported: use one of {', '.join(RETAIN_METRICS)}")
        if any(not 0 <= a <= 1 for a in self.grid) or sorted(self.grid) != self.grid or len(self.grid) < 2:
            raise UnlearnkitError("calibration grid must be ≥ 2 increasing values in [0, 1], e.g. [0, 0.5, 1]")


# ---------------------------------------------------------------------------------------------
# Mixing


class _Tensors:
    """Read-only access to a model's tensors: a state dict, or the safetensors files of a directory."""

    def __init__(self, source: Path | str | Mapping[str, torch.Tensor], stack: ExitStack) -> None:
        if isinstance(source, Mapping):
            self._get = source.__getitem__
            self.keys = set(source.keys())
            return
        from safetensors import safe_open

        files = sorted(Path(source).glob("*.safetensors"))
        if not files:
            raise UnlearnkitError(f"{str(source)!r} holds no .safetensors weights to mix")
        handles = {}
        for f in files:
            h = stack.enter_context(safe_open(str(f), framework="pt"))
            for k in h.keys():
                handles[k] = h
        self.keys = set(handles)
        self._get = lambda k: handles[k].get_tensor(k)

    def get(self, k: str) -> torch.Tensor:
        return self._get(k)


def _model_tensors(model) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, by the names used in saved weights (tied tensors once)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            out[name] = t
    return out


class Mixer:
    """Writes θ(α) = lerp(θ_o, θ_u, α) into ``model`` (which has the shared architecture)."""

    def __init__(self, model, theta_o, theta_u) -> None:
        self.model = model
        self._stack = ExitStack()
        self.o, self.u = _Tensors(theta_o, self._stack), _Tensors(theta_u, self._stack)
        if self.o.keys != self.u.keys:
            only = sorted(self.o.keys ^ self.u.keys)[:3]
            raise UnlearnkitError(f"cannot mix models of different architecture: tensors {only} exist in only one of them")
        tensors = _model_tensors(model)
        missing = [n for n, _ in model.named_parameters() if n in tensors and n not in self.o.keys]
        if missing:
            raise UnlearnkitError(f"cannot mix into this model: its tensor {missing[0]!r} is not in the mixed weights "
                                  "(different architecture)")
        # non-persistent buffers (e.g. rotary frequencies) are derived, not saved, and stay as they are
        self.targets = {n: t for n, t in tensors.items() if n in self.o.keys}
        for name in self.targets:
            a, b = self.o.get(name), self.u.get(name)
            if a.shape != self.targets[name].shape:
                raise UnlearnkitError(f"cannot mix into this model: {name!r} has shape {tuple(a.shape)} in the weights "
                                      f"but {tuple(self.targets[name].shape)} in the model (different architecture)")
            if a.shape != b.shape or a.dtype != b.dtype:
                raise UnlearnkitError(f"cannot mix models of different architecture: {name!r} has shape/dtype "
                                      f"{tuple(a.shape)}/{a.dtype} vs {tuple(b.shape)}/{b.dtype}")
        self.alpha: float | None = None

    @torch.no_grad()
    def set(self, alpha: float) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise UnlearnkitError(f"mixing factor α must be in [0, 1], got {alpha}")
        for name, t in self.targets.items():
            a = self.o.get(name)
            if not t.is_floating_point():
                t.copy_(a)
                continue
            b = self.u.get(name)
            t.copy_(torch.lerp(a.to(t.device), b.to(t.device), torch.tensor(alpha, dtype=a.dtype, device=t.device))
                    if a.is_floating_point() else a)
        self.alpha = alpha

    def close(self) -> None:
        self._stack.close()


# ---------------------------------------------------------------------------------------------
# The α search


@dataclass
class AlphaSearch:
    alpha: float
    target: float
    value: float  # metric at alpha
    curve: list[tuple[float, float]] = field(default_factory=list)  # every (α, metric) evaluated, sorted
    monotone: bool = True
    note: str = ""


def search_alpha(f: Callable[[float], float], target: float, grid: list[float] | None = None, tol: float = 1e-3) -> AlphaSearch:
    """Largest α ∈ [0, 1] with f(α) ≥ target, assuming f decreases in α (bisection, to ``tol``).

    A coarse grid is evaluated first: it brackets the crossing and warns when the curve is not
    monotone (then the bisection result is the crossing inside the first bracket that fails).
    """
    grid = grid or [0.0, 0.25, 0.5, 0.75, 1.0]
    seen: dict[float, float] = {}

    def g(a: float) -> float:
        if a not in seen:
            seen[a] = float(f(a))
        return seen[a]

    vals = [g(a) for a in grid]
    monotone = all(v2 <= v1 + 1e-9 for v1, v2 in zip(vals, vals[1:]))
    note = ""
    if not monotone:
        note = "retain metric is not monotone in α on the grid " + ", ".join(f"{a:g}:{v:.4f}" for a, v in zip(grid, vals))
        warnings.warn(note, stacklevel=2)
    if g(1.0) >= target:
        return AlphaSearch(1.0, target, g(1.0), sorted(seen.items()), monotone, note or "no calibration needed (α = 1)")
    if g(0.0) < target:
        return AlphaSearch(0.0, target, g(0.0), sorted(seen.items()), monotone, "even θ_o misses the target")
    lo = 0.0
    for a, v in zip(grid, vals):
        if v >= target:
            lo = a
        else:
            hi = a
            break
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if g(mid) >= target:
            lo = mid
        else:
            hi = mid
    return AlphaSearch(lo, target, g(lo), sorted(seen.items()), monotone, note)


# ---------------------------------------------------------------------------------------------
# Calibrating a finished run


def retain_value(model, tokenizer, source, metric: str, eval_cfg) -> float:
    """The retain metric of the current weights (one teacher-forced pass; full evaluation for MU)."""
    import numpy as np

    from unlearnkit import metrics as M
    from unlearnkit.engine.evaluate import evaluate
    from unlearnkit.engine.passes import teacher_forced_pass

    if metric == "mu":
        return evaluate(model, tokenizer, source, eval_cfg.model_copy(update={"cache": False})).value("mu")
    recs = source.split("retain_perturbed")
    qkey = "paraphrased_question" if metric == "retain.es_perturb" else "question"
    st = teacher_forced_pass(model, tokenizer, [(r[qkey], r["answer"]) for r in recs], eval_cfg.batch_size)
    fn = {"retain.es_exact": lambda i: M.extraction_strength(st.corrects(i)),
          "retain.es_perturb": lambda i: M.extraction_strength(st.corrects(i)),
          "retain.em": lambda i: M.exact_memorization(st.corrects(i)),
          "retain.prob": lambda i: M.probability(st.logprobs(i))}[metric]
    return float(np.mean([fn(i) for i in range(len(recs))]))


def forget_es(model, tokenizer, source, forget: str, batch_size: int) -> float:
    import numpy as np

    from unlearnkit import metrics as M
    from unlearnkit.engine.passes import teacher_forced_pass

    recs = source.split(f"{forget}_perturbed")
    st = teacher_forced_pass(model, tokenizer, [(r["question"], r["answer"]) for r in recs], batch_size)
    return float(np.mean([M.extraction_strength(st.corrects(i)) for i in range(len(recs))]))


def calibrate_run(run_dir: Path, cfg: CalibrationConfig, say: Callable[[str], None] = print):
    """Calibrate every finished method of a run; returns (alphas, uncalibrated table, calibrated table)."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.engine.evaluate import compare_to_reference, evaluate, load_result, save_result
    from unlearnkit.io import atomic_write_json, atomic_write_text, read_json
    from unlearnkit.models.lm import load_model, pick_device
    from unlearnkit.results.plots import plot_alpha_curves
    from unlearnkit.results.provenance import provenance
    from unlearnkit.results.tables import RUN_COLUMNS, run_table
    from unlearnkit.run import RunConfig, entry_name

    run_dir = Path(run_dir)
    if not (run_dir / "paths.json").is_file():
        raise UnlearnkitError(f"{str(run_dir)!r} is not a finished `unlearnkit run` directory (no paths.json): "
                              "run the benchmark first, then calibrate its directory")
    run_cfg = RunConfig.model_validate(read_json(run_dir / "config.json"))
    paths = read_json(run_dir / "paths.json")
    src = QASource(paths["data"])
    orig_res = load_result(run_dir / "results" / "original")
    ref_res = load_result(run_dir / "results" / "retrain")
    target = cfg.tau * orig_res.value(cfg.metric)
    out_dir = run_dir / "calibration" / f"{cfg.metric}-tau{cfg.tau:g}"
    model, tok = load_model(paths["original"], device=pick_device())
    alphas, curves = {}, {}
    uncal, cal = {"Original": ([orig_res], None), "Retrain": ([ref_res], None)}, {}
    for method in run_cfg.methods:
        for seed in run_cfg.seeds:
            entry = entry_name(method, seed)
            model_dir = run_dir / "models" / entry
            if not (run_dir / "results" / entry / "results.json").is_file():
                continue
            if not (model_dir / "config.json").is_file():
                raise UnlearnkitError(f"run entry {entry} has no saved θ_u (save_models=false): rerun with save_models=true")
            uncal.setdefault(method, ([], None))[0].append(load_result(run_dir / "results" / entry))
            done = out_dir / entry
            if (done / "results.json").is_file():
                info = read_json(done / "alpha.json")
                say(f"{entry}: calibrated earlier (α = {info['alpha']:.4f})")
            else:
                mixer = Mixer(model, paths["original"], model_dir)
                try:
                    def probe(a: float, _mixer=mixer) -> float:
                        _mixer.set(a)
                        return retain_value(model, tok, src, cfg.metric, run_cfg.eval)

                    found = search_alpha(probe, target, cfg.grid, cfg.tol)
                    grid_forget = []
                    for a in cfg.grid:
                        mixer.set(a)
                        grid_forget.append(forget_es(model, tok, src, run_cfg.forget, run_cfg.eval.batch_size))
                    mixer.set(found.alpha)
                    res = evaluate(model, tok, src, run_cfg.eval.model_copy(update={"cache": False}))
                    compare_to_reference(res, ref_res)
                finally:
                    mixer.set(0.0)  # the working model is θ_o again
                    mixer.close()
                info = {"alpha": found.alpha, "target": found.target, "value": found.value, "monotone": found.monotone,
                        "note": found.note, "metric": cfg.metric, "tau": cfg.tau,
                        "curve": [list(x) for x in found.curve], "grid": cfg.grid, "grid_forget_es_exact": grid_forget}
                save_result(res, done, provenance(cfg.model_dump(), seed=seed, alpha=found.alpha, run=str(run_dir)))
                atomic_write_json(done / "alpha.json", info)
                warn = "" if found.monotone else "  (warning: not monotone — " + found.note + ")"
                say(f"{entry}: α = {found.alpha:.4f}, {cfg.metric} = {found.value:.4f} ≥ {target:.4f}{warn}")
            info = read_json(done / "alpha.json")
            alphas[entry] = {k: info[k] for k in ("alpha", "value", "target", "monotone", "note")}
            cal.setdefault(method, ([], None))[0].append(load_result(done))
            curves[entry] = {"alpha": [a for a, _ in info["curve"]], "retain": [v for _, v in info["curve"]],
                             "grid_alpha": info["grid"], "forget_es_exact": info["grid_forget_es_exact"],
                             "chosen_alpha": info["alpha"], "target": info["target"]}
    cal_rows = {"Original": uncal["Original"], "Retrain": uncal["Retrain"], **cal}
    cols = [*RUN_COLUMNS, ("α", None)]
    table_u = run_table(uncal, columns=RUN_COLUMNS)
    table_c = _calibrated_table(cal_rows, alphas, run_cfg, cols)
    atomic_write_json(out_dir / "alphas.json", alphas)
    atomic_write_json(out_dir / "curves.json", curves)
    atomic_write_text(out_dir / "table.md", f"Uncalibrated\n\n{table_u}\n\nCalibrated ({cfg.metric} ≥ {cfg.tau:g} · θ_o)\n\n{table_c}\n")
    plot_alpha_curves(curves, cfg.metric, out_dir / "curves.png")
    return out_dir, alphas, table_u, table_c


def _calibrated_table(rows, alphas, run_cfg, cols) -> str:
    import numpy as np

    from unlearnkit.results.tables import format_table
    from unlearnkit.run import entry_name

    out = []
    for name, (results, _) in rows.items():
        vals = [float(np.mean([r.value(k) for r in results])) for _, k in cols if k]
        a = [alphas[entry_name(name, s)]["alpha"] for s in run_cfg.seeds if entry_name(name, s) in alphas]
        out.append([name, *vals, f"{np.mean(a):.4f}" if a else "-"])
    return format_table(["method", *(c for c, _ in cols)], out)
