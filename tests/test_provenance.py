"""Provenance records what decides a result's digits; differences between runs are named."""

from __future__ import annotations

import os

import torch

from unlearnkit.results.provenance import digit_deciders, hardware, provenance, provenance_differences


def test_hardware_records_the_cpu_its_kernel_path_blas_threads_and_kernel_environment(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    hw = hardware()
    assert hw["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert hw["torch_threads"] == torch.get_num_threads() and hw["device"] in ("cpu", "cuda")
    assert hw["cpu"] and hw["blas"] and hw["blas"] != "unknown"
    assert hw["kernel_env"]["MKL_CBWR"] == "AVX2" and "ATEN_CPU_CAPABILITY" not in hw["kernel_env"]
    assert all(os.environ[k] == v for k, v in hw["kernel_env"].items())


def _prov(cpu="Xeon", capability="AVX512", threads=2, torch_version="2.14.1") -> dict:
    return {"hardware": {"cpu": cpu, "cpu_capability": capability, "blas": "mkl", "torch_threads": threads,
                         "device": "cpu", "kernel_env": {}},
            "libraries": {"torch": torch_version, "transformers": "5.25.0", "numpy": "2.4.6"}}


def test_provenance_differences_name_each_differing_fact_and_nothing_else():
    same = provenance_differences({"a": _prov(), "b": _prov()})
    assert same == []
    lines = provenance_differences({"a": _prov(), "b": _prov(capability="AVX2", threads=1)})
    assert lines == ["cpu_capability differs: a: AVX512; b: AVX2", "torch_threads differs: a: 2; b: 1"]
    assert provenance_differences({"a": _prov(), "b": _prov(torch_version="2.11.0")}) == [
        "version of torch differs: a: 2.14.1; b: 2.11.0"]


def test_a_run_made_before_the_facts_were_recorded_reads_as_unknown():
    old = {"hardware": {"device": "cpu", "torch_threads": 2}, "libraries": {"torch": "2.14.1"}}
    new = _prov()
    facts = digit_deciders(old)
    assert facts["cpu_capability"] is None and facts["torch_threads"] == 2
    lines = provenance_differences({"old": old, "new": new})
    assert "cpu_capability differs: old: unknown; new: AVX512" in lines and "cpu differs: old: unknown; new: Xeon" in lines
    assert not any(line.startswith("torch_threads") for line in lines)


def test_every_results_file_carries_the_facts():
    prov = provenance({"x": 1})
    assert set(digit_deciders(prov)) >= {"cpu", "cpu_capability", "blas", "torch_threads", "device", "kernel_env"}
