"""Can this torch use the NVIDIA GPU this machine has? Checked before any run starts.

Why: a torch CUDA build needs a driver at least as new as its CUDA version asks for. With an older
driver `torch.cuda.is_available()` is False although `nvidia-smi` lists the GPU, and choosing the
device by `is_available()` alone would run the CPU suite on a GPU machine without a word. Here
that case stops with the reason (the driver against the wheel's CUDA version) and the ways out
(another torch build, a newer driver, or `--suite cpu` / `SUITE=cpu` to run on the CPU on purpose).

Also: GPUs without bf16 (T4, V100: compute capability < 8.0) cannot run the bf16 paths (bf16
inference weights, bf16 autocast in fine-tuning); `bf16_refusal` says so before a run loads anything.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

# Oldest Linux driver each CUDA major version needs (NVIDIA's CUDA toolkit release notes, minor
# version compatibility): CUDA 11.x >= 450.80.02, 12.x >= 525.60.13, 13.x >= 580.65.06.
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
# Driver -> the CUDA builds of torch it can run, newest first (torch's own wheel index suffixes).
TORCH_BUILDS = (("580.65.06", "cu130"), ("525.60.13", "cu126"), ("450.80.02", "cu118"))


def nvidia_smi_gpus(run: Callable = subprocess.run) -> tuple[list[str], str | None]:
    """(GPU names, driver version) as nvidia-smi reports them; ([], None) without nvidia-smi or GPUs."""
    if shutil.which("nvidia-smi") is None:
        return [], None
    try:
        p = run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return [], None
    if p.returncode != 0:
        return [], None
    rows = [[c.strip() for c in line.split(",")] for line in p.stdout.splitlines() if line.strip()]
    names = [r[0] for r in rows if r and r[0]]
    driver = next((r[1] for r in rows if len(r) > 1 and r[1]), None)
    return names, driver


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".") if x.isdigit())


def unusable_gpu_reason(
    gpus: list[str], driver: str | None, cuda_available: bool, torch_cuda: str | None, torch_version: str
) -> str | None:
    """Why torch cannot use the GPU(s) nvidia-smi lists, with the ways out; None when it can or
    when there is no GPU."""
    if not gpus or cuda_available:
        return None
    head = (
        f"nvidia-smi lists {len(gpus)} GPU(s) ({', '.join(sorted(set(gpus)))}; driver {driver or 'unknown'}) "
        f"but torch {torch_version} cannot use them: "
    )
    if torch_cuda is None:
        why = "this torch is a CPU-only build."
        fix = "Install a CUDA build (`make clean-venv setup` picks the CUDA lock where nvidia-smi works)"
    else:
        need = MIN_DRIVER.get(int(torch_cuda.split(".")[0]))
        old = need is not None and driver is not None and _version(driver) < _version(need)
        why = (
            f"its CUDA {torch_cuda} needs driver >= {need}, the machine has {driver}."
            if old
            else f"its CUDA {torch_cuda} did not initialise (driver {driver or 'unknown'}; see `nvidia-smi` and "
            f"`python -c 'import torch; torch.cuda.init()'` for the error)."
        )
        fits = next((b for d, b in TORCH_BUILDS if driver and _version(driver) >= _version(d)), None)
        fix = "Upgrade the NVIDIA driver, or install a torch build for an older CUDA that this driver runs: " + (
            f"`pip install torch=={torch_version.split('+')[0]} --index-url https://download.pytorch.org/whl/{fits}`"
            if fits
            else "see https://pytorch.org/get-started/locally/"
        )
    return head + why + " " + fix + ". To run on the CPU on purpose: `make bench SUITE=cpu` (or `--suite cpu`)."


def check_gpu_usable() -> None:
    """Raise RuntimeError when nvidia-smi lists a GPU that this torch cannot use."""
    import torch

    if torch.cuda.is_available():
        return
    gpus, driver = nvidia_smi_gpus()
    why = unusable_gpu_reason(gpus, driver, False, torch.version.cuda, torch.__version__)
    if why:
        raise RuntimeError(why)


def bf16_refusal(device: str, capability: tuple[int, int] | None, gpu_name: str, needs_bf16: bool) -> str | None:
    """Why a run that computes in bf16 cannot run on this GPU (compute capability < 8.0: T4, V100),
    with what to do instead; None when it can."""
    if device != "cuda" or not needs_bf16 or capability is None or capability >= (8, 0):
        return None
    return (
        f"{gpu_name} (compute capability {capability[0]}.{capability[1]}) has no bf16: fine-tuning runs "
        "under bf16 autocast and inference loads bf16 weights by default. An inference run can set "
        'dtype = "float16" in its suite entry; fine-tuning needs compute capability >= 8.0 (A100, L4, H100...)'
    )
