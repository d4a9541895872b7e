"""The "to add X" recipes of docs/architecture.md, each proved by a throw-away plug-in registered here (and removed
after the test): a method, a task and a model family. The other plug-in points have theirs beside their code: a
metric (tests/test_metric_registry.py), an attack (tests/test_attacks.py), a report section (tests/test_report.py).
"""

from __future__ import annotations

import pytest
import torch

from unlearnkit.errors import UnlearnkitError
from unlearnkit.models.lm import load_model


def test_a_new_method_is_one_file_and_one_registration(tiny_models, monkeypatch):
    """A forget term written and registered here (GA at half strength) is found by name, combines with a retain term
    by the naming rule (``<forget>+<retain>``), and trains θ_u through the shared driver: the first step's reported
    forget NLL is −(½ · mean log p) · 2 = GA's, and the weights change."""
    from unlearnkit.data.tofu import QASource
    from unlearnkit.methods import METHODS, MethodSpec, load_all
    from unlearnkit.methods.llm.base import ForgetInputs, LMObjective, LMParams, forget_token_logprobs, masked_mean
    from unlearnkit.methods.unlearn import make_params, resolve, unlearn

    def half_ga(inp: ForgetInputs):
        lp, mask = forget_token_logprobs(inp)
        loss = masked_mean(lp, mask)
        return 0.5 * loss, {"forget_nll": float(-loss.detach())}

    load_all()
    spec = MethodSpec(name="halfga", domain="llm", summary="GA at half strength (test only)", params=LMParams,
                      fn=LMObjective(forget=half_ga, default_retain="none"))
    monkeypatch.setitem(METHODS._items, "llm:halfga", spec)
    got, retain = resolve("halfga+nll")
    assert got is spec and retain == "nll"
    params = make_params(got, {"epochs": 1, "batch_size": 4, "max_steps": 2}, retain)
    model, tok = load_model(tiny_models.original)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    src = QASource(tiny_models.data_dir)
    log = unlearn(model, tok, got, params, src.split("forget10")[:8], src.split("retain90")[:8], src.refusals)
    assert len(log.steps) == 2 and log.steps[0]["forget_nll"] > 0
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    monkeypatch.undo()
    with pytest.raises(UnlearnkitError, match="unknown llm method 'halfga'"):
        resolve("halfga")


class _Block(torch.nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.mix = torch.nn.Linear(d, d)

    def forward(self, x):
        return x + torch.tanh(self.mix(x))


class _ToyFamily(torch.nn.Module):
    """A causal-LM-shaped model of a family no code knows: its blocks live at ``trunk.stages``."""

    def __init__(self, vocab: int = 11, d: int = 8, n: int = 3):
        super().__init__()
        self.config = type("Cfg", (), {"num_hidden_layers": n, "model_type": "toyfamily"})()
        self.tok_embed = torch.nn.Embedding(vocab, d)
        self.trunk = torch.nn.Module()
        self.trunk.stages = torch.nn.ModuleList(_Block(d) for _ in range(n))
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)

    def get_input_embeddings(self):
        return self.tok_embed

    def get_output_embeddings(self):
        return self.lm_head


def test_a_new_model_family_needs_no_code_for_the_layer_analyses(monkeypatch):
    """Layer discovery finds the family's 3 blocks at ``trunk.stages`` (the one ModuleList of num_hidden_layers
    identical blocks); parameter groups are embedding (1 tensor), layer.0..2 (weight + bias each) and head (lm_head,
    untied). Registering the path in LAYER_PATHS names the family in the map."""
    from unlearnkit.models.layers import LAYER_PATHS, locate_layers, param_groups

    model = _ToyFamily()
    lm = locate_layers(model)
    assert (lm.path, lm.n_layers, lm.families, lm.tied_embeddings) == ("trunk.stages", 3, "discovered", False)
    groups = param_groups(model, lm)
    assert {g: [n for n, _ in ps] for g, ps in groups.items()} == {
        "embedding": ["tok_embed.weight"],
        **{f"layer.{i}": [f"trunk.stages.{i}.mix.weight", f"trunk.stages.{i}.mix.bias"] for i in range(3)},
        "head": ["lm_head.weight"],
    }
    monkeypatch.setitem(LAYER_PATHS, "trunk.stages", "ToyFamily")
    assert locate_layers(model).families == "ToyFamily"


