"""A GPU that nvidia-smi lists but torch cannot use stops `effbench run --suite auto` (and so
`make bench`) with the reason, instead of running the CPU suite in silence; a GPU without bf16
refuses bf16 runs before any model is loaded. Faked nvidia-smi output and torch state: no GPU here."""

from __future__ import annotations

import os
import stat
import types

import pytest
import torch

from effbench import cli
from effbench.child import cuda_env
from effbench.child import main as child


def _smi(stdout, rc=0):
    return lambda *a, **k: types.SimpleNamespace(returncode=rc, stdout=stdout, stderr="")


def test_nvidia_smi_parsing(monkeypatch):
    monkeypatch.setattr(cuda_env.shutil, "which", lambda _: "/usr/bin/nvidia-smi")
    assert cuda_env.nvidia_smi_gpus(_smi("NVIDIA H200, 570.86.15\nNVIDIA H200, 570.86.15\n")) == (
        ["NVIDIA H200", "NVIDIA H200"],
        "570.86.15",
    )
    assert cuda_env.nvidia_smi_gpus(_smi("", rc=9)) == ([], None)  # driver not loaded
    monkeypatch.setattr(cuda_env.shutil, "which", lambda _: None)
    assert cuda_env.nvidia_smi_gpus(_smi("NVIDIA H200, 570.86.15\n")) == ([], None)


def test_reason_names_driver_cuda_version_and_a_build_that_fits():
    why = cuda_env.unusable_gpu_reason(["NVIDIA H200"], "570.86.15", False, "13.0", "2.13.0")
    assert "CUDA 13.0 needs driver >= 580.65.06" in why and "570.86.15" in why
    assert "whl/cu126" in why and "torch==2.13.0" in why and "SUITE=cpu" in why
    cpu_build = cuda_env.unusable_gpu_reason(["Tesla T4"], "535.1", False, None, "2.13.0+cpu")
    assert "CPU-only build" in cpu_build and "SUITE=cpu" in cpu_build
    assert cuda_env.unusable_gpu_reason([], None, False, None, "2.13.0") is None  # no GPU: cpu is right
    assert cuda_env.unusable_gpu_reason(["NVIDIA H200"], "580.95", True, "13.0", "2.13.0") is None


@pytest.fixture
def fake_gpu_box(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that lists one H200 with a driver too old for CUDA 13; torch sees none."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 570.86.15'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")


def test_auto_suite_refuses_a_silent_cpu_fallback(fake_gpu_box, capsys, tmp_path):
    assert cli.main(["run", "--suite", "auto", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nvidia-smi lists 1 GPU(s) (NVIDIA H200; driver 570.86.15)" in err and "needs driver >= 580.65.06" in err
    assert cli.main(["run", "--scenario", "infer", "--model", "tiny", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_named_cpu_suite_still_runs_on_the_cpu_of_a_gpu_box(fake_gpu_box, capsys, tmp_path):
    # no GPU refusal: the only complaint is about the (deliberately) unknown run id
    cli.main(["run", "--suite", "cpu", "--only", "no-such-run", "--out", str(tmp_path / "r")])
    assert "nvidia-smi" not in capsys.readouterr().err


def test_bf16_refusal_rules():
    assert "no bf16" in cuda_env.bf16_refusal("cuda", (7, 5), "Tesla T4", needs_bf16=True)
    assert cuda_env.bf16_refusal("cuda", (7, 0), "Tesla V100", needs_bf16=False) is None  # fp16 inference
    assert cuda_env.bf16_refusal("cuda", (8, 0), "NVIDIA A100", needs_bf16=True) is None
    assert cuda_env.bf16_refusal("cpu", None, "cpu", needs_bf16=True) is None


def test_child_refuses_bf16_runs_on_a_gpu_without_bf16_before_loading(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    loaded = []
    monkeypatch.setattr(child, "_seed", lambda s: loaded.append(s))
    for scenario, dtype in (("finetune", None), ("infer", None)):
        res = child.run_spec({"id": "r", "scenario": scenario, "model": "tiny", "device": "cuda", "dtype": dtype})
        assert res["status"] == "skipped" and "Tesla T4 (compute capability 7.5) has no bf16" in res["reason"]
        assert not loaded  # refused before seeding, let alone loading a model
