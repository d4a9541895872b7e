"""The shared training loop's multi-pass / per-step extensions and the sharded TensorLoader."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unlearnkit.engine.train import LoopState, Pass, train_loop
from unlearnkit.engine.vision import TensorLoader, sgd_factory
from unlearnkit.models.classifiers import ModelConfig, build_classifier

from .vision_helpers import single_thread  # noqa: F401 (autouse fixture)


def _loader(n: int, bs: int, **kw) -> TensorLoader:
    g = torch.Generator().manual_seed(n)
    x = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    return TensorLoader(x, torch.arange(n), bs, seed=3, dev=torch.device("cpu"), **kw)


def _epoch(loader: TensorLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader)


@pytest.mark.parametrize("n,drop_last", [(37, False), (40, False), (37, True), (3, False)])
def test_shards_are_the_global_batches_split_by_rank(n, drop_last):
    """Per-rank batch 4 × 2 ranks = the one-process batches of 8, rank 0 the first half of each;
    disjoint within an epoch except the wrap-round padding; every rank the same length."""
    one = _loader(n, 8, drop_last=drop_last, rank=0, world_size=1)
    ranks = [_loader(n, 4, drop_last=drop_last, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1])
    for _ in range(2):  # two epochs: a new permutation each, the same on every rank
        whole = _epoch(one)
        parts = [_epoch(r) for r in ranks]
        assert len(parts[0]) == len(parts[1]) == len(ranks[0])
        seen = torch.cat([y for p in parts for _, y in p])
        if drop_last:
            assert len(whole) == len(parts[0]) == n // 8
            for (xw, yw), (x0, y0), (x1, y1) in zip(whole, *parts):
                assert torch.equal(torch.cat([y0, y1]), yw) and torch.equal(torch.cat([x0, x1]), xw)
            assert len(set(seen.tolist())) == len(seen)
        else:
            assert len(seen) == -(-n // 2) * 2  # padded to a multiple of the world size
            assert set(seen.tolist()) == set(range(n))  # every sample, duplicates only from the padding
            assert len(seen) - len(set(seen.tolist())) == n % 2
            order = torch.cat([y for _, y in whole])
            chunks = torch.cat([torch.cat([y0, y1]) for (_, y0), (_, y1) in zip(*parts)])
            assert torch.equal(chunks[:n], order)  # the same permutation, padded at the end


def test_one_process_shard_is_the_plain_loader():
    a, b = _loader(37, 8), _loader(37, 8, rank=0, world_size=1)
    for (xa, ya), (xb, yb) in zip(_epoch(a), _epoch(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert a.shard == (0, 1) and len(a) == 5


def test_augmentation_matches_the_one_process_run():
    one = _loader(24, 8, augment=True, rank=0, world_size=1)
    parts = [_epoch(_loader(24, 4, augment=True, rank=r, world_size=2)) for r in range(2)]
    for (xw, _), (x0, _), (x1, _) in zip(_epoch(one), *parts, strict=True):
        assert torch.equal(torch.cat([x0, x1]), xw)


def test_derived_loaders_keep_the_shard_and_unsharded_sees_everything():
    from unlearnkit.methods.vision.base import concat

    a = _loader(10, 2, rank=1, world_size=2)
    assert a.with_labels(a.labels + 1).shard == (1, 2) and concat(a, a).shard == (1, 2)
    full = a.unsharded()
    assert full.shard == (0, 1) and sum(len(y) for _, y in full) == 10
    with pytest.raises(ValueError, match="rank"):
        TensorLoader(a.images, a.labels, 2, rank=2, world_size=2)


def _tiny_model():
    return build_classifier(ModelConfig(arch="cnn", width=2), 4, [0.5], [0.25], seed=0)


def test_passes_run_in_order_and_log_their_names():
    a, b = _loader(12, 4), _loader(8, 4)
    a.labels, b.labels = a.labels % 4, b.labels % 4
    seen: list[tuple] = []
    state = LoopState()

    def loss(tag):
        def fn(model, batch):
            seen.append((tag, state.epoch, state.batch, state.batches, state.step, state.pass_name))
            x, y = batch
            return F.cross_entropy(model(x), y), {}
        return fn

    pa, pb = Pass(a, loss("a"), "first"), Pass(b, loss("b"), "second")
    log = train_loop(_tiny_model(), None, None, passes=lambda e: [pa, pb] if e == 0 else [pb], lr=0.01, epochs=2,
                     max_grad_norm=None, optimizer_factory=sgd_factory(0.01), state=state)
    assert [r["pass"] for r in log.steps] == ["first"] * 3 + ["second"] * 2 + ["second"] * 2
    assert [r["epoch"] for r in log.steps] == [0] * 5 + [1] * 2
    assert seen[3] == ("b", 0, 0, 2, 3, "second") and seen[-1] == ("b", 1, 1, 2, 6, "second")
    assert state.step == 7


def test_a_loss_of_none_skips_the_step():
    loader = _loader(12, 4)
    loader.labels = loader.labels % 4
    model = _tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    log = train_loop(model, loader, lambda m, b: (None, {}), lr=0.1, epochs=2, optimizer_factory=sgd_factory(0.1))
    assert log.steps == []
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items() if "running" not in k)
    state = LoopState()
    calls = []

    def half(m, b):
        calls.append(state.progress)
        x, y = b
        return (F.cross_entropy(m(x), y) if state.batch % 2 == 0 else None), {}

    log = train_loop(model, loader, half, lr=0.1, epochs=1, optimizer_factory=sgd_factory(0.1), state=state)
    assert len(log.steps) == 2 and calls == [0.0, 1 / 3, 2 / 3]


@pytest.mark.parametrize("arch", ["cnn", "cnn_flat", "resnet20"])
@pytest.mark.parametrize("channels", [1, 3])
def test_classifiers_take_grey_or_rgb(arch, channels):
    m = build_classifier(ModelConfig(arch=arch, width=4), 5, [0.5] * channels, [0.2] * channels, seed=0)
    assert m(torch.rand(2, channels, 28, 28)).shape == (2, 5)
    with pytest.raises(Exception, match="channels"):
        build_classifier(ModelConfig(arch=arch), 5, [0.5, 0.5], [0.2, 0.2])


def test_resnet20_is_he_et_al_s_size():
    m = build_classifier(ModelConfig(arch="resnet20"), 10, [0.5] * 3, [0.25] * 3)
    n = sum(p.numel() for p in m.parameters())
    assert 0.26e6 < n < 0.28e6  # 0.27 M in He et al. (2016), Table 6
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d) and x.kernel_size == (3, 3)]
    assert len(convs) + 1 == 20  # 19 3×3 convolutions + the linear head
