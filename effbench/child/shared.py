"""Measurements that the runs of one result set share: the unmodified model's evaluation.

Every fine-tuning run scores the unmodified model before any technique (its task accuracy, and
HellaSwag where the budget asks for retention), so that its gain and its retention are paired per
item. In one set those inputs are usually identical from run to run: the same weights, dtype,
device, CPU threads, evaluation items and batch size, and the same code and libraries (a set never
mixes code: `--resume` and `merge` refuse it). The first run that needs the evaluation measures it
and writes it beside the runs' results (`runs/unmodified-<key>.json`, key = SHA-256 of everything
above); a later run whose inputs hash the same reads it instead of measuring it again, and records
which run measured it. On CPU this saves the two evaluations (~95 s) in every fine-tuning run but
the first. A file that is not a plain file, does not parse or whose stored inputs differ is ignored
and measured again; two runs racing on one file both measure (rename keeps one whole file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

PREFIX = "unmodified-"


def key(**inputs) -> dict:
    """The inputs an unmodified evaluation depends on, with the library versions."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "transformers", "lm_eval", "peft", "datasets"):
        try:
            versions[pkg] = md.version(pkg.replace("_", "-"))
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {**inputs, "versions": versions}


def _path(folder: Path, k: dict) -> Path:
    digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()
    return Path(folder) / f"{PREFIX}{digest[:24]}.json"


def load(folder: Path | None, k: dict) -> dict | None:
    """The stored evaluation for inputs `k`, or None (no folder, no file, or one that does not match)."""
    if folder is None:
        return None
    p = _path(folder, k)
    if p.is_symlink() or not p.is_file():
        return None
    try:
        stored = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != k or not isinstance(stored.get("value"), dict):
        return None
    return stored


def store(folder: Path | None, k: dict, run_id: str, value: dict) -> None:
    """Keep `value` (metrics, items, data of the unmodified evaluation) for later runs of the set."""
    if folder is None:
        return
    from effbench.read.results import write_json_atomic

    write_json_atomic(_path(folder, k), {"key": k, "run": run_id, "value": value})
