"""Command-line values shared by the `effbench` subcommands (cli/main.py and cli/compare.py): parameter and
budget values, techniques, seeds, the device `auto` resolves to, and the suite overrides that
`run`, `ab` and `aa` take. Each bad value raises runspec.ConfigError naming it and what is valid.
"""

from __future__ import annotations

import argparse
import json

from effbench import runspec
from effbench.run import suites


def parse_value(text: str):
    """CLI parameter values: JSON where it parses (numbers, true/false, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_technique(text: str) -> dict:
    """`lora` or `lora:r=16,alpha=32` -> {name, params}."""
    name, _, rest = text.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        k, eq, v = part.partition("=")
        if not eq:
            raise runspec.ConfigError(f"technique parameter {part!r} in {text!r} is not key=value")
        params[k.strip()] = parse_value(v.strip())
    return {"name": name.strip(), "params": params}


def parse_kv(items: list[str]) -> dict:
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq:
            raise runspec.ConfigError(f"--budget {it!r} is not key=value")
        out[k] = parse_value(v)
    return out


def auto_device(device: str) -> str:
    """`auto`: cuda where torch can use a GPU; cpu where there is none. Where nvidia-smi lists a GPU
    that torch cannot use (a driver too old for the wheel's CUDA, a CPU-only torch), stop with the
    reason instead of running on the CPU in silence (effbench.child.cuda_env)."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    from effbench.child.cuda_env import check_gpu_usable

    try:
        check_gpu_usable()
    except RuntimeError as e:
        raise runspec.ConfigError(str(e)) from None
    return "cpu"


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise runspec.ConfigError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    return suites.check_seeds("--seeds", seeds)


def suite_overrides(args, device: str | None) -> dict:
    """Suite-level overrides from the command line (run, ab, aa); device None: the suite's own."""
    overrides: dict = {"device": device} if device else {}
    for key in ("model", "seed", "price_per_hour", "text", "kernel_bench", "ceiling", "replicates", "threads"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "seeds", None):
        overrides["seeds"] = parse_seeds(args.seeds)
    for key in ("replicates", "threads"):
        if key in overrides:
            suites.check_count(f"--{key}", key, overrides[key])
    return overrides


def add_replication_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--replicates", type=int, help="timed replicates per run and seed, each its own process (suite's otherwise)"
    )
    p.add_argument("--seeds", help="comma-separated seeds for every run, e.g. 0,1,2 (suite's otherwise)")
    p.add_argument("--threads", type=int, help="CPU threads for torch, OpenMP and BLAS in every run (recorded)")
