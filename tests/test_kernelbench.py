"""The kernel micro-benchmark's bookkeeping on CPU: it refuses to time without CUDA, derives GB/s
and speed-ups correctly from the samples it is given, records failures instead of losing the
sweep, and looks peak bandwidth up by whole-word device names. The timings themselves need a GPU
(benchmarks/test_kernel_bench.py); here a fixed fake timer stands in, run through the interpreter
at tiny widths so the records' arithmetic can be checked exactly.
"""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

from effbench import kernelbench as kb  # noqa: E402
from effbench import kernelcases as kc  # noqa: E402

TINY = kc.Shapes(hidden=64, intermediate=176, heads=4, kv_heads=2, head_dim=16, vocab=1000, seq=32)


def test_refuses_cpu():
    with pytest.raises(RuntimeError, match="need a CUDA GPU"):
        kb.run_kernel_bench("cpu", quick=True)


@pytest.mark.parametrize("name,bw", [
    ("NVIDIA H200", 4.8e12), ("NVIDIA H100 80GB HBM3", 3.35e12), ("NVIDIA H100 PCIe", 2.0e12),
    ("NVIDIA A100-SXM4-80GB", 2.039e12), ("NVIDIA A100-PCIE-40GB", 1.555e12), ("NVIDIA L4", 3.0e11),
    ("NVIDIA GeForce RTX 4090", 1.008e12), ("NVIDIA L40S", 864e9), ("Mystery GPU", None), ("cpu", None),
])
def test_peak_bandwidth_table(name, bw):
    got, reason = kb.peak_bandwidth(name)
    assert got == bw
    assert (reason is None) == (bw is not None)


def test_records_and_speedups_from_fixed_samples():
    calls = []

    def fake_timer(run, grad_to_none):
        run()  # the pass must run (and not raise) even though its time is made up
        calls.append(1)
        return [1.0, 2.0, 4.0]  # ms; median 2.0

    recs = kb._run("cpu", (64,), (torch.float32,), fake_timer, impls=("effbench", "eager", "liger"), shapes=TINY)
    assert len(recs) == len(kc.KERNELS) * 3 * len(kb.PASSES)
    assert len(calls) == len(kc.KERNELS) * 2 * len(kb.PASSES)  # liger: not available on CPU
    for r in recs:
        assert set(r) >= {"kernel", "impl", "pass", "tokens", "hidden", "dtype", "median_ms", "samples_ms",
                          "bytes_moved", "gbps", "frac_peak_bw", "peak_bytes"}
        assert r["frac_peak_bw"] is None and "unknown" in r["frac_peak_bw_reason"]
        if r["impl"] == "liger":
            assert r["median_ms"] is None and "not available" in r["error"]
        else:
            assert r["median_ms"] == 2.0
            assert r["gbps"] == pytest.approx(r["bytes_moved"] / 2e-3 / 1e9)
    # bytes model spot checks (fp32: 4 B): swiglu fwd reads gate, up and writes y
    sw = next(r for r in recs if r["kernel"] == "swiglu" and r["pass"] == "fwd" and r["impl"] == "eager")
    assert sw["bytes_moved"] == 3 * 64 * 176 * 4
    rows = kb.speedup_rows(recs)
    assert len(rows) == len(kc.KERNELS) * len(kb.PASSES)
    assert all(r["speedup_vs_eager"] == 1.0 and r["speedup_vs_liger"] is None for r in rows)


def test_speedup_rows_ratio():
    recs = [{"kernel": "rmsnorm", "pass": "fwd", "tokens": 1024, "hidden": 576, "dtype": "bfloat16",
             "impl": impl, "median_ms": ms} for impl, ms in (("effbench", 0.5), ("eager", 2.0), ("liger", 0.4))]
    (row,) = kb.speedup_rows(recs)
    assert row["speedup_vs_eager"] == 4.0 and row["speedup_vs_liger"] == pytest.approx(0.8)
    assert row["speedup_vs_compile"] is None
