"""On a CPU-only Linux machine `make setup` must install torch's CPU build, never PyPI's Linux wheel
(the CUDA build, whose metadata pulls triton and the nvidia-* libraries), with no extra flag.

The torch step is taken from `make -n setup` (what the Makefile would run, with HAS_NVIDIA empty) and
run with `pip install --dry-run --report` against local file-based PEP 503 indexes built in tmp_path:
a stand-in for PyPI that serves only a fake CUDA build of torch (a tiny wheel whose METADATA requires
nvidia-* packages) and a stand-in for PyTorch's CPU index with a fake `+cpu` build. pip's own
configuration (this machine's find-links and extra indexes) is switched off, so only these count.
Offline, a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TORCH = re.search(r"(?m)^torch==([^\s;#]+)", (REPO / "locks/pins.in").read_text()).group(1)


def _wheel(folder: Path, version: str, requires: list[str]) -> Path:
    """A minimal valid wheel of a package named torch: METADATA, WHEEL, RECORD and one module."""
    name = f"torch-{version}-py3-none-any.whl"
    dist = f"torch-{version}.dist-info"
    requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
    meta = f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n{requires_dist}"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as z:
        z.writestr("torch/__init__.py", "")
        z.writestr(f"{dist}/METADATA", meta)
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return folder / name


def _index(root: Path, wheels: list[Path]) -> str:
    """A PEP 503 simple index at root serving the given wheels for the project torch; its file: URL."""
    page = root / "simple" / "torch"
    page.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{w.as_uri()}">{w.name}</a>\n' for w in wheels)
    (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    return (root / "simple").as_uri()


@pytest.fixture
def fake(tmp_path):
    cuda = _wheel(
        tmp_path / "files",
        TORCH,
        ["nvidia-cublas==13.1.1.3", "nvidia-cudnn-cu13==9.20.0.48", "triton==3.7.1", "filelock"],
    )
    cpu = _wheel(tmp_path / "files", f"{TORCH}+cpu", ["filelock"])
    return {
        "pypi": _index(tmp_path / "pypi", [cuda]),
        "cpu": _index(tmp_path / "cpu", [cpu]),
        "empty": _index(tmp_path / "empty", []),
        "tmp": tmp_path,
    }


def _env(**extra) -> dict:
    """No pip configuration file and no PIP_* variable of this machine; the stand-in PyPI as the default index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        PIP_RETRIES="0",
        PIP_TIMEOUT="5",
        **extra,
    )
    return env


def torch_step(tmp_path: Path, **make_vars) -> list[list[str]]:
    """The pip commands of `make setup`'s torch step on a CPU-only Linux machine, alternatives of a `||`."""
    args = [
        "make",
        "-n",
        "--no-print-directory",
        "-C",
        str(REPO),
        "setup",
        f"VENV={tmp_path / 'venv'}",
        "HAS_NVIDIA=",
        "HOST_OS=Linux",
        *(f"{k}={v}" for k, v in make_vars.items()),
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    lines = [line for line in out.splitlines() if re.search(r'"torch==', line)]
    assert len(lines) == 1, out
    alternatives = []
    for part in lines[0].split(" || "):
        words = shlex.split(part.replace("2>/dev/null", ""))
        assert words[1:4] == ["-m", "pip", "install"], part
        alternatives.append(words[4:])
    return alternatives


def dry_run(pip_args: list[str], env: dict, report: Path) -> dict | None:
    """What `pip install` with these arguments would install (pip's --report), or None if it fails."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--report",
        str(report),
        *pip_args,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    if p.returncode != 0:
        return None
    items = [i for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "torch"]
    assert len(items) == 1
    return items[0]["metadata"]


def run_like_the_shell(alternatives, env, tmp_path) -> dict | None:
    """`A 2>/dev/null || B`: the first alternative that succeeds."""
    for i, args in enumerate(alternatives):
        got = dry_run(args, env, tmp_path / f"report{i}.json")
        if got is not None:
            return got
    return None


def test_the_fixture_reproduces_the_failure_mode(fake):
    """Control: what setup ran before (`pip install torch==X` from the default index) takes the CUDA build."""
    got = dry_run(["--no-deps", f"torch=={TORCH}"], _env(PIP_INDEX_URL=fake["pypi"]), fake["tmp"] / "control.json")
    assert got["version"] == TORCH and any(r.startswith("nvidia-") for r in got["requires_dist"])


def test_cpu_only_machine_without_a_local_wheel_takes_the_cpu_build(fake):
    """Default flags; only the stand-ins for PyPI (CUDA build) and the CPU index exist."""
    steps = torch_step(fake["tmp"], TORCH_CPU_INDEX=fake["cpu"])
    assert any("--index-url" in s and fake["cpu"] in s for s in steps)
    got = run_like_the_shell(steps, _env(PIP_INDEX_URL=fake["pypi"]), fake["tmp"])
    assert got is not None and got["version"] == f"{TORCH}+cpu"
    assert not [r for r in got.get("requires_dist", []) if r.startswith(("nvidia-", "triton"))]


def test_default_cpu_index_is_pytorchs():
    steps = torch_step(Path("/nonexistent"))
    assert ["--index-url", "https://download.pytorch.org/whl/cpu"] == [
        a for a in steps[-1] if "index" in a or "://" in a
    ]


def test_a_wheel_on_this_machine_is_used_without_the_index(fake):
    """As on the machine the locks were made on: the CPU wheel lies in pip's find-links, no index is reachable."""
    steps = torch_step(fake["tmp"], TORCH_CPU_INDEX="file:///nonexistent/simple")
    env = _env(PIP_INDEX_URL="file:///nonexistent/simple", PIP_FIND_LINKS=str(fake["tmp"] / "files"))
    got = dry_run(steps[0], env, fake["tmp"] / "local.json")  # the first alternative, without the index
    assert got is not None and got["version"] == f"{TORCH}+cpu"


def test_no_cpu_build_anywhere_fails_instead_of_taking_the_cuda_build(fake):
    """The pinned local version `+cpu` never matches PyPI's CUDA build, even with PyPI among the indexes."""
    steps = torch_step(fake["tmp"], TORCH_CPU_INDEX=fake["empty"])
    env = _env(PIP_INDEX_URL=fake["pypi"], PIP_EXTRA_INDEX_URL=fake["pypi"])
    assert run_like_the_shell(steps, env, fake["tmp"]) is None
