"""Measurements against known answers: FLOP formula, byte counts, peak memory, quantiles."""
from __future__ import annotations

import torch

from effbench import measure
from effbench.workloads.common import optimizer_state_bytes, tensor_bytes, weight_bytes


def test_train_flops_formula():
    # 6N + 6 * L * seq * d for N = 1e6 non-embedding params, 2 layers, seq 128, d 64
    assert measure.train_flops_per_token(10**6, 2, 128, 64) == 6e6 + 6 * 2 * 128 * 64


def test_weight_bytes_counts_tied_once_and_dtypes():
    emb = torch.nn.Embedding(100, 8)
    head = torch.nn.Linear(8, 100, bias=False)
    head.weight = emb.weight  # tied, as in the default model
    m = torch.nn.Sequential(emb, torch.nn.Linear(8, 4).to(torch.bfloat16), head)
    wb = weight_bytes(m)
    assert wb["parameters"] == 100 * 8 * 4 + (8 * 4 + 4) * 2
    assert tensor_bytes(torch.zeros(3, 5, dtype=torch.float16)) == 30


def test_adamw_state_bytes_are_two_fp32_moments():
    p = torch.nn.Parameter(torch.randn(1000))
    opt = torch.optim.AdamW([p])
    p.grad = torch.randn(1000)
    opt.step()
    # exp_avg + exp_avg_sq (fp32) + a scalar fp32 step counter
    assert optimizer_state_bytes(opt) == 2 * 1000 * 4 + 4


def test_cpu_peak_memory_sees_a_region_allocation():
    mem = measure.Memory("cpu")
    mem.reset()
    before = measure.rss_bytes()
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    peak = mem.read()["peak_rss_bytes"]
    del x
    assert peak - before >= 60 * 2**20


def test_stats_quantiles():
    s = measure.stats([float(i) for i in range(11)])
    assert s["median"] == 5 and s["p10"] == 1 and s["p90"] == 9 and s["n"] == 11


def test_time_call_excludes_warmup():
    calls = []
    samples = measure.time_call(lambda: calls.append(1), "cpu", repeats=3, warmup=2)
    assert len(samples) == 3 and len(calls) == 5


def test_missing_figure_has_reason():
    assert measure.Energy("cpu").result() == {"value": None, "reason": "energy is measured through NVML on NVIDIA GPUs only"}
    assert measure.peak_flops("cpu")[0] is None


def test_environment_records_versions_and_git():
    env = measure.environment("cpu")
    assert env["libraries"]["torch"] and "sha" in env["git"] and env["torch_threads"] >= 1
