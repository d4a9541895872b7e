"""Scale-out pieces that run in one process (issue #15): memory-lean answer statistics, per-process retain
draws, LoRA adapters (merge, save/load, adapters-off θ_o, calibration on adapters, wrappers seen through),
gradient checkpointing, the accelerate configs. Several processes: tests/test_multiprocess.py (slow)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.data.tofu import QASource
from unlearnkit.engine import distributed as dist
from unlearnkit.engine.passes import answer_stats, teacher_forced_pass
from unlearnkit.errors import UnlearnkitError
from unlearnkit.methods.unlearn import _paired_loader, make_params, resolve, unlearn
from unlearnkit.models.adapters import Adapter, AdaptersOff, add_lora, is_adapter_dir
from unlearnkit.models.lm import load_model, save_adapter_model, save_model

ROOT = Path(__file__).resolve().parents[1]
needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="LoRA needs peft (pip install peft)")


@pytest.fixture(scope="module")
def src(tiny_models):
    return QASource(tiny_models.data_dir)


def _naive_stats(model, ids, mask, select, tgt):
    """The reference arithmetic: the model's own full logits at the answer positions, then the statistics."""
    logits = model(input_ids=ids, attention_mask=mask).logits[select]  # (N, vocab), in the model's dtype
    logp = torch.log_softmax(logits, -1)
    lp = logp.gather(1, tgt[:, None]).squeeze(1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    var = (p * logp.square()).sum(-1) - mu.square()
    return lp, logits.argmax(-1) == tgt, (lp - mu) / var.clamp_min(0).sqrt().clamp_min(1e-8)


def _answer_batch(tok, src):
    from unlearnkit.data.prompts import collate, encode_pair

    recs = src.split("retain_perturbed")[:12]
    b = collate([encode_pair(tok, r["question"], r["answer"]) for r in recs], tok.pad_token_id)
    targets = b["labels"][:, 1:]
    select = torch.zeros_like(b["input_ids"], dtype=torch.bool)
    select[:, :-1] = targets != -100
    return b["input_ids"], b["attention_mask"], select, targets[targets != -100]


@torch.no_grad()
def test_chunked_answer_statistics_equal_the_full_logits_path(tiny_models, src):
    """Row chunks of 7 answer tokens (a budget of 7·vocab logits) against the model's full logits: log-probs and
    z within 1e-5 (float32 matmuls of different row blocks), argmax flags identical; one chunk (the default
    budget at this vocabulary) is the unchunked arithmetic bit for bit."""
    model, tok = load_model(tiny_models.original)
    ids, mask, select, tgt = _answer_batch(tok, src)
    vocab = model.get_output_embeddings().out_features
    naive = _naive_stats(model, ids, mask, select, tgt)
    chunked = answer_stats(model, ids, mask, select, tgt, budget=7 * vocab)
    one = answer_stats(model, ids, mask, select, tgt)
    assert tgt.numel() > 7 * 3  # several chunks
    torch.testing.assert_close(chunked[0], naive[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked[2], naive[2], atol=1e-5, rtol=0)
    assert torch.equal(chunked[1], naive[1])
    head = model.get_output_embeddings()
    rows = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[select]
    logits = head(rows)  # the model's dtype (float64 for the embedded models), as answer_stats keeps it
    logp = torch.log_softmax(logits, -1)
    assert torch.equal(one[0], logp.gather(1, tgt[:, None]).squeeze(1))
    assert torch.equal(one[1], logits.argmax(-1) == tgt)


def test_paired_loader_draws_retain_batches_per_process(monkeypatch):
    """Process 0 draws exactly what one process draws; process 1 draws other batches; both are fixed by the seed."""
    spec, _ = resolve("gd")
    params = make_params(spec, {"batch_size": 4, "seed": 3})
    forget, retain = [object()] * 8, list(range(50))

    def draws(rank: int | None) -> list:
        if rank is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", "2")
            monkeypatch.setenv("RANK", str(rank))
        loader = _paired_loader(forget, retain, params, 0, lambda items, pad: {})
        from unlearnkit.data import prompts

        monkeypatch.setattr(prompts, "collate", lambda items, pad: {})
        import unlearnkit.methods.unlearn as U

        monkeypatch.setattr(U, "collate", lambda items, pad: items)
        return [b["retain"] for b in loader]

    single, r0, r1 = draws(None), draws(0), draws(1)
    assert single == r0 and r0 != r1 and draws(1) == r1
    monkeypatch.delenv("WORLD_SIZE")


def test_one_process_helpers_are_no_ops():
    assert dist.world_size() == 1 and dist.is_main() and dist.strategy() == "single"
    assert dist.shard([1, 2, 3]) == [1, 2, 3] and dist.gather("x") == ["x"] and dist.on_main(lambda: 5) == 5
    assert dist.reduce_mean([1.0, 2.0]) == [1.0, 2.0] and dist.all_true(True)


def test_sharding_is_round_robin(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert dist.shard(list(range(8))) == [1, 4, 7] and not dist.is_main()


def test_bad_launcher_settings_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(UnlearnkitError, match="FSDP2"):
        dist.strategy()
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UnlearnkitError, match="MASTER_ADDR"):
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# LoRA


def _lora_run(tiny_models, src, name: str, **over):
    model, tok = load_model(tiny_models.original)
    spec, retain = resolve(name)
    params = make_params(spec, {"lr": 1e-3, "batch_size": 4, "max_steps": 3, "peft": {"r": 4}, **over}, retain)
    log = unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"), src.refusals)
    return model, tok, log


@needs_peft
def test_adapters_off_is_the_original_model(tiny_models, src):
    """θ_o under LoRA is the same network with adapters off: after training it still gives θ_o's logits exactly."""
    model, tok = load_model(tiny_models.original)
    ids, mask, _, _ = _answer_batch(tok, src)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    wrapped = add_lora(model, make_params(resolve("ga")[0], {"peft": {"r": 4}}).peft)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)  # adapters that change the output
        moved = wrapped(input_ids=ids, attention_mask=mask).logits
    off = AdaptersOff(wrapped)(input_ids=ids, attention_mask=mask).logits
    assert not torch.equal(moved, expected) and torch.equal(off, expected)
    assert list(AdaptersOff(wrapped).parameters()) == []  # no second copy of any weight
    assert AdaptersOff(wrapped).config is model.config


@needs_peft
def test_lora_checkpoint_round_trip(tiny_models, src, tmp_path):
    """Saved as an adapter (peft's files + its base), loaded back as θ_o + ΔW: the weights unlearn() left in
    memory, bit for bit; with save_merged the merged weights are saved too."""
    model, tok, log = _lora_run(tiny_models, src, "npo")
    save_adapter_model(log.adapter, tok, tmp_path / "a", str(tiny_models.original))
    save_adapter_model(log.adapter, tok, tmp_path / "m", str(tiny_models.original), merged=model)
    assert is_adapter_dir(tmp_path / "a") and not is_adapter_dir(tmp_path / "m") and is_adapter_dir(tmp_path / "m" / "adapter")
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4
    for d in ("a", "m"):
        loaded, _ = load_model(tmp_path / d)
        assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in loaded.named_parameters()), d


