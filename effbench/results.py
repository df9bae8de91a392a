"""Result files: one RunResult per run, gathered into a ResultSet.

Schema (versioned; loading checks it and rejects a corrupt or foreign file):

ResultSet  {schema: "effbench.resultset/2", suite, description, created_utc, git, env,
            price_per_hour, price_source, target: {fraction, reference}, plan: {run id: {seeds,
            replicates}}, quality_replicates, noninferiority_margin, ab?: {side, settings, wrap,
            python}, runs: [RunResult]}
RunResult  {schema: "effbench.run/2", id, spec, status, reason, error, env, model, data,
            setup: {wall_s, per_technique}, wall_s, metrics, curves, items, technique_records}

`metrics` maps a name to {value, unit, higher_is_better?, samples?, stderr?, n?, method?}; a
figure that could not be measured is {value: null, reason}. `items` keeps per-item scores in item
order for every evaluated task (paired tests between result sets). Derived figures (cost, cost per
point, time-to-target, speed-ups) are not stored: the report computes them.

Version 2 (replicates): a suite run expands into one RunResult per (seed, replicate), each from
its own process. `spec` gains `group` (the suite run's id, shared by its members), `replicate`
(0-based), `threads` (CPU threads the child used, null: torch's default) and `timing_only` (a
replicate that measured timings only: no evaluations). A member's `id` is the group id for its
first seed's replicate 0 and `<group>@s<seed>r<replicate>` otherwise. Version 1 files (one run per
suite run, no such fields) load as groups of one member: their timings have one replicate each.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

RUN_SCHEMA = "effbench.run/2"
SET_SCHEMA = "effbench.resultset/2"
# Older versions that still load (upgraded in memory by _upgrade_run); anything else is refused.
READABLE_RUN = (RUN_SCHEMA, "effbench.run/1")
READABLE_SET = (SET_SCHEMA, "effbench.resultset/1")
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
    if r.get("schema") not in READABLE_RUN:
        raise ResultError(f"{where}: schema {r.get('schema')!r} is not one this version reads ({', '.join(READABLE_RUN)})")
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
    if not isinstance(obj, dict) or obj.get("schema") not in READABLE_SET:
        found = obj.get("schema") if isinstance(obj, dict) else type(obj).__name__
        raise ResultError(f"{where}: not an effbench result set this version reads (schema {found!r}, "
                          f"expected one of {', '.join(READABLE_SET)})")
    if not isinstance(obj.get("runs"), list):
        raise ResultError(f"{where}: field 'runs' missing or not a list")
    for i, r in enumerate(obj["runs"]):
        validate_run(r, f"{where}: runs[{i}]")
        _upgrade_run(r)
    return obj


def _upgrade_run(r: dict) -> None:
    """Fill the version-2 spec fields of an older run in memory (a group of one member)."""
    spec = r["spec"]
    spec.setdefault("group", r["id"])
    spec.setdefault("replicate", 0)
    spec.setdefault("threads", None)
    spec.setdefault("timing_only", False)


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
            "target": {"fraction": suite.target_fraction, "reference": suite.target_reference},
            "plan": getattr(suite, "plan", {}), "quality_replicates": getattr(suite, "quality_replicates", 1),
            "noninferiority_margin": getattr(suite, "noninferiority_margin", 0.01), "runs": []}


def set_dir(root: Path, suite: str, git_sha: str | None) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / suite / f"{stamp}_{(git_sha or 'nogit')[:8]}"


# Spec fields that do not make a run a different experiment: names, limits, which member of a
# group it is, and the thread count (the mismatch guard compares it, so that one side may differ).
NOT_MATCHED = ("id", "timeout_s", "group", "replicate", "seed", "threads", "timing_only")


def match_key(spec: dict) -> str:
    """The group a run belongs to, across result sets: its spec without the NOT_MATCHED fields."""
    return json.dumps({k: v for k, v in spec.items() if k not in NOT_MATCHED}, sort_keys=True)


def metric(run: dict, name: str) -> float | None:
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")
