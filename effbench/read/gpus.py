"""What effbench knows about NVIDIA GPUs by name: dense bf16 peak FLOP/s, peak DRAM bandwidth and a
default price per hour, with whole-word name matching.

Why whole words: torch reports names such as "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL",
"NVIDIA L40S", "Tesla T4". A substring test gives "NVIDIA L40" the figures of the L4 and the
H100 NVL those of the H100 SXM. Here every part of an entry must appear in the name as a whole
word (case-insensitive, bounded by anything that is not a letter or digit: "A100-SXM4-80GB" holds
"A100" and "80GB"), and entries are tried in order, the more specific first.

Figures come from the vendors' data sheets (dense, no 2:4 sparsity). `bf16_flops` is None on GPUs
without bf16 tensor cores (V100, T4): MFU there is missing, not measured against an fp16 figure.
Prices are approximate on-demand rates for one device, late 2025 (they differ by provider and
change: pass your own with --price-per-hour or the suite's price_per_hour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    parts: tuple[str, ...]  # whole words the device name must contain
    label: str
    bf16_flops: float | None  # dense bf16 tensor-core FLOP/s; None: no bf16
    bandwidth_bytes_per_s: float | None  # peak DRAM bandwidth, B/s
    usd_per_hour: float | None = None
    price_source: str = ""


def _price(usd: float, what: str) -> dict:
    return {"usd_per_hour": usd, "price_source": f"typical on-demand {what} rate, late 2025"}


# Most specific first: "H100 NVL" and "H100 PCIe" before the plain "H100" (SXM, "H100 80GB HBM3").
GPUS: tuple[GPU, ...] = (
    GPU(("B200",), "B200", 2.25e15, 8.0e12, **_price(5.99, "B200 180GB")),
    GPU(("H200", "NVL"), "H200 NVL", 835e12, 4.8e12, **_price(3.80, "H200 141GB (SXM rate)")),
    GPU(("H200",), "H200 SXM", 989e12, 4.8e12, **_price(3.80, "H200 141GB SXM")),
    GPU(("H100", "NVL"), "H100 NVL", 835e12, 3.9e12, **_price(2.99, "H100 (SXM rate)")),
    GPU(("H100", "PCIe"), "H100 PCIe", 756e12, 2.0e12, **_price(2.49, "H100 80GB PCIe")),
    GPU(("H100",), "H100 SXM", 989e12, 3.35e12, **_price(2.99, "H100 80GB SXM")),
    GPU(("A100", "80GB"), "A100 80GB", 312e12, 2.039e12, **_price(1.79, "A100 80GB")),
    GPU(("A100",), "A100 40GB", 312e12, 1.555e12, **_price(1.29, "A100 40GB")),
    GPU(("L40S",), "L40S", 362e12, 864e9, **_price(1.00, "L40S")),
    GPU(("L40",), "L40", 181e12, 864e9, **_price(0.99, "L40")),
    GPU(("L4",), "L4", 121e12, 300e9, **_price(0.80, "L4")),
    GPU(("A10G",), "A10G", 70e12, 600e9, **_price(1.01, "A10G (AWS g5)")),
    GPU(("A10",), "A10", 125e12, 600e9, **_price(0.75, "A10")),
    GPU(("RTX", "4090"), "RTX 4090", 165e12, 1.008e12, **_price(0.40, "community-cloud RTX 4090")),
    GPU(("RTX", "3090"), "RTX 3090", 71e12, 936e9, **_price(0.22, "community-cloud RTX 3090")),
    GPU(("V100",), "V100", None, 900e9),  # fp16 tensor cores only
    GPU(("T4",), "T4", None, 320e9, **_price(0.35, "T4")),  # fp16 tensor cores only
)


def _has_word(name: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", name, re.I) is not None


def lookup(device_name: str) -> GPU | None:
    """The first table entry whose every part is a whole word of device_name, else None."""
    for gpu in GPUS:
        if all(_has_word(device_name, p) for p in gpu.parts):
            return gpu
    return None