@needs_peft
def test_lora_with_a_changed_base_is_an_error(tiny_models, src, tmp_path):
    _, tok, log = _lora_run(tiny_models, src, "ga")
    base, _ = load_model(tiny_models.original)
    save_model(base, tok, tmp_path / "base")
    save_adapter_model(log.adapter, tok, tmp_path / "a", str(tmp_path / "base"))
    with torch.no_grad():
        next(base.parameters()).add_(1.0)
    save_model(base, tok, tmp_path / "base")
    with pytest.raises(UnlearnkitError, match="changed since the adapter was trained"):
        load_model(tmp_path / "a")


@needs_peft
def test_rmu_with_lora_needs_adapters_on_its_mlps(tiny_models, src):
    with pytest.raises(UnlearnkitError, match="peft.target_modules"):
        _lora_run(tiny_models, src, "rmu", peft={"r": 4, "target_modules": ["q_proj"]})


@needs_peft
def test_lora_target_modules_that_match_nothing(tiny_models, src):
    with pytest.raises(UnlearnkitError, match="matches no module"):
        _lora_run(tiny_models, src, "ga", peft={"r": 4, "target_modules": ["nope_proj"]})


def test_lora_without_peft_is_a_clear_error(tiny_models, src, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(UnlearnkitError, match="pip install peft"):
        _lora_run(tiny_models, src, "ga")


@needs_peft
def test_calibration_on_the_adapter_equals_calibration_on_the_merged_weights(tiny_models, src, tmp_path):
    """θ(α) from the adapter (θ_o + ΔW formed tensor by tensor) and from the merged weights: the same tensors at
    every α, so the calibration search finds the same α and the same evaluation, exactly."""
    from unlearnkit.analysis.calibration import CalibrationConfig, calibrate_model
    from unlearnkit.engine.evaluate import EvalConfig
    from unlearnkit.models.mixing import Mixer
    from unlearnkit.tasks import get_task
    from unlearnkit.tasks.base import TaskData
    from unlearnkit.tasks.tofu_eval import evaluate

    model, tok, log = _lora_run(tiny_models, src, "ga", lr=3e-3)
    save_adapter_model(log.adapter, tok, tmp_path / "a", str(tiny_models.original))
    save_model(model, tok, tmp_path / "merged")
    work, _ = load_model(tiny_models.original)
    for alpha in (0.0, 0.37, 1.0):
        states = []
        for d in ("a", "merged"):
            mixer = Mixer(work, str(tiny_models.original), tmp_path / d)
            mixer.set(alpha)
            states.append({k: v.clone() for k, v in work.state_dict().items()})
            mixer.close()
        assert all(torch.equal(states[0][k], states[1][k]) for k in states[0]), alpha
    ecfg = EvalConfig(max_new_tokens=4, cache=False)
    ref = evaluate(load_model(tiny_models.reference_for("forget10"))[0], tok, src, ecfg)
    cfg = CalibrationConfig(tol=0.05, grid=[0.0, 0.5, 1.0])
    target = 0.9 * evaluate(work, tok, src, ecfg).value("retain.es_exact")
    task = get_task("tofu")
    data = TaskData("tofu", src, "", "", "", [], [], [], "")
    out = [calibrate_model(work, tok, task, data, task.options(), str(tiny_models.original), tmp_path / d, cfg, ecfg,
                           target, ref) for d in ("a", "merged")]
    assert out[0].search.alpha == out[1].search.alpha and out[0].grid_forget == out[1].grid_forget
    assert {k: a.value for k, a in out[0].result.aggregates.items()} == \
        {k: a.value for k, a in out[1].result.aggregates.items()}


@needs_peft
def test_layer_tools_see_through_the_peft_wrapper(tiny_models, src):
    """Layer groups of an adapted model (G-effect), RMU's layers and patching from an adapted θ_u."""
    from unlearnkit.models.layers import decoder_layers, locate_layers, param_groups
    from unlearnkit.models.patching import patched, relative_change

    original, tok = load_model(tiny_models.original)
    model, _ = load_model(tiny_models.original)
    wrapped = add_lora(model, make_params(resolve("ga")[0], {"peft": {"r": 4}}).peft)
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n and ".layers.1." in n:
                p.add_(0.1)
    lm = locate_layers(wrapped)
    assert lm.n_layers == 2 and decoder_layers(wrapped) is wrapped.get_base_model().model.layers
    groups = param_groups(wrapped)
    assert {g for g, ps in groups.items() if ps} == {"layer.0", "layer.1"}  # only the adapters train
    assert all("lora_" in n for ps in groups.values() for n, _ in ps)
    change = relative_change(original, wrapped)
    assert change["layer.1"] > 0 and change["layer.0"] == 0 and change["embedding"] == 0
    merged, _ = load_model(tiny_models.original)
    Adapter.of(wrapped).merge_into(merged)
    with patched(original, wrapped, ["layer.1"]) as m:
        patched_state = {k: v.clone() for k, v in m.state_dict().items()}
    assert torch.equal(patched_state["model.layers.1.mlp.up_proj.weight"],
                       merged.state_dict()["model.layers.1.mlp.up_proj.weight"])
    assert torch.equal(patched_state["model.layers.0.mlp.up_proj.weight"],
                       original.state_dict()["model.layers.0.mlp.up_proj.weight"])


def test_gradient_checkpointing_gives_the_same_update(tiny_models, src):
    """Recomputing activations in the backward pass changes memory, not the result (≤ 1e-6)."""
    outs = []
    for gc in (False, True):
        model, tok = load_model(tiny_models.original)
        spec, retain = resolve("npo+kl")
        params = make_params(spec, {"lr": 1e-3, "batch_size": 4, "max_steps": 2, "gradient_checkpointing": gc}, retain)
        unlearn(model, tok, spec, params, src.split("forget10"), src.split("retain90"))
        assert not model.is_gradient_checkpointing
        outs.append({n: p.detach().clone() for n, p in model.named_parameters()})
    assert max((outs[0][n] - outs[1][n]).abs().max().item() for n in outs[0]) <= 1e-6
    assert "gradient_checkpointing" not in make_params(resolve("ga")[0], {}).model_dump()  # old hashes kept


def test_teacher_forced_pass_is_unchanged_by_sharding_code(tiny_models, src):
    """One process: the pass runs every batch itself (the sharding helpers are no-ops)."""
    model, tok = load_model(tiny_models.original)
    pairs = [(r["question"], r["answer"]) for r in src.split("retain_perturbed")[:10]]
    a, b = teacher_forced_pass(model, tok, pairs, batch_size=3), teacher_forced_pass(model, tok, pairs, batch_size=10)
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.correct, b.correct)
    assert np.abs(a.logprob - b.logprob).max() <= 1e-5


