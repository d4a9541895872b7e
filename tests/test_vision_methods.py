"""Registry smoke test for every image-classifier method (generated from the registry, so a new
method cannot skip it), plus method-specific unit tests."""

from __future__ import annotations

import pytest
import torch

from unlearnkit.engine.vision import predict
from unlearnkit.methods import methods_for
from unlearnkit.methods.vision.base import random_other_labels, snapshot

from .vision_helpers import single_thread, tiny_context  # noqa: F401 (single_thread: autouse fixture)

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


# --------------------------------------------------------------------------------------------- #7

def test_registry_has_all_seed_table_methods():
    names = {s.name for s in SPECS}
    assert {"retrain", "ft", "rl", "ga", "iu", "bs", "l1_sparse", "salun", "scrub", "tarf"} <= names


def test_salun_mask_selects_exactly_the_top_fraction():
    """|g| over both tensors = [0.1, 5, 3 | 2, 0.5, 0, 4] (7 weights); fraction 0.5 → k = round(3.5) = 4:
    the weights with |g| ∈ {5, 4, 3, 2} are salient, the other 3 are masked out."""
    from unlearnkit.methods.vision.salun import saliency_mask

    g = [torch.tensor([0.1, -5.0, 3.0]), torch.tensor([[2.0, -0.5], [0.0, 4.0]])]
    m = saliency_mask(g, 0.5)
    assert m[0].tolist() == [False, True, True]
    assert m[1].tolist() == [[True, False], [False, True]]
    assert all(x.all() for x in saliency_mask(g, 1.0))
    assert sum(int(x.sum()) for x in saliency_mask(g, 0.2)) == 1  # round(1.4) = 1: only |g| = 5
    big = [torch.randn(1000), torch.randn(20, 50)]
    mm = saliency_mask(big, 0.3)
    flat_g = torch.cat([x.abs().reshape(-1) for x in big])
    flat_m = torch.cat([x.reshape(-1) for x in mm])
    assert int(flat_m.sum()) == 600  # exactly 30 % of 2000
    assert flat_g[flat_m].min() >= flat_g[~flat_m].max()  # a global ranking, not per tensor


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_salun_mask_fraction_outside_range_is_an_error(fraction, tmp_path, monkeypatch, capsys):
    from pydantic import ValidationError

    from unlearnkit import UnlearnkitError, cli
    from unlearnkit.methods.vision.salun import SalUnParams, saliency_mask

    with pytest.raises(UnlearnkitError, match="mask_fraction"):
        saliency_mask([torch.ones(3)], fraction)
    with pytest.raises(ValidationError):
        SalUnParams(mask_fraction=fraction)
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    assert cli.main(["run", "vision", "--methods", "salun", f"method_params.salun.mask_fraction={fraction}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "mask_fraction" in err and "\n" not in err


def test_salun_masked_weights_stay_bit_identical_under_weight_decay_and_momentum():
    from unlearnkit.methods.vision.salun import SalUnParams, salun_with_mask

    ctx, _ = tiny_context("all_matched")
    theta_o = snapshot(ctx.original)
    p = SalUnParams(epochs=3, lr=0.05, momentum=0.9, weight_decay=0.05, mask_fraction=0.5)
    model, masks = salun_with_mask(ctx, p)
    n_salient = n_changed = n_total = 0
    for name, q in model.named_parameters():
        q, o, m = q.detach().cpu(), theta_o[name].cpu(), masks[name].cpu()
        assert torch.equal(q[~m], o[~m]), f"masked-out weights of {name} moved"
        n_changed += int((q != o).sum())
        n_salient += int(m.sum())
        n_total += m.numel()
    assert n_salient == round(0.5 * n_total)
    assert n_changed > 0.5 * n_salient  # the salient half did train


def test_l1_schedule_decays_linearly_to_zero():
    """γ = 1e-4, T = 4 steps: γ_t = 1e-4·(1 − t/4) = 1e-4, 7.5e-5, 5e-5, 2.5e-5, then 0 at t = T (and after)."""
    from unlearnkit.methods.vision.l1_sparse import l1_schedule

    vals = [l1_schedule(t, 4, 1e-4) for t in range(6)]
    assert vals == pytest.approx([1e-4, 7.5e-5, 5e-5, 2.5e-5, 0.0, 0.0])
    diffs = [a - b for a, b in zip(vals[:4], vals[1:5], strict=True)]
    assert diffs == pytest.approx([2.5e-5] * 4)  # constant decrement: linear
    assert l1_schedule(0, 0, 1e-4) == 0.0


def test_tarf_schedule_on_a_hand_made_timeline():
    """t₁ = 2, t₀ = 5, T = 8, k₀ = 1: k(t) = 1 − t/5 before 5, then 0; phases I I II II II III III III;
    τ = 0 for everything before t₁, then 0 for the identified class 1 and 1 for the others."""
    from unlearnkit.methods.vision.tarf import k_schedule, phase, tau

    ts = [0, 1, 2, 3, 4, 5, 6, 7]
    assert [k_schedule(t, 5, 1.0) for t in ts] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0])
    assert k_schedule(2.5, 5, 0.5) == pytest.approx(0.25)
    assert [phase(t, 2, 5) for t in ts] == [1, 1, 2, 2, 2, 3, 3, 3]
    labels = torch.tensor([0, 1, 2, 1])
    assert tau(0, 2, labels, [1]).tolist() == [0, 0, 0, 0]
    assert tau(1.99, 2, labels, [1]).tolist() == [0, 0, 0, 0]
    assert tau(2, 2, labels, [1]).tolist() == [1, 0, 1, 0]
    assert tau(7, 2, labels, []).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("t1,t0,T,match", [(5, 3, 10, "t1 must be < t0"), (3, 3, 10, "t1 must be < t0"),
                                           (1, 12, 10, "t0 must be ≤ epochs")])
