"""The bad-input catalogue: every command, every kind of mistake a user (or a damaged file) can make.

Each case must end with exit status 2, exactly one line on stderr starting with ``error:`` that
names the problem (the expected fragment), no traceback — and nothing outside the home changed
(the sandbox the command runs in, which holds every input file, is byte-for-byte as before).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from unlearnkit.cli import main

# (case id, argv with placeholders, fragment the one-line error must contain)
CASES: list[tuple[str, list[str], str]] = [
    # --- run (language models): config values, names, files
    ("run-unknown-method", ["run", "methods=[npp]"], "unknown llm method 'npp'"),
    ("run-negative-lr", ["run", "defaults.lr=-1"], "config key 'lr'"),
    ("run-infinite-lr", ["run", "defaults.lr=.inf"], "finite number"),
    ("run-nan-lr", ["run", "defaults.lr=.nan"], "finite number"),
    ("run-huge-lr", ["run", "defaults.lr=1e9"], "config key 'lr'"),
    ("run-seed-overflow", ["run", "seeds=[99999999999999999999]"], "config key 'seeds.0'"),
    ("run-negative-seed", ["run", "seeds=[-1]"], "config key 'seeds.0'"),
    ("run-no-seeds", ["run", "seeds=[]"], "config key 'seeds'"),
    ("run-bad-forget", ["run", "forget=forget7"], "config key 'forget'"),
    ("run-name-escape", ["run", "name=../../escape"], "is not allowed"),
    ("run-name-absolute", ["run", "name=/tmp/elsewhere"], "is not allowed"),
    ("run-name-hidden", ["run", "name=.hidden"], "is not allowed"),
    ("run-empty-config", ["run", "--config", ""], "config"),
    ("run-missing-config", ["run", "--config", "SANDBOX/missing.yaml"], "does not exist"),
    ("run-binary-config", ["run", "--config", "SANDBOX/binary.yaml"], "not a text file"),
    ("run-broken-yaml", ["run", "--config", "SANDBOX/broken.yaml"], "not valid YAML"),
    ("run-list-yaml", ["run", "--config", "SANDBOX/list.yaml"], "must hold a mapping"),
    ("run-unknown-key", ["run", "nonsense=1"], "unknown key"),
    ("run-not-key-value", ["run", "keyonly"], "not of the form key=value"),
    ("run-empty-key", ["run", "=3"], "empty key"),
    ("run-methods-twice", ["run", "methods=[ga,ga]"], "listed twice"),
    ("run-eval-forget-mismatch", ["run", "forget=forget10", "eval.forget=forget05"], "differs from forget"),
    ("run-params-for-absent-method", ["run", "method_params.kl.lr=0.001", "methods=[ga]"], "not in `methods`"),
    ("run-tofu-without-models", ["run", "benchmark=tofu"], "needs original=PATH"),
    ("run-continual-zero", ["run", "continual=0"], "config key 'continual'"),
    ("run-post-hoc-base", ["run", "methods=[cru]", "method_params.cru.base=cru"], "post-hoc too"),
    ("run-post-hoc-retain", ["run", "methods=[cru+kl]"], "give the retain term"),
    ("run-loss-selection", ["run", "defaults.loss_selection=2"], "loss_selection"),
    ("run-epochs-float", ["run", "defaults.epochs=1.5"], "config key 'epochs'"),
    ("run-unknown-retain", ["run", "methods=[ga+xyz]"], "unknown retain term"),
    ("run-unknown-flag", ["run", "--bogus"], "unrecognized arguments"),
    ("run-no-target", ["run", "vision", "--bogus"], "unrecognized arguments"),
    # --- run: tasks, metric conventions, evaluation during training
    ("run-unknown-task", ["run", "task=mues"], "unknown task 'mues'. Did you mean muse"),
    ("run-task-forget", ["run", "task=muse", "forget=forget10"], "task muse has no forget split 'forget10'"),
    ("run-task-benchmark", ["run", "task=wmdp", "benchmark=tofu"], "runs on benchmark=embedded"),
    ("run-task-option", ["run", "task=muse", "task_options.verbmem_max_new_tokens=0"], "task_options.verbmem_max_new_tokens"),
    ("run-task-unknown-option", ["run", "task=wmdp", "task_options.domain=physics"], "task_options.domain"),
    ("run-post-hoc-other-task", ["run", "task=muse", "methods=[cru]"], "use it with task=tofu"),
    ("run-bad-convention", ["run", "metrics.convention=tofu2024"], "convention"),
    ("run-eval-every-zero", ["run", "eval_every.every=0", "eval_every.metrics=[forget.es_exact]"], "eval_every.every"),
    ("run-eval-every-no-metrics", ["run", "eval_every.every=2"], "eval_every.metrics"),
    ("run-eval-every-unknown-metric", ["run", "eval_every.every=2", "eval_every.metrics=[forget.rouge]"], "no probe metric 'forget.rouge'"),
    ("run-eval-every-bad-select", ["run", "eval_every.every=2", "eval_every.metrics=[forget.es_exact]",
                                   "eval_every.select.metric=mu", "eval_every.select.keep=retain.roug"], "no probe metric 'retain.roug'"),
    ("run-eval-every-continual", ["run", "continual=2", "eval_every.every=2", "eval_every.metrics=[forget.es_exact]"], "do not combine"),
    # --- run vision
    ("vision-bad-superclass", ["run", "vision", "scenario.superclass=omega"], "superclass 'omega' does not exist"),
    ("vision-unknown-method", ["run", "vision", "--methods", "ft,nope"], "unknown vision method 'nope'"),
    ("vision-negative-lr", ["run", "vision", "method_params.ft.lr=-1"], "method_params.ft.lr"),
    ("vision-bad-scenario", ["run", "vision", "--scenarios", "all_matchd"], "scenarios"),
    ("vision-empty-cifar-dir", ["run", "vision", "--dataset", "cifar10", "--data-dir", "SANDBOX/empty"], "no CIFAR10 files"),
    ("vision-missing-cifar-dir", ["run", "vision", "--dataset", "cifar10", "--data-dir", "SANDBOX/nope"], "does not exist"),
    ("vision-crafted-pickle", ["run", "vision", "--dataset", "cifar10", "--data-dir", "SANDBOX/crafted"], "not a plain CIFAR"),
    ("vision-truncated-pickle", ["run", "vision", "--dataset", "cifar10", "--data-dir", "SANDBOX/truncated"], "damaged"),
    ("vision-bad-seeds", ["run", "vision", "--seeds", "a,b"], "comma-separated integers"),
    ("vision-zero-threads", ["run", "vision", "cpu_threads=0"], "cpu_threads"),
    ("vision-unknown-dataset", ["run", "vision", "--dataset", "mnist"], "invalid choice"),
    # --- eval: models, data, outputs
    ("eval-missing-model", ["eval", "--model", "SANDBOX/no-model", "--no-reference"], "does not exist"),
    ("eval-no-tokenizer", ["eval", "--model", "SANDBOX/no-tokenizer", "--data", "DATA", "--no-reference"], "no tokenizer files"),
    ("eval-damaged-weights", ["eval", "--model", "SANDBOX/damaged", "--data", "DATA", "--no-reference"], "damaged"),
    ("eval-pickled-weights", ["eval", "--model", "SANDBOX/pickled", "--data", "DATA", "--no-reference"], "no .safetensors weights"),
    ("eval-foreign-tokenizer", ["eval", "--model", "SANDBOX/swapped", "--data", "DATA", "--no-reference"], "not the ones the model was saved with"),
    ("eval-missing-data", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/no-data", "--no-reference"], "does not exist"),
    ("eval-truncated-data", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/truncated-data", "--no-reference"], "not valid JSON"),
    ("eval-record-not-object", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/list-record", "--no-reference"], "not an object"),
    ("eval-missing-field", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/no-field", "--no-reference"], "has no field"),
    ("eval-empty-split", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/empty-split", "--no-reference"], "is empty"),
    ("eval-too-long", ["eval", "--model", "ORIGINAL", "--data", "SANDBOX/long-question", "--no-reference"], "longer than the model's context"),
    ("eval-bad-forget", ["eval", "--model", "ORIGINAL", "--forget", "forget7", "--no-reference"], "forget7"),
    ("eval-reference-contradiction", ["eval", "--model", "ORIGINAL", "--reference", "ORIGINAL", "--no-reference"], "contradict"),
    ("eval-foreign-out", ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference", "--out", "SANDBOX/foreign"], "not an unlearnkit output"),
    ("eval-out-is-a-file", ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference", "--out", "SANDBOX/binary.yaml"], "is a file"),
    ("eval-out-cannot-be-created", ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference", "--out", "SANDBOX/binary.yaml/sub"], "cannot write"),
    ("eval-tofu-without-reference", ["eval", "--model", "ORIGINAL", "--benchmark", "tofu", "--data", "DATA"], "need the reference"),
    ("eval-zero-batch", ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference", "batch_size=0"], "batch_size"),
    ("eval-uncached-hub-name", ["eval", "--model", "nobody-org/no-such-model", "--no-reference", "--data", "DATA"], "hub model 'nobody-org/no-such-model'"),
    ("eval-bad-dtype", ["eval", "--model", "ORIGINAL", "--dtype", "float8"], "invalid choice"),
    ("eval-no-model", ["eval"], "the following arguments are required: --model"),
    ("eval-unknown-task", ["eval", "--model", "ORIGINAL", "--task", "mues", "--no-reference"], "unknown task 'mues'"),
    ("eval-task-benchmark", ["eval", "--model", "ORIGINAL", "--task", "muse", "--benchmark", "wmdp", "--no-reference"], "benchmark=muse"),
    ("eval-task-forget", ["eval", "--model", "ORIGINAL", "--task", "wmdp", "--forget", "forget10", "--no-reference"], "no forget split 'forget10'"),
    ("eval-muse-missing-data", ["eval", "--model", "ORIGINAL", "--task", "muse", "--benchmark", "muse", "--data", "SANDBOX/nope", "--no-reference"], "does not exist"),
    # --- unlearn
    ("unlearn-unknown-method", ["unlearn", "--method", "nope", "--model", "ORIGINAL", "--data", "DATA"], "unknown llm method 'nope'"),
    ("unlearn-post-hoc", ["unlearn", "--method", "cru", "--model", "ORIGINAL", "--data", "DATA"], "is post-hoc"),
    ("unlearn-negative-lr", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "lr=-1"], "config key 'lr'"),
    ("unlearn-negative-seed", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "seed=-5"], "config key 'seed'"),
    ("unlearn-foreign-out", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "--out", "SANDBOX/foreign"], "not an unlearnkit output"),
    ("unlearn-bad-forget", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "--forget", "forget3"], "forget3"),
    ("unlearn-rmu-layer", ["unlearn", "--method", "rmu", "--model", "ORIGINAL", "--data", "DATA", "layer=99"], "out of range"),
    ("unlearn-unknown-param", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "beta=3"], "unknown key"),
    ("unlearn-missing-model", ["unlearn", "--method", "ga", "--model", "SANDBOX/no-model", "--data", "DATA"], "does not exist"),
    ("unlearn-lora-zero-rank", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "peft.r=0"], "config key 'peft.r'"),
    ("unlearn-lora-unknown-key", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "peft.rank=4"], "'peft.rank': unknown key"),
    ("unlearn-lora-no-such-module", ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA",
                                     "peft.target_modules=[nope_proj]"], "matches no module"),
    ("unlearn-rmu-lora-off-its-mlps", ["unlearn", "--method", "rmu", "--model", "ORIGINAL", "--data", "DATA",
                                       "peft.target_modules=[q_proj]"], "add those modules to peft.target_modules"),
    ("eval-adapter-without-base", ["eval", "--model", "SANDBOX/adapter-no-base", "--data", "DATA", "--no-reference"], "does not name its base model"),
    ("run-unknown-executor", ["run", "executor.kind=slurm"], "config key 'executor.kind'"),
    # --- calibrate
    ("calibrate-no-such-run", ["calibrate", "--run", "no-such-run-anywhere"], "no run named"),
    ("calibrate-half-written-run", ["calibrate", "--run", "half-written"], "not a finished"),
    ("calibrate-tau-zero", ["calibrate", "--run", "half-written", "tau=0"], "config key 'tau'"),
    ("calibrate-forget-metric", ["calibrate", "--run", "half-written", "metric=forget.es_exact"], "not supported"),
    ("reliability-other-task", ["reliability", "task=muse"], "has no reliability study"),
    ("calibrate-bad-grid", ["calibrate", "--run", "half-written", "grid=[0.5]"], "grid"),
    # --- reliability and sweep
    ("reliability-unknown-intervention", ["reliability", "interventions=[telepathy]"], "unknown intervention"),
    ("reliability-tiny-pool", ["reliability", "methods=[ga]", "epochs=1"], "at least 3"),
    ("reliability-name-escape", ["reliability", "name=../x"], "is not allowed"),
    ("sweep-unknown-knob", ["sweep", "grids.momentum=[0.9]"], "unknown knob"),
    ("sweep-name-escape", ["sweep", "name=a/b"], "is not allowed"),
    # --- analyses
    ("gradient-zero-interval", ["gradient", "--method", "ga", "--every", "0"], "--every must be a positive"),
    ("gradient-no-method", ["gradient", "--model", "ORIGINAL", "--data", "DATA"], "name at least one method"),
    ("gradient-method-twice", ["gradient", "--method", "ga,ga", "--model", "ORIGINAL", "--data", "DATA"], "listed twice"),
    ("gradient-post-hoc", ["gradient", "--method", "cru", "--model", "ORIGINAL", "--data", "DATA"], "is post-hoc"),
    ("gradient-bad-retain-count", ["gradient", "--method", "ga", "--n-retain", "0"], "--n-retain"),
    ("squeeze-zero-samples", ["squeeze", "--method", "ga", "--samples", "0"], "must be positive"),
    ("layers-missing-layer", ["layers", "--unlearned", "ORIGINAL", "--model", "ORIGINAL", "--data", "DATA", "--reference",
                              "REFERENCE", "--layers", "0,5"], "layer 5 does not exist"),
    ("layers-k-without-cru", ["layers", "--unlearned", "ORIGINAL", "--k", "2"], "--k is a CRU option"),
    ("layers-bad-layer-list", ["layers", "--unlearned", "ORIGINAL", "--layers", "a,b"], "comma-separated layer indices"),
    ("layers-overrides-without-method", ["layers", "--unlearned", "ORIGINAL", "lr=1e-3"], "go with --method"),
    ("layers-no-source", ["layers"], "one of the arguments --unlearned --method is required"),
    # --- runs, data, models, ls
    ("runs-show-unknown", ["runs", "show", "no-such-run-anywhere"], "no run named"),
    ("runs-compare-one", ["runs", "compare", "half-written"], "at least two"),
    ("runs-no-action", ["runs"], "choose one of"),
    # --- report
    ("report-unknown-run", ["report", "no-such-run-anywhere"], "no run named"),
    ("report-not-a-run-directory", ["report", "SANDBOX/empty"], "not a finished unlearnkit run directory"),
    ("report-output-is-a-directory", ["report", "half-written", "-o", "SANDBOX/empty"], "is a directory"),
    ("report-output-directory-missing", ["report", "half-written", "-o", "SANDBOX/nope/r.html"], "does not exist"),
    ("report-output-under-a-file", ["report", "half-written", "-o", "SANDBOX/binary.yaml/r.html"], "is not a directory"),
    ("report-empty-output", ["report", "half-written", "-o", ""], "empty path"),
    ("report-no-run", ["report"], "the following arguments are required: RUN"),
    ("run-unknown-tracker", ["run", "tracker=comet"], "config key 'tracker'"),
    ("run-report-not-a-bool", ["run", "report=maybe"], "config key 'report'"),
    ("vision-unknown-tracker", ["run", "vision", "tracker=neptune"], "tracker"),
    ("data-build-foreign-out", ["data", "build", "--out", "SANDBOX/foreign"], "not an unlearnkit output"),
    ("data-build-too-few-subjects", ["data", "build", "data.n_subjects=5"], "config key 'data.n_subjects'"),
    ("models-build-heads", ["models", "build", "model.hidden_size=30"], "divisible"),
    ("models-build-seed", ["models", "build", "data.seed=-1"], "config key 'data.seed'"),
    ("ls-unknown", ["ls", "tasks-that-do-not-exist"], "invalid choice"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
]


# Bad settings of the environment (a launcher, a missing optional package): (case id, environment variables,
# modules made unimportable, argv, fragment). Same checks as CASES.
ENV_CASES: list[tuple[str, dict[str, str], list[str], list[str], str]] = [
    ("unlearn-fsdp1", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, [],
     ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "max_steps=1"], "fsdp_version: 2"),
    ("eval-world-without-master", {"WORLD_SIZE": "2", "RANK": "0"}, [],
     ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference"], "MASTER_ADDR is not set"),
    ("eval-world-not-a-number", {"WORLD_SIZE": "two"}, [],
     ["eval", "--model", "ORIGINAL", "--data", "DATA", "--no-reference"], "WORLD_SIZE='two' is not a number"),
    ("unlearn-lora-without-peft", {}, ["peft"],
     ["unlearn", "--method", "ga", "--model", "ORIGINAL", "--data", "DATA", "peft.r=4"], "pip install peft"),
    ("run-ray-without-ray", {}, ["ray"], ["run", "executor.kind=ray"], 'pip install -e ".[ray]"'),
    ("run-ray-under-a-launcher", {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1"}, [],
     ["run", "executor.kind=ray"], "run the command in one process"),
]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _copy_model(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and f.name not in skip:
            shutil.copy2(f, dst / f.name)
    return dst


def _data_variant(src: Path, dst: Path, split: str, edit) -> Path:
    shutil.copytree(src, dst)
    f = dst / f"{split}.json"
    f.write_text(edit(f.read_text()))
    return dst


@pytest.fixture(scope="module")
def sandbox(tiny_models, tmp_path_factory):
    """Every input a bad command may point at, in one directory whose content must never change."""
    import torch

    from unlearnkit.results.store import write_run_file

    sb = tmp_path_factory.mktemp("sandbox")
    (sb / "binary.yaml").write_bytes(bytes(range(256)))
    (sb / "broken.yaml").write_text("a: [1, 2\n")
    (sb / "list.yaml").write_text("- 1\n- 2\n")
    (sb / "empty").mkdir()
    (sb / "foreign").mkdir()
    (sb / "foreign" / "notes.txt").write_text("mine, not unlearnkit's")
    from .vision_helpers import write_cifar10

    crafted = write_cifar10(sb / "crafted")
    batch = pickle.loads((crafted / "data_batch_1").read_bytes())
    batch[b"data"] = _Payload(sb / "PWNED")
    (crafted / "data_batch_1").write_bytes(pickle.dumps(batch))
    trunc = write_cifar10(sb / "truncated")
    (trunc / "data_batch_1").write_bytes((trunc / "data_batch_1").read_bytes()[:100])
    orig = tiny_models.original
    _copy_model(orig, sb / "no-tokenizer", skip=("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"))
    dmg = _copy_model(orig, sb / "damaged")
    (dmg / "model.safetensors").write_bytes((dmg / "model.safetensors").read_bytes()[:1000])
    pk = _copy_model(orig, sb / "pickled", skip=("model.safetensors",))
    torch.save({"w": _Payload(sb / "PWNED")}, pk / "pytorch_model.bin")
    sw = _copy_model(orig, sb / "swapped")
    tj = json.loads((sw / "tokenizer.json").read_text())
    a, b = sorted(k for k in tj["model"]["vocab"] if len(k) > 3 and not k.startswith("<"))[:2]
    tj["model"]["vocab"][a], tj["model"]["vocab"][b] = tj["model"]["vocab"][b], tj["model"]["vocab"][a]
    (sw / "tokenizer.json").write_text(json.dumps(tj))
    data = tiny_models.data_dir
    _data_variant(data, sb / "truncated-data", "forget10_perturbed", lambda t: t[: len(t) // 2])
    _data_variant(data, sb / "list-record", "forget10_perturbed",
                  lambda t: "\n".join([t.splitlines()[0], "[1, 2]", *t.splitlines()[1:]]) + "\n")
    _data_variant(data, sb / "no-field", "forget10_perturbed",
                  lambda t: "\n".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "paraphrased_answer"})
                                      for x in t.splitlines()) + "\n")
    _data_variant(data, sb / "empty-split", "retain_perturbed", lambda t: "")
    long_q = "Who " + "really " * 400 + "is it?"
    _data_variant(data, sb / "long-question", "forget10_perturbed",
                  lambda t: "\n".join([json.dumps({**json.loads(t.splitlines()[0]), "question": long_q}),
                                       *t.splitlines()[1:]]) + "\n")
    write_run_file(Path(os.environ["UNLEARNKIT_HOME"]) / "runs" / "half-written", "half-written", "lm")
    (sb / "adapter-no-base").mkdir()
    (sb / "adapter-no-base" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    return sb


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case,argv,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(case, argv, fragment, sandbox, tiny_models, capsys, monkeypatch):
    subs = {"SANDBOX": str(sandbox), "ORIGINAL": str(tiny_models.original), "DATA": str(tiny_models.data_dir),
            "REFERENCE": str(tiny_models.reference_for("forget10"))}
    argv = [subs.get(a, a) if a in subs else a.replace("SANDBOX", str(sandbox)) for a in argv]
    monkeypatch.chdir(sandbox)
    before = _snapshot(sandbox)
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and err.startswith("error: ") and "\n" not in err, err
    assert fragment in err, err
    assert _snapshot(sandbox) == before
    assert not (sandbox / "PWNED").exists()


@pytest.mark.parametrize("case,env,missing,argv,fragment", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_bad_environment_is_one_clear_line(case, env, missing, argv, fragment, sandbox, tiny_models, capsys,
                                           monkeypatch):
    import sys

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for m in missing:
        monkeypatch.setitem(sys.modules, m, None)
    test_bad_input_is_one_clear_line(case, argv, fragment, sandbox, tiny_models, capsys, monkeypatch)


def test_the_catalogue_is_large_and_covers_every_command():
    from unlearnkit.cli import build_parser

    assert len(CASES) >= 60
    top = {a.dest for a in build_parser()._actions}  # noqa: F841 - the parser builds
    covered = {argv[0] for _, argv, _ in CASES}
    for cmd in ("run", "eval", "unlearn", "calibrate", "reliability", "sweep", "gradient", "squeeze", "layers", "runs",
                "data", "models", "ls", "report"):
        assert cmd in covered, cmd
    assert any(argv[:2] == ["run", "vision"] for _, argv, _ in CASES)