# ---------------------------------------------------------------------------------------------
# accelerate configs


ACCEL = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))


def test_the_accelerate_configs_exist():
    assert {p.stem for p in ACCEL} >= {"ddp", "fsdp", "deepspeed_zero3"}


def _launcher_env(path: Path) -> dict[str, str]:
    """The environment ``accelerate launch --config_file PATH -m unlearnkit …`` gives each process: accelerate's own
    parser and validation read the file (an unknown key or value is an error there), then its env builders."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "unlearnkit", "run"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join([*defaults.deepspeed_config, "mixed_precision"])
        return prepare_deepspeed_cmd_env(args)[1]
    return prepare_multi_gpu_env(args)


@pytest.mark.parametrize("path", ACCEL, ids=[p.stem for p in ACCEL])
def test_accelerate_configs_are_valid(path, monkeypatch):
    """Each file goes through accelerate launch's own validation; in the environment it produces unlearnkit picks
    the intended strategy, and accelerate builds the FSDP2 / ZeRO-3 plugin from it (DeepSpeed itself is not
    installed here: the ZeRO-3 config is validated, not run)."""
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    env = _launcher_env(path)
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    for k, v in env.items():
        if k.startswith(("ACCELERATE_", "FSDP_")):
            monkeypatch.setenv(k, v)
    expected = {"ddp": "single", "fsdp": "fsdp", "deepspeed_zero3": "deepspeed"}[path.stem]  # one process here
    assert dist.strategy() == expected
    if expected == "fsdp":
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    if expected == "deepspeed":
        plugin = DeepSpeedPlugin()
        zero = plugin.deepspeed_config["zero_optimization"]
        assert plugin.zero_stage == 3 and zero["offload_param"]["device"] == "none"
        assert plugin.deepspeed_config["gradient_clipping"] == 1.0
