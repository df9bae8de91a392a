"""The measured ceiling of this device: the matmul FLOP/s it achieves at the suite's dtypes and the
memory bandwidth of a large copy, each timed, so every run's speed can be placed on a roofline
(effbench.read.roofline) against what this device really does rather than a data sheet.

- matmul: C = A @ B with square n x n operands for a few sizes n (2 n^3 FLOPs each); for every size
  a warm-up, then repeats until `min_s` seconds or `max_reps` have passed, each synchronized on
  CUDA; the ceiling at a dtype is the best size's median FLOP/s (a smaller size may win on a CPU
  whose caches it fits).
- bandwidth: dst.copy_(src) of one large contiguous buffer, which reads and writes every byte:
  2 x nbytes per copy / the median time. The buffer is many times larger than the last-level
  cache (256 MiB on CPU, 2 GiB on a GPU), so the figure is DRAM's, not a cache's.

The table peaks (effbench.read.gpus: the data sheet's dense bf16 FLOP/s and DRAM bandwidth) are
recorded beside, where the device is listed, so a reader sees how far the achievable ceiling lies
below the advertised one. Runs in its own process (effbench.run.runner.run_ceiling_child), before
the suite's runs, so nothing of a run's allocator state or threads is shared with it.
"""

from __future__ import annotations

import functools
import statistics
import time

import torch

CPU_SIZES = (512, 1024, 2048)
CUDA_SIZES = (2048, 4096, 8192)
CPU_COPY_BYTES = 256 * 2**20
CUDA_COPY_BYTES = 2 * 2**30
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: str, min_s: float, max_reps: int, min_reps: int = 3) -> list[float]:
    """Seconds of each call of `fn` after one warm-up call, synchronized around each."""
    fn()
    _sync(device)
    out: list[float] = []
    t_end = time.perf_counter() + min_s
    while len(out) < max_reps and (len(out) < min_reps or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def matmul_flops(device: str, dtype: str, sizes=None, min_s: float = 0.3, max_reps: int = 50) -> dict:
    """The best median FLOP/s over square matmuls of `sizes`, with every size's samples."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}; valid: {sorted(DTYPES)}")
    sizes = tuple(sizes or (CUDA_SIZES if device == "cuda" else CPU_SIZES))
    gen = torch.Generator(device=device).manual_seed(0)
    per_size = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, generator=gen).to(DTYPES[dtype])
        b = torch.randn(n, n, device=device, generator=gen).to(DTYPES[dtype])
        c = torch.empty(n, n, device=device, dtype=DTYPES[dtype])
        secs = _timed(functools.partial(torch.matmul, a, b, out=c), device, min_s, max_reps)
        flops = 2.0 * n**3
        per_size[str(n)] = {
            "flops_per_s": flops / statistics.median(secs),
            "samples": [flops / s for s in secs],
        }
    best = max(per_size, key=lambda k: per_size[k]["flops_per_s"])
    return {
        "value": per_size[best]["flops_per_s"],
        "unit": "FLOP/s",
        "size": int(best),
        "sizes": per_size,
        "method": f"torch.matmul of two {dtype} n x n matrices, 2 n^3 FLOPs / median time; best of n in {list(sizes)}",
    }


def copy_bandwidth(device: str, nbytes: int | None = None, min_s: float = 0.3, max_reps: int = 50) -> dict:
    """Bytes per second of dst.copy_(src) over one large buffer, counted as read + write."""
    nbytes = int(nbytes or (CUDA_COPY_BYTES if device == "cuda" else CPU_COPY_BYTES))
    src = torch.ones(nbytes // 4, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    secs = _timed(functools.partial(dst.copy_, src), device, min_s, max_reps)
    moved = 2.0 * src.numel() * 4
    return {
        "value": moved / statistics.median(secs),
        "unit": "B/s",
        "bytes": nbytes,
        "samples": [moved / s for s in secs],
        "method": f"dst.copy_(src) of {nbytes / 2**20:.0f} MiB: 2 x bytes (read + write) / median time",
    }


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    from effbench.child import measure

    return measure.cpu_model()


def table_peaks(device: str) -> dict:
    """The data sheet's dense bf16 FLOP/s and DRAM bandwidth of this GPU, or why there are none."""
    if device != "cuda":
        return {"reason": "no data-sheet peaks for CPUs (effbench.read.gpus lists NVIDIA GPUs)"}
    from effbench.read import gpus

    gpu = gpus.lookup(torch.cuda.get_device_name())
    if gpu is None:
        return {"reason": f"{torch.cuda.get_device_name()!r} is not in effbench.read.gpus.GPUS"}
    return {"label": gpu.label, "bf16_flops_per_s": gpu.bf16_flops, "bandwidth_bytes_per_s": gpu.bandwidth_bytes_per_s}


def measure(device: str, dtypes: list[str], quick: bool = False) -> dict:
    """The ceiling record a result set keeps under `ceiling` (schema: effbench.read.schema.Ceiling)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    min_s = 0.1 if quick else 0.3
    sizes = None
    if quick:
        sizes = (256, 512) if device != "cuda" else (1024, 2048)
    t0 = time.perf_counter()
    out = {
        "device": device,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "matmul": {d: matmul_flops(device, d, sizes, min_s=min_s) for d in dtypes},
        # quick (tests): a 16 MiB copy, which a large last-level cache may hold: not DRAM's figure
        "bandwidth": copy_bandwidth(device, (16 * 2**20 if quick else None), min_s=min_s),
        "quick": quick,
        "table": table_peaks(device),
    }
    out["wall_s"] = time.perf_counter() - t0
    return out