def test_a_new_pretrained_family_is_one_file_registering_its_short_name(monkeypatch):
    """A family file registers a WheelGGUF under a short name; ``resolve_source`` then treats the name as that GGUF,
    and without its wheel the user gets one line naming the install command."""
    from unlearnkit.models import families
    from unlearnkit.models.lm import resolve_source
    from unlearnkit.models.sources import WheelGGUF

    assert "smollm2-135m" in families.aliases()
    monkeypatch.setitem(families.ALIASES, "toy-1m", WheelGGUF("no_such_wheel_pkg", "toy.gguf",
                                                            "pip install no-such-wheel", "org/toy-1m"))
    with pytest.raises(UnlearnkitError, match=r"needs the 'no_such_wheel_pkg' package.*`pip install no-such-wheel`"):
        resolve_source("toy-1m")
    with pytest.raises(ValueError, match="registered twice"):
        families.register("toy-1m", families.ALIASES["toy-1m"])
    assert resolve_source("org/some-hub-model") == "org/some-hub-model"


def _toy_task():
    """A task written here: TOFU's embedded data and models, one metric (the forget set's mean answer-token
    accuracy on its first 8 records), one table column."""
    import dataclasses

    import numpy as np

    from unlearnkit.engine.passes import teacher_forced_pass
    from unlearnkit.engine.result import EvalResult
    from unlearnkit.tasks import Task, get_task

    class ToyFacts(Task):
        name = "toyfacts"
        summary = "test only: token accuracy on 8 forget records"
        published = "tofu"
        hub = "locuslab/TOFU"
        forget_splits = ("forget10",)
        default_forget = "forget10"
        columns = (("Forget acc ↓", "forget.acc"),)
        default_methods = ("ga",)

        def prepare(self, req, say):
            return dataclasses.replace(get_task("tofu").prepare(req, say), task=self.name)

        def training_data(self, req, say=None):
            return get_task("tofu").training_data(req, say)

        def evaluate(self, model, tokenizer, data, cfg, options, model_id=None):
            recs = data.forget_records[:8]
            st = teacher_forced_pass(model, tokenizer, [(r["question"], r["answer"]) for r in recs])
            acc = [float(np.mean(st.corrects(i))) for i in range(len(st))]
            res = EvalResult(forget="forget10", per_sample={"forget": {"acc": acc}})
            res.add("forget.acc", float(np.mean(acc)), len(acc), False)
            return res

    return ToyFacts()


def test_a_new_task_is_one_file_and_one_registration(tiny_models, monkeypatch):
    """A task defined and registered here (nothing else edited) is listed, validated as `task=` and run end to end by
    the benchmark recipe: its one column is the run table, and each row's value (Original, Retrain, GA) is the mean
    of its 8 per-sample token accuracies."""
    from unlearnkit.recipes.lm import RunConfig, run_benchmark
    from unlearnkit.tasks import TASKS, all_tasks

    from .conftest import tiny_build_config

    all_tasks()
    monkeypatch.setitem(TASKS._items, "toyfacts", _toy_task())
    assert "toyfacts" in [t.name for t in all_tasks()]
    cfg = RunConfig.model_validate({"task": "toyfacts", "build": tiny_build_config().model_dump(), "methods": ["ga"],
                                    "defaults": {"lr": 1e-3, "epochs": 1, "batch_size": 4, "max_steps": 2},
                                    "name": "toy-task"})
    out = run_benchmark(cfg, say=lambda s: None)
    assert not out.failures and list(out.results) == ["Original", "Retrain", "ga"]
    assert "Forget acc ↓" in out.table and "ES-exact" not in out.table
    for row, results in out.results.items():
        (res,) = results  # one seed
        acc = res.per_sample["forget"]["acc"]
        assert len(acc) == 8 and res.value("forget.acc") == pytest.approx(sum(acc) / 8, abs=1e-12), row
    with pytest.raises(Exception, match="unknown task 'toyfact'"):
        RunConfig.model_validate({"task": "toyfact"})
