"""Measurement: timing, memory, energy, FLOPs, and the environment a result was measured in.

- Time: `torch.cuda.synchronize()` around each timed call on CUDA, `time.perf_counter` on CPU;
  warm-up calls are excluded and every sample is kept (median and spread are derived).
- Memory: `torch.cuda.max_memory_allocated/reserved` after a reset on CUDA; on CPU the peak
  resident set size of the region: VmHWM from /proc/self/status after resetting it to the current
  RSS through /proc/self/clear_refs (Linux), so an earlier, higher peak (model loading) is
  excluded. Where that reset is refused, getrusage's ru_maxrss (the process's lifetime peak, which
  never goes down) is recorded and the method says so.
- Energy: NVML's total-energy counter (mJ) on CUDA where the driver exposes it; else missing.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import torch

LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "lm_eval",
    "bitsandbytes",
    "torchao",
    "triton",
    "liger-kernel",
    "gguf",
    "datasketch",
    "numpy",
    "tabulate",
    "matplotlib",
)


def metric(value, unit: str, higher_is_better: bool | None = None, **extra) -> dict:
    """One measured figure as a result file holds it: its value and unit, whether higher is better
    (None: a count or a description, never judged better or worse), and any of `method`, `samples`,
    `stderr`, `n`, ... The read side takes a figure's direction from here."""
    out = {"value": value, "unit": unit}
    if higher_is_better is not None:
        out["higher_is_better"] = higher_is_better
    out.update(extra)
    return out


