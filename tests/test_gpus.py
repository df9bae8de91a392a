"""GPU names are matched as whole words for peaks and prices (effbench.read.gpus), and NVML devices by
UUID, so that CUDA_VISIBLE_DEVICES cannot point the energy counter at another GPU."""

from __future__ import annotations

import types

import pytest
import torch

from effbench.child import measure
from effbench.read import cost, gpus


@pytest.mark.parametrize(
    "name,label",
    [
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB"),
        ("NVIDIA L40", "L40"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
        ("Tesla V100-SXM2-32GB", "V100"),
        ("Tesla T4", "T4"),
        ("nvidia h200", "H200 SXM"),
    ],
)
def test_names_match_whole_words_most_specific_first(name, label):
    assert gpus.lookup(name).label == label


@pytest.mark.parametrize("name", ["NVIDIA L400", "NVIDIA GH200x", "NVIDIA RTX A6000", "cpu", "", "XH100"])
def test_unknown_names_match_nothing(name):
    assert gpus.lookup(name) is None


def test_variants_get_their_own_figures_not_the_sxm_ones():
    sxm, nvl, pcie = (gpus.lookup(f"NVIDIA H100 {v}") for v in ("80GB HBM3", "NVL", "PCIe"))
    assert sxm.bf16_flops > nvl.bf16_flops > pcie.bf16_flops
    assert nvl.bandwidth_bytes_per_s > sxm.bandwidth_bytes_per_s > pcie.bandwidth_bytes_per_s
    assert gpus.lookup("NVIDIA H200 NVL").bf16_flops < gpus.lookup("NVIDIA H200").bf16_flops
    assert gpus.lookup("NVIDIA L40").bf16_flops != gpus.lookup("NVIDIA L4").bf16_flops
    # every entry is reachable: no earlier, less specific entry shadows it
    for g in gpus.GPUS:
        assert gpus.lookup("NVIDIA " + " ".join(g.parts)) is g


def test_no_bf16_peak_on_gpus_without_bf16():
    for name in ("Tesla V100-SXM2-16GB", "Tesla T4"):
        value, why = measure.peak_flops_for(name)
        assert value is None and "no bf16" in why
    assert measure.peak_flops_for("NVIDIA B200") == (2.25e15, "B200 dense bf16 peak")
    assert measure.peak_flops_for("Mystery GPU")[0] is None


def test_prices_and_bandwidth_use_the_same_matching():
    def price(n):
        return cost.price_for({"device": "cuda", "device_name": n})[0]

    assert price("NVIDIA L40") != price("NVIDIA L4")
    assert price("NVIDIA H200") == 3.80 and price("NVIDIA B200") > price("NVIDIA H200")
    assert price("Tesla V100-SXM2-16GB") is None  # no default price: the user passes one
    assert gpus.lookup("NVIDIA H100 NVL").bandwidth_bytes_per_s == 3.9e12  # kernelbench.peak_bandwidth's source
    assert gpus.lookup("NVIDIA L40").bandwidth_bytes_per_s == 864e9


def test_nvml_handle_is_found_by_uuid_not_by_index(monkeypatch):
    """torch's device 0 under CUDA_VISIBLE_DEVICES=3 is NVML's device 3: the handle must be the one
    whose UUID is torch's device's UUID."""
    nvml_devices = [f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd" for i in range(4)]
    fake = types.SimpleNamespace(
        nvmlDeviceGetHandleByUUID=lambda u: ("handle", nvml_devices.index(u)),
        nvmlDeviceGetHandleByIndex=lambda i: ("handle", i),
    )
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid=nvml_devices[3][4:])
    )  # torch: no "GPU-"
    assert measure.nvml_handle(fake) == ("handle", 3)
    assert measure.nvml_uuid("MIG-1234") == "MIG-1234"
