"""Result files: one RunResult per run, gathered into a ResultSet.

Schema (versioned; loading checks it and rejects a corrupt or foreign file):

ResultSet  {schema: "effbench.resultset/1", suite, description, created_utc, git, env,
            price_per_hour, price_source, target: {fraction, reference}, runs: [RunResult]}
RunResult  {schema: "effbench.run/1", id, spec, status, reason, error, env, model, data,
            setup: {wall_s, per_technique}, wall_s, metrics, curves, items, technique_records}

`metrics` maps a name to {value, unit, higher_is_better?, samples?, stderr?, n?, method?}; a
figure that could not be measured is {value: null, reason}. `items` keeps per-item scores in item
order for every evaluated task (paired tests between result sets). Derived figures (cost, cost per
point, time-to-target, speed-ups) are not stored: the report computes them.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RUN_SCHEMA = "effbench.run/1"
SET_SCHEMA = "effbench.resultset/1"
STATUSES = ("ok", "skipped", "failed", "oom", "timeout")


class ResultError(ValueError):
    pass


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=_default, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def new_run(run_id: str, spec: dict, status: str = "ok", reason: str | None = None) -> dict:
    return {"schema": RUN_SCHEMA, "id": run_id, "spec": spec, "status": status, "reason": reason, "error": None,
            "env": {}, "model": {}, "data": {}, "setup": {"wall_s": 0.0, "per_technique": {}}, "wall_s": None,
            "metrics": {}, "curves": {}, "items": {}, "technique_records": {}}


def validate_run(r: Any, where: str = "run") -> dict:
    if not isinstance(r, dict):
        raise ResultError(f"{where}: expected an object, got {type(r).__name__}")
    if r.get("schema") != RUN_SCHEMA:
        raise ResultError(f"{where}: schema {r.get('schema')!r} is not {RUN_SCHEMA!r}")
    for key, typ in (("id", str), ("spec", dict), ("status", str), ("metrics", dict), ("items", dict), ("setup", dict)):
        if not isinstance(r.get(key), typ):
            raise ResultError(f"{where}: field {key!r} missing or not {typ.__name__}")
    if r["status"] not in STATUSES:
        raise ResultError(f"{where}: status {r['status']!r} is not one of {list(STATUSES)}")
    for name, m in r["metrics"].items():
        if not isinstance(m, dict) or "value" not in m:
            raise ResultError(f"{where}: metric {name!r} has no value")
        if m["value"] is None and not m.get("reason"):
            raise ResultError(f"{where}: metric {name!r} is missing without a reason")
    return r


def validate_set(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict) or obj.get("schema") != SET_SCHEMA:
        found = obj.get("schema") if isinstance(obj, dict) else type(obj).__name__
        raise ResultError(f"{where}: not an effbench result set (schema {found!r}, expected {SET_SCHEMA!r})")
    if not isinstance(obj.get("runs"), list):
        raise ResultError(f"{where}: field 'runs' missing or not a list")
    for i, r in enumerate(obj["runs"]):
        validate_run(r, f"{where}: runs[{i}]")
    return obj


def resolve(path: str | Path) -> Path:
    """A result set's results.json from a file or a folder path."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise ResultError(f"no result set at {path!r} (expected results.json or a folder holding it)")
    return p


def load(path: str | Path) -> dict:
    p = resolve(path)
    try:
        obj = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultError(f"{p}: corrupt result file ({e})") from None
    obj = validate_set(obj, str(p))
    obj["_path"] = str(p)
    return obj


def new_set(suite, env: dict, git: dict) -> dict:
    return {"schema": SET_SCHEMA, "suite": suite.name, "description": suite.description, "suite_path": suite.path,
            "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "git": git, "env": env,
            "price_per_hour": suite.price_per_hour, "price_source": suite.price_source,
            "target": {"fraction": suite.target_fraction, "reference": suite.target_reference}, "runs": []}


def set_dir(root: Path, suite: str, git_sha: str | None) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / suite / f"{stamp}_{(git_sha or 'nogit')[:8]}"


def metric(run: dict, name: str) -> float | None:
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")