def missing(reason: str) -> dict:
    """A figure that could not be measured here: null with the reason, never a stand-in."""
    return {"value": None, "reason": reason}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str, repeats: int = 3, warmup: int = 1) -> list[float]:
    """Wall seconds of `fn` for each of `repeats` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def stats(samples: list[float]) -> dict:
    s = sorted(samples)
    if not s:
        return {"median": None, "n": 0}

    def q(p: float) -> float:
        k = (len(s) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)

    return {"median": statistics.median(s), "p10": q(0.1), "p90": q(0.9), "min": s[0], "max": s[-1], "n": len(s)}


class Memory:
    """Peak memory over a region: CUDA allocator peaks, or the process's peak RSS on CPU."""

    def __init__(self, device: str):
        self.device = device
        self.rss_reset = False

    def reset(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()  # the reserved peak starts from what live tensors hold, not an earlier region's cache
            torch.cuda.reset_peak_memory_stats()
            return
        # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS, so the
        # peak covers this region only, not model loading before it.
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.rss_reset = True
        except OSError:
            self.rss_reset = False

    def names(self) -> tuple[str, ...]:
        """The metrics read() records on this device."""
        return ("peak_allocated_bytes", "peak_reserved_bytes") if self.device == "cuda" else ("peak_rss_bytes",)

    def read(self) -> dict:
        if self.device == "cuda":
            torch.cuda.synchronize()
            return {
                "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
                "method": "torch.cuda.max_memory_allocated/reserved after reset",
            }
        hwm = _status_bytes("VmHWM") if self.rss_reset else None
        if hwm is not None:
            return {
                "peak_rss_bytes": hwm,
                "method": "VmHWM after resetting it through /proc/self/clear_refs (region peak)",
            }
        return {"peak_rss_bytes": peak_rss_bytes(), "method": "getrusage ru_maxrss (process peak, includes loading)"}


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * (1 if sys.platform == "darwin" else 1024)


def nvml_uuid(torch_uuid) -> str:
    """NVML's spelling of a device UUID ("GPU-8f6d...") from torch's (a UUID, no prefix)."""
    u = str(torch_uuid)
    return u if u.startswith(("GPU-", "MIG-")) else f"GPU-{u}"


def nvml_handle(pynvml, index: int | None = None):
    """NVML handle of torch's CUDA device `index` (default: the current one), matched by UUID.
    Not by index: torch numbers only the devices CUDA_VISIBLE_DEVICES leaves visible, in its
    order (torch's 0 can be NVML's 3), while NVML numbers every GPU on the machine."""
    idx = torch.cuda.current_device() if index is None else index
    return pynvml.nvmlDeviceGetHandleByUUID(nvml_uuid(torch.cuda.get_device_properties(idx).uuid))


class Energy:
    """GPU energy over a region from NVML's total-energy counter; pause()/resume() leave a part of
    the region out (fine-tuning's evaluations): the result is the sum of the measured segments."""

    def __init__(self, device: str):
        self.device, self.handle, self.reason, self.start_mj = device, None, None, None
        self.total_mj, self.segments = 0, 0
        if device != "cuda":
            self.reason = "energy is measured through NVML on NVIDIA GPUs only"
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = nvml_handle(pynvml)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception as e:  # no NVML, or the counter unsupported on this GPU/driver
            self.handle, self.reason = None, f"NVML energy counter unavailable: {e}"

    def __enter__(self):
        if self.handle is not None:
            import pynvml

            sync(self.device)
            self.start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        return self

    def __exit__(self, *exc):
        self.pause()

    def pause(self) -> None:
        self.end_mj = None
        if self.handle is not None and self.start_mj is not None:
            import pynvml

            sync(self.device)
            self.end_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.total_mj += self.end_mj - self.start_mj
            self.segments += 1
            self.start_mj = None

    def resume(self) -> None:
        self.__enter__()

    def result(self) -> dict:
        if self.handle is None or not self.segments:
            return missing(self.reason or "energy region not measured")
        return {
            "value": self.total_mj / 1000.0,
            "unit": "J",
            "method": "NVML total energy counter"
            + (f", sum of {self.segments} segments (evaluations excluded)" if self.segments > 1 else ""),
        }


@contextmanager
def stopwatch(out: dict, key: str, device: str = "cpu"):
    sync(device)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        sync(device)
        out[key] = time.perf_counter() - t0


def train_flops_per_token(matmul_weights: int, n_layers: int, attn_width: int, seq_len: float) -> float:
    """Model FLOPs per trained token of full fine-tuning (the MFU convention; PaLM, appendix B):

        6 * matmul_weights + 12 * n_layers * seq_len * attn_width

    6 per weight of every matmul a token passes through (2 forward, 2 for the input gradient, 2 for
    the weight gradient), the output projection included: a tied head shares the embedding's
    weights but is still a vocab x hidden matmul at every position, while the embedding lookup is
    no matmul. The attention term is QK^T and AV (4 * seq * width forward per layer, twice that
    backward) over the full seq x seq matrix, as torch.utils.flop_counter counts it; attn_width =
    query heads x head_dim. What a run really executes (frozen weights, adapters, recomputation)
    is effbench.child.workloads.flops.executed()."""
    return 6.0 * matmul_weights + 12.0 * n_layers * seq_len * attn_width


def peak_flops(device: str) -> tuple[float | None, str]:
    """Dense bf16 peak FLOP/s of this CUDA GPU (effbench.read.gpus, whole-word name match), or None
    with the reason (CPU, an unlisted GPU, or one without bf16)."""
    if device != "cuda" or not torch.cuda.is_available():
        return None, "MFU is reported on CUDA GPUs only"
    return peak_flops_for(torch.cuda.get_device_name())


def peak_flops_for(device_name: str) -> tuple[float | None, str]:
    from effbench.read import gpus

    gpu = gpus.lookup(device_name)
    if gpu is None:
        return None, f"no peak FLOP/s known for {device_name!r} (table: effbench.read.gpus.GPUS)"
    if gpu.bf16_flops is None:
        return None, f"{gpu.label} has no bf16 tensor cores: no bf16 peak to compare with"
    return gpu.bf16_flops, f"{gpu.label} dense bf16 peak"


def _git(args: list[str]) -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except Exception:
        return None


def git_state() -> dict:
    sha = _git(["rev-parse", "HEAD"])
    dirty = _git(["status", "--porcelain", "--untracked-files=no"])
    out = {"sha": sha, "dirty": bool(dirty) if dirty is not None else None}
    if dirty:  # which uncommitted changes: `--resume` and `merge` accept only the same code
        diff = _git(["diff", "HEAD", "--no-ext-diff", "--binary"])
        out["diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest() if diff is not None else None
    return out


def library_versions() -> dict:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "libraries": library_versions(),
        "git": git_state(),
    }
    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.cuda.current_device())
        env.update(
            device_name=torch.cuda.get_device_name(),
            cuda=torch.version.cuda,
            device_memory_bytes=p.total_memory,
            capability=f"{p.major}.{p.minor}",
            device_uuid=nvml_uuid(p.uuid),
            bf16_supported=torch.cuda.is_bf16_supported(including_emulation=False),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        try:
            import pynvml

            pynvml.nvmlInit()
            env["driver"] = pynvml.nvmlSystemGetDriverVersion()
        except Exception as e:
            env["driver"] = None
            env["driver_reason"] = f"NVML unavailable: {e}"
    else:
        env["device_name"] = env["cpu"]
    return env
