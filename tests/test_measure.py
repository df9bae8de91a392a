"""Measurements against known answers: the default model's FLOPs, byte counts, peak memory (and
that an earlier peak is excluded), quantiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from effbench.child import measure
from effbench.child.workloads.common import optimizer_state_bytes, tensor_bytes, weight_bytes


def test_train_flops_of_the_default_model_include_its_tied_head():
    """Known answer: SmolLM2-135M's matmul weights (built on the meta device, no memory) are 30
    blocks of q, k, v, o (576 x 576, 192, 192, 576) and gate, up, down (576 x 1536), plus the tied
    576 x 49152 head: 134,479,872 weights, 6N = 807 MFLOP per token of which the head is 170M."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from effbench.models import SMOLLM2_ARCH

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_ARCH))
    n = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert n == 30 * (576 * (576 + 192 + 192 + 576) + 3 * 576 * 1536) + 576 * 49152 == 134_479_872
    assert measure.train_flops_per_token(n, 30, 576, 0) == pytest.approx(806.9e6, rel=1e-4)
    # the attention term: 12 * layers * seq * width, e.g. 30 x 10 tokens x 576
    assert (
        measure.train_flops_per_token(n, 30, 576, 10) - measure.train_flops_per_token(n, 30, 576, 0)
        == 12 * 30 * 10 * 576
    )


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


def _in_fresh_process(code: str) -> dict:
    """Run a memory measurement in a new interpreter, as a run's child process does. Inside the
    long-lived pytest process, memory that earlier tests freed but the allocator kept resident can
    back a new allocation without raising the resident set, which would hide the very peak these
    tests look for (seen in full `make test` runs, never alone)."""
    import json
    import subprocess
    import sys
    import textwrap

    prog = "import json, torch\nfrom effbench.child import measure\n" + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cpu_peak_memory_sees_a_region_allocation():
    r = _in_fresh_process("""
        mem = measure.Memory("cpu")
        mem.reset()
        before = measure.rss_bytes()
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        read = mem.read()
        peak = read["peak_rss_bytes"]
        del x
        print(json.dumps({"before": before, "peak": peak, "keys": sorted(set(read) - {"method"}),
                          "names": sorted(mem.names())}))
    """)
    assert r["peak"] - r["before"] >= 60 * 2**20
    assert r["keys"] == r["names"]  # what a run that times nothing records as missing
    assert measure.Memory("cuda").names() == ("peak_allocated_bytes", "peak_reserved_bytes")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="VmHWM reset needs Linux /proc")
def test_cpu_peak_memory_excludes_an_earlier_higher_peak():
    """A 512 MiB peak before the reset must not show in the region's peak (64 MiB after it); were
    the reset to fail, the reading would be the process's lifetime peak and include the 512 MiB."""
    r = _in_fresh_process("""
        big = torch.ones(512 * 2**20 // 4)  # touched: resident
        earlier_peak = measure._status_bytes("VmHWM")
        del big  # glibc returns an mmap'd block this large to the system at once
        mem = measure.Memory("cpu")
        mem.reset()
        before = measure.rss_bytes()
        x = torch.ones(64 * 2**20 // 4)
        m = mem.read()
        del x
        print(json.dumps({"reset": mem.rss_reset, "earlier_peak": earlier_peak, "before": before,
                          "peak": m["peak_rss_bytes"], "method": m["method"]}))
    """)
    assert r["reset"]
    assert r["earlier_peak"] - r["before"] >= 400 * 2**20  # the big block really left the resident set
    assert "clear_refs" in r["method"]
    assert 60 * 2**20 <= r["peak"] - r["before"] < 200 * 2**20
    assert r["peak"] < r["earlier_peak"] - 200 * 2**20


def test_stats_quantiles():
    s = measure.stats([float(i) for i in range(11)])
    assert s["median"] == 5 and s["p10"] == 1 and s["p90"] == 9 and s["n"] == 11


def test_time_call_excludes_warmup():
    calls = []
    samples = measure.time_call(lambda: calls.append(1), "cpu", repeats=3, warmup=2)
    assert len(samples) == 3 and len(calls) == 5


def test_missing_figure_has_reason():
    assert measure.Energy("cpu").result() == {
        "value": None,
        "reason": "energy is measured through NVML on NVIDIA GPUs only",
    }
    assert measure.peak_flops("cpu")[0] is None


def test_environment_records_versions_and_git():
    env = measure.environment("cpu")
    assert env["libraries"]["torch"] and "sha" in env["git"] and env["torch_threads"] >= 1
