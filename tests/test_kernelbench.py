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

from effbench.kernelbench import bench as kb
from effbench.kernelbench import cases as kc
from effbench.render import kernel_report

TINY = kc.Shapes(hidden=64, intermediate=176, heads=4, kv_heads=2, head_dim=16, vocab=1000, seq=32)


def test_refuses_cpu():
    with pytest.raises(RuntimeError, match="need a CUDA GPU"):
        kb.run_kernel_bench("cpu", quick=True)


@pytest.mark.parametrize(
    "name,bw",
    [
        ("NVIDIA H200", 4.8e12),
        ("NVIDIA H100 80GB HBM3", 3.35e12),
        ("NVIDIA H100 PCIe", 2.0e12),
        ("NVIDIA A100-SXM4-80GB", 2.039e12),
        ("NVIDIA A100-PCIE-40GB", 1.555e12),
        ("NVIDIA L4", 3.0e11),
        ("NVIDIA GeForce RTX 4090", 1.008e12),
        ("NVIDIA L40S", 864e9),
        ("Mystery GPU", None),
        ("cpu", None),
    ],
)
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
    n_cells = (len(kc.KERNELS) - 1) * len(kb.PASSES) + 1  # flce: fwdbwd only
    assert len(recs) == 3 * n_cells
    assert len(calls) == 2 * n_cells  # liger: not available on CPU
    assert {r["pass"] for r in recs if r["kernel"] == "flce"} == {"fwdbwd"}
    for r in recs:
        assert set(r) >= {
            "kernel",
            "impl",
            "pass",
            "tokens",
            "hidden",
            "dtype",
            "median_ms",
            "samples_ms",
            "bytes_moved",
            "gbps",
            "frac_peak_bw",
            "peak_bytes",
        }
        assert r["frac_peak_bw"] is None and "unknown" in r["frac_peak_bw_reason"]
        if r["impl"] == "liger":
            assert r["median_ms"] is None and "not available" in r["error"]
        else:
            assert r["median_ms"] == 2.0  # the middle of three samples
            assert r["gbps"] == pytest.approx(r["bytes_moved"] / 2e-3 / 1e9)
    # bytes model spot checks (fp32: 4 B): swiglu fwd reads gate, up and writes y
    sw = next(r for r in recs if r["kernel"] == "swiglu" and r["pass"] == "fwd" and r["impl"] == "eager")
    assert sw["bytes_moved"] == 3 * 64 * 176 * 4
    rows = kernel_report.speedup_rows(recs)
    assert len(rows) == n_cells
    assert all(r["speedup_vs_eager"] == 1.0 and r["speedup_vs_liger"] is None for r in rows)


def test_speedup_rows_ratio():
    recs = [
        {
            "kernel": "rmsnorm",
            "pass": "fwd",
            "tokens": 1024,
            "hidden": 576,
            "dtype": "bfloat16",
            "impl": impl,
            "median_ms": ms,
        }
        for impl, ms in (("effbench", 0.5), ("eager", 2.0), ("liger", 0.4))
    ]
    (row,) = kernel_report.speedup_rows(recs)
    assert row["speedup_vs_eager"] == 4.0 and row["speedup_vs_liger"] == pytest.approx(0.8)
    assert row["speedup_vs_compile"] is None


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    case = kc.make_case("swiglu", 64, torch.float32, "cpu", TINY)
    rec = kb._record(case, "eager", "fwd", 64, torch.float32, [1.0, 2.0, 4.0, 10.0], None, None, "no table")
    assert rec["median_ms"] == 3.0  # torch.median would give 2.0, the lower middle value
    assert rec["gbps"] == pytest.approx(rec["bytes_moved"] / 3e-3 / 1e9)


def _storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors`: a stride-0 view counts its storage once."""
    seen = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tokens", [32, 96])  # one sequence of 32, and three: cos/sin broadcast over the batch
def test_rope_bytes_are_the_storages_it_reads_and_writes(tokens, dtype):
    case = kc.make_case("rope", tokens, dtype, "cpu", TINY)
    q, k, cos, sin = case.inputs
    assert cos.shape[0] == 1 and sin.shape[0] == 1  # [1, seq, head_dim], as the model's rotary embedding
    qo, ko = case.ours(*case.inputs)
    assert case.bytes["fwd"] == _storage_bytes([q, k, cos, sin]) + _storage_bytes([qo, ko])
    dq, dk = torch.ones_like(qo), torch.ones_like(ko)
    torch.autograd.backward((qo, ko), (dq, dk))
    assert case.bytes["bwd"] == _storage_bytes([dq, dk, cos, sin]) + _storage_bytes([q.grad, k.grad])
    assert case.bytes["fwdbwd"] == case.bytes["fwd"] + case.bytes["bwd"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_flce_bytes_and_flops_against_independent_counts(dtype):
    from torch.utils.flop_counter import FlopCounterMode

    case = kc.make_case("flce", 64, dtype, "cpu", TINY)
    assert case.passes == ("fwdbwd",) and set(case.bytes) == set(case.flops) == {"fwdbwd"}
    x, w = case.inputs
    with FlopCounterMode(display=False) as fc:  # the reference's matmuls: logits, dx, dW
        case.ref(x, w).backward()
    assert case.flops["fwdbwd"] == fc.get_total_flops() == 6 * 64 * TINY.vocab * TINY.hidden
    x.grad = w.grad = None
    loss = case.ours(x, w)
    loss.backward()
    labels = 64 * 8  # int64 token ids
    assert loss.dtype == torch.float32
    assert case.bytes["fwdbwd"] == _storage_bytes([x, w]) + labels + loss.element_size() + _storage_bytes(
        [x.grad, w.grad]
    )