def test_tarf_bad_phases_are_clear_errors(t1, t0, T, match, tmp_path, monkeypatch, capsys):
    from unlearnkit import UnlearnkitError, cli
    from unlearnkit.methods.vision.tarf import TARFParams, check_phases

    with pytest.raises(UnlearnkitError, match=match):
        check_phases(t1, t0, T)
    with pytest.raises(UnlearnkitError, match=match):
        TARFParams(t1=t1, t0=t0, epochs=T)
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    args = [f"method_params.tarf.t1={t1}", f"method_params.tarf.t0={t0}", f"method_params.tarf.epochs={T}"]
    assert cli.main(["run", "vision", "--methods", "tarf", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and match in err and "\n" not in err


def test_tarf_identification_ranks_by_loss_increase():
    """Loss per class before [1, 1, 1, nan], after [1.2, 3.0, 2.0, nan] → increases 0.2, 2.0, 1.0:
    m = 2 picks classes {1, 2}; class 3 (absent from D_un) is ignored. By accuracy drop
    (before [1, 1, .9], after [.5, .9, .9] → drops .5, .1, 0) m = 1 picks class 0."""
    from unlearnkit.methods.vision.tarf import identify

    nan = float("nan")
    before = (torch.tensor([1.0, 1.0, 1.0, nan]), torch.tensor([1.0, 1.0, 0.9, nan]))
    after = (torch.tensor([1.2, 3.0, 2.0, nan]), torch.tensor([0.5, 0.9, 0.9, nan]))
    ids, scores = identify(before, after, 2, "loss")
    assert ids == [1, 2] and set(scores) == {0, 1, 2}
    assert identify(before, after, 1, "accuracy")[0] == [0]
    assert identify(before, after, 0, "loss")[0] == []


@pytest.mark.parametrize("variant", ["forget_only", "with_identified"])
def test_tarf_logs_identification(variant):
    from unlearnkit.methods.vision.tarf import TARFParams, tarf

    ctx, sc = tiny_context("target_mismatch")
    tarf(ctx, TARFParams(epochs=3, t1=1, t0=2, lr=0.01, variant=variant))
    assert len(ctx.log["identified_labels"]) == ctx.n_hidden_target_classes == len(sc.hidden_target_labels)
    assert ctx.log["variant"] == variant and ctx.log["identification_rule"] == "known number of target classes"
    assert [h["phase"] for h in ctx.log["history"]] == [1, 2, 3]
    ctx2, _ = tiny_context("target_mismatch")
    tarf(ctx2, TARFParams(epochs=3, t1=1, t0=2, identify="top_fraction", top_fraction=0.2))
    assert ctx2.log["m"] == 1  # ceil(0.2 × 5 classes present in D_un)


def test_scrub_alternates_max_and_min_steps():
    """epochs 3, msteps 2 → max, min, max, min, min; a max pass walks D_f, a min pass D_un."""
    from unlearnkit.methods.vision.scrub import SCRUBParams, scrub, scrub_schedule

    assert scrub_schedule(3, 2) == ["max", "min", "max", "min", "min"]
    assert scrub_schedule(2, 0) == ["min", "min"]
    ctx, _ = tiny_context("all_matched")
    scrub(ctx, SCRUBParams(epochs=3, msteps=2, lr=0.01))
    passes = ctx.log["passes"]
    assert [p["pass"] for p in passes] == ["max", "min", "max", "min", "min"]
    assert all(p["batches"] == (len(ctx.forget) if p["pass"] == "max" else len(ctx.unlearn)) for p in passes)
    assert all(p["last_loss"] <= 0 for p in passes if p["pass"] == "max")  # −KL
    with pytest.raises(Exception, match="msteps"):
        SCRUBParams(epochs=1, msteps=2)


def test_iu_woodbury_equals_the_explicit_inverse():
    """(λI + GGᵀ/n)⁻¹v by Woodbury = the dense solve, for P = 7 weights and n = 3 samples."""
    from unlearnkit.methods.vision.iu import woodbury_inverse_fisher

    g = torch.Generator().manual_seed(0)
    G, v = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    lam = 0.1
    dense = torch.linalg.solve(lam * torch.eye(7, dtype=torch.float64) + G @ G.T / 3, v)
    torch.testing.assert_close(woodbury_inverse_fisher(G, v, lam), dense)


def test_bs_fgsm_in_pixel_space_and_neighbour_labels():
    from unlearnkit.methods.vision.bs import fgsm, neighbour_labels

    ctx, _ = tiny_context("all_matched")
    x, y = ctx.forget.all()
    x_adv = fgsm(ctx.original, x, y, 0.1)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    inside = (x > 0.1) & (x < 0.9)
    torch.testing.assert_close((x_adv - x).abs()[inside], torch.full_like(x[inside], 0.1))
    y_new = neighbour_labels(ctx.original, ctx.forget.images, y, 0.1, exclude_true=True)
    assert (y_new != y).all()
