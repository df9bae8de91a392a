"""Kernel micro-benchmark: time each fused kernel's forward, backward and forward+backward against
eager PyTorch, torch.compile of the same reference and liger-kernel, over token counts around
the default model's shapes (effbench.kernelbench.cases holds the cases and the bytes model).

Timing: triton.testing.do_bench (CUDA; warm-up excluded, L2 flushed between calls, every sample
kept), median reported (statistics.median: the mean of the two middle samples for an even count).
Passes: fwd, bwd and fwdbwd, except flce, timed as fwdbwd only (its gradients are computed in
forward). Derived: gbps = bytes_moved / median_s / 1e9; frac_peak_bw = that over
the device's peak DRAM bandwidth from effbench.read.gpus (None with a reason when the GPU is not listed).
peak_bytes: the device memory allocated at the high point of one call above what was allocated
just before it (inputs, and for bwd the saved graph, are not counted).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from effbench.kernelbench import cases as kc

TOKENS = (1024, 2048, 4096, 8192, 16384, 32768)
TOKENS_QUICK = (1024, 8192)
PASSES = ("fwd", "bwd", "fwdbwd")


def peak_bandwidth(device_name: str) -> tuple[float | None, str | None]:
    """(bytes/s, None) for a listed GPU (effbench.read.gpus, whole-word name match), else (None, reason)."""
    from effbench.read import gpus

    gpu = gpus.lookup(device_name)
    if gpu is None or gpu.bandwidth_bytes_per_s is None:
        return None, f"peak bandwidth of {device_name!r} unknown (table: effbench.read.gpus.GPUS)"
    return gpu.bandwidth_bytes_per_s, None


def _do_bench(fn: Callable, grad_to_none: list) -> list[float]:
    import triton.testing

    return list(triton.testing.do_bench(fn, grad_to_none=grad_to_none, return_mode="all"))


def _pass_fn(fn: Callable, inputs: list, which: str) -> Callable:
    """A zero-argument callable that runs one pass (the forward of bwd runs once, beforehand)."""

    def grads_for(out):
        outs = out if isinstance(out, tuple) else (out,)
        return outs, [torch.ones_like(o) for o in outs]

    if which == "fwd":
        return lambda: fn(*inputs)
    if which == "bwd":
        outs, gs = grads_for(fn(*inputs))
        return lambda: torch.autograd.backward(outs, gs, retain_graph=True)

    def fwdbwd():
        torch.autograd.backward(*grads_for(fn(*inputs)))

    return fwdbwd


def _peak_bytes(run: Callable, device: str) -> int | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def _record(case, impl, which, tokens, dtype, samples, peak, peak_bw, bw_reason, error=None) -> dict:
    median = float(statistics.median(samples)) if samples else None
    nbytes = case.bytes[which]
    gbps = nbytes / (median * 1e-3) / 1e9 if median else None
    flops = case.flops.get(which)
    rec = {
        "kernel": case.kernel,
        "impl": impl,
        "pass": which,
        "tokens": tokens,
        "hidden": case.width,
        "dtype": str(dtype).replace("torch.", ""),
        "median_ms": median,
        "samples_ms": samples,
        "bytes_moved": nbytes,
        "gbps": gbps,
        "frac_peak_bw": gbps * 1e9 / peak_bw if (gbps and peak_bw) else None,
        "peak_bytes": peak,
        "flops": flops,
        "tflops": flops / (median * 1e-3) / 1e12 if (flops and median) else None,
    }
    if peak_bw is None:
        rec["frac_peak_bw_reason"] = bw_reason
    if error:
        rec["error"] = error
    return rec


def _cell(case, impl: str, which: str, tokens: int, dtype, device: str, timer: Callable, bw) -> dict:
    """One (impl, pass) measurement; a failure (OOM, missing API) becomes a record with median_ms
    None and an `error`, so one bad cell does not lose the sweep."""
    try:
        fn = kc.impl_fn(case, impl)
        if fn is None:
            return _record(
                case,
                impl,
                which,
                tokens,
                dtype,
                [],
                None,
                *bw,
                error=f"{impl} not available (liger-kernel: needs the package and CUDA)",
            )
        run = _pass_fn(fn, case.inputs, which)
        samples = timer(run, [t for t in case.inputs if t.requires_grad])
        return _record(case, impl, which, tokens, dtype, samples, _peak_bytes(run, device), *bw)
    except Exception as e:  # noqa: BLE001 - recorded, not hidden
        if device == "cuda":
            torch.cuda.empty_cache()
        return _record(case, impl, which, tokens, dtype, [], None, *bw, error=f"{type(e).__name__}: {e}"[:300])
    finally:
        for t in case.inputs:
            t.grad = None


def _run(
    device: str,
    tokens_list,
    dtypes,
    timer: Callable,
    impls=kc.IMPLS,
    kernels=kc.KERNELS,
    shapes: kc.Shapes | None = None,  # None: the default model's (kc.Shapes())
) -> list[dict]:
    """Every (kernel, tokens, dtype, impl, pass), timed by `timer(run, grad_to_none) -> ms list`."""
    bw = peak_bandwidth(torch.cuda.get_device_name() if device == "cuda" else "cpu")
    records = []
    for kernel in kernels:
        for tokens in tokens_list:
            for dtype in dtypes:
                if "compile" in impls:
                    torch._dynamo.reset()  # each shape compiles fresh; no recompile limit reached
                case = kc.make_case(kernel, tokens, dtype, device, shapes or kc.Shapes())
                records += [
                    _cell(case, impl, which, tokens, dtype, device, timer, bw)
                    for impl in impls
                    for which in case.passes
                ]
                del case
    return records


def run_kernel_bench(device: str, quick: bool = False) -> list[dict]:
    """Records for every kernel x impl x pass x tokens x dtype (see the module docstring)."""
    if device != "cuda" or not torch.cuda.is_available():
        raise RuntimeError(
            f"kernel timings need a CUDA GPU (device {device!r}, "
            f"torch.cuda.is_available()={torch.cuda.is_available()}); on CPU the kernels "
            "run only through Triton's interpreter, which checks correctness, not speed"
        )
    tokens = TOKENS_QUICK if quick else TOKENS
    dtypes = (torch.bfloat16,) if quick else (torch.bfloat16, torch.float32)
    return _run("cuda", tokens, dtypes, _do_bench)
