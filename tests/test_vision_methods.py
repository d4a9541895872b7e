"""Registry smoke test for every image-classifier method (generated from the registry, so a new
method cannot skip it), plus method-specific unit tests."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.engine.vision import predict
from unlearnkit.methods import methods_for
from unlearnkit.methods.vision.base import random_other_labels, snapshot
from vision_helpers import single_thread, tiny_context  # noqa: F401 (single_thread: autouse fixture)

SPECS = methods_for("vision")
# Methods that by design update only part of the weights: at least one tensor must move (their own
# tests check that the rest stays exactly at θ_o). Every other method must move every tensor.
PARTIAL = {"salun"}


def test_registry_has_the_issue_methods():
    names = {s.name for s in SPECS}
    assert {"retrain", "ft", "ga", "rl"} <= names
    for s in SPECS:
        assert s.domain == "vision" and s.summary and s.paper
        s.params()  # defaults validate


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_method_smoke(spec):
    ctx, sc = tiny_context("target_mismatch", oracle="oracle_retain" in spec.needs)
    before = snapshot(ctx.original)
    buffers = {n: b.clone() for n, b in ctx.original.named_buffers()}
    model = spec.fn(ctx, spec.params())
    assert model is not ctx.original
    # θ_o is never modified
    for n, p in ctx.original.named_parameters():
        assert torch.equal(p.detach(), before[n]), f"{spec.name} modified θ_o's {n}"
    for n, b in ctx.original.named_buffers():
        assert torch.equal(b, buffers[n]), f"{spec.name} modified θ_o's buffer {n}"
    logits = predict(model, ctx.forget.images[:8])
    assert logits.shape == (min(8, ctx.forget.n), sc.num_classes) and torch.isfinite(logits).all()
    after = dict(model.named_parameters())
    assert set(after) == set(before), "θ_u must keep θ_o's architecture"
    frozen = [n for n, p in after.items() if not p.requires_grad]
    for n in frozen:
        assert torch.equal(after[n].detach().cpu(), before[n].cpu()), f"{spec.name}: frozen {n} moved"
    moved = [n for n, p in after.items() if p.requires_grad and not torch.equal(p.detach().cpu(), before[n].cpu())]
    trainable = [n for n, p in after.items() if p.requires_grad]
    if spec.name in PARTIAL:
        assert moved, f"{spec.name} changed no parameter"
    else:
        assert set(moved) == set(trainable), f"{spec.name} left unchanged: {sorted(set(trainable) - set(moved))}"


def test_random_other_labels_never_the_true_label():
    y = torch.arange(10).repeat(50)
    r = random_other_labels(y, 10, seed=3)
    assert (r != y).all() and r.min() >= 0 and r.max() <= 9
    assert len(set(r[y == 0].tolist())) > 5  # spread over the other classes
    assert torch.equal(r, random_other_labels(y, 10, seed=3))
