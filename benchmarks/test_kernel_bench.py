"""pytest-benchmark view of the fused kernels (CUDA only): forward+backward of each kernel, ours
and eager PyTorch's, at the default model's widths and 8K tokens in bf16.

    pytest benchmarks/test_kernel_bench.py --benchmark-columns=median,iqr,rounds

Each round synchronises the GPU, so a round's time is the kernels' time, not the launch's.
effbench.kernelbench.bench.run_kernel_bench (the full sweep, with do_bench, GB/s and liger/compile) is
the source of result-set numbers; this file is for quick A/B checks while editing a kernel.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pytest_benchmark")
pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="kernel timings need a CUDA GPU; on CPU the Triton kernels only run "
    "through the interpreter, which checks correctness, not speed",
)

TOKENS = 8192


@pytest.mark.cuda
@pytest.mark.parametrize("impl", ["effbench", "eager"])
@pytest.mark.parametrize("kernel", ["rmsnorm", "swiglu", "rope", "flce"])
def test_fwdbwd(benchmark, kernel, impl):
    from effbench.kernelbench import cases as kc

    case = kc.make_case(kernel, TOKENS, torch.bfloat16, "cuda")
    fn = kc.impl_fn(case, impl)

    def step():
        out = fn(*case.inputs)
        outs = out if isinstance(out, tuple) else (out,)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
        for t in case.inputs:
            t.grad = None
        torch.cuda.synchronize()

    step()  # warm-up: compiles the Triton kernels outside the timed rounds
    benchmark.extra_info.update(tokens=TOKENS, hidden=case.width, bytes_moved=case.bytes["fwdbwd"])
    benchmark(step)
