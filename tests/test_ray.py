"""Many runs on Ray: a two-method run through ``executor.kind=ray`` (a local Ray instance) gives the same results as
the local executor. Slow (Ray starts its processes, and each task imports torch); skipped when Ray is missing."""

from __future__ import annotations

import pytest

from unlearnkit.engine.executor import ExecutorConfig, run_entries
from unlearnkit.errors import UnlearnkitError

from .conftest import tiny_build_config


def test_local_executor_runs_in_order_and_reports_each_entry():
    seen = []
    assert run_entries([lambda: 1, lambda: 2], ExecutorConfig(), lambda i, r: seen.append((i, r))) == [1, 2]
    assert seen == [(0, 1), (1, 2)]


def test_ray_without_ray_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UnlearnkitError, match=r'pip install -e "\.\[ray\]"'):
        run_entries([lambda: 1], ExecutorConfig(kind="ray"))


@pytest.mark.slow
def test_a_two_method_run_on_ray_equals_the_local_run(tiny_models):
    """Same config, two run names: every entry's aggregates and per-sample values are identical."""
    ray = pytest.importorskip("ray")
    from unlearnkit.recipes.lm import RunConfig, run_benchmark

    base = dict(build=tiny_build_config(), methods=["ga", "gd"], seeds=[0],
                defaults={"lr": 1e-3, "batch_size": 8, "max_steps": 3}, eval={"max_new_tokens": 8, "cache": False})
    local = run_benchmark(RunConfig(**base, name="ray-check-local"), say=lambda s: None)
    try:
        remote = run_benchmark(RunConfig(**base, name="ray-check-ray", executor={"kind": "ray", "num_cpus": 1}),
                               say=lambda s: None)
    finally:
        ray.shutdown()
    assert not local.failures and not remote.failures
    for entry in ("ga__s0", "gd__s0"):
        a, b = local.run.record(entry), remote.run.record(entry)
        values = [{k: v["value"] for k, v in r.aggregates.items() if k != "unlearn_seconds"} for r in (a, b)]
        assert values[0] == values[1] and len(values[0]) > 20, entry
        assert local.run.per_sample_rows(entry) == remote.run.per_sample_rows(entry)
        assert a.provenance["distributed"]["processes"] == 1
