"""The two lock files resolve: the CUDA lock (constraints-cuda.txt) for Linux x86-64 manylinux_2_28
and CPython 3.12 from package metadata alone (uv, no wheel downloaded), the CPU lock as this
machine installs it. A fresh GPU install failed before because the CPU-era pins held
triton 3.6.0 while PyPI's torch 2.13.0 CUDA wheel requires triton 3.7.1: pip cannot resolve that.

The resolution test needs PyPI (CI has it); without a connection it is skipped with the reason,
and any resolution conflict fails it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXTRAS = ("eval", "quant", "kernels", "data", "gpu", "ray", "test")


def pins(text: str) -> dict[str, str]:
    """name (normalised) -> version for each `name==version` line of a lock file's text."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def uv() -> str:
    exe = Path(sys.executable).parent / "uv"
    return str(exe) if exe.exists() else (shutil.which("uv") or pytest.fail("uv is not installed (test extra)"))


def test_locks_differ_where_the_platforms_do():
    cpu, cuda = (pins((REPO / f).read_text()) for f in ("constraints.txt", "constraints-cuda.txt"))
    assert cpu["torch"] == cuda["torch"] == "2.13.0"
    assert "scipy" in cpu and "scipy" in cuda  # imported by the CLI: a declared dependency
    assert {"ray", "hypothesis"} <= set(cpu) & set(cuda)  # their tests run in `make test`, never skipped
    # the CPU build of torch needs no CUDA library (nvidia-ml-py is NVML's Python binding, a plain package)
    assert not [p for p in cpu if p.startswith(("nvidia-", "cuda-")) and p != "nvidia-ml-py"]
    assert {"cuda-toolkit", "triton", "nvidia-cudnn-cu13"} <= set(cuda)
    shared = set(cpu) & set(cuda) - {"triton"}
    assert {p: (cpu[p], cuda[p]) for p in shared if cpu[p] != cuda[p]} == {}  # one version of everything else


def _compile(lock: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [uv(), "pip", "compile", str(REPO / "pyproject.toml"), *[a for e in EXTRAS for a in ("--extra", e)],
           "-c", str(REPO / lock), "-c", str(REPO / "locks/pins.in"), "--python-platform", "x86_64-manylinux_2_28",
           "--no-annotate", "--no-header", "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.parametrize("lock,args", [
    ("constraints-cuda.txt", ("--python-version", "3.12", "--no-config")),
    ("constraints.txt", ("--python-version", "3.11", "--config-file", str(REPO / "locks/torch-cpu.toml"))),
])
def test_lock_resolves_from_metadata_without_conflict(lock, args):
    """Resolving pyproject's dependencies under the lock as constraints must succeed (no conflict)
    and need exactly the lock's pins: nothing missing, nothing at another version."""
    p = _compile(lock, *args)
    if p.returncode != 0 and re.search(r"(?i)(failed to fetch|connect|dns|network|timed out)", p.stderr) \
            and "No solution found" not in p.stderr:
        pytest.skip(f"PyPI unreachable, lock not resolved: {p.stderr.strip()[-300:]}")
    assert p.returncode == 0, p.stderr[-3000:]
    resolved, locked = pins(p.stdout), pins((REPO / lock).read_text())
    assert resolved == {k: v for k, v in locked.items() if k in resolved}
    assert set(locked) - set(resolved) == set(), "packages in the lock that nothing requires: run `make lock`"
    if lock == "constraints-cuda.txt":
        assert resolved["torch"] == "2.13.0" and resolved["triton"] == "3.7.1" and "cuda-toolkit" in resolved

