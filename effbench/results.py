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

Loading treats a file as untrusted data (a pull request's benchmark writes the result set that
the gate then reads): at most MAX_FILE_BYTES, nesting at most MAX_DEPTH deep, no NaN/Infinity
and no integer beyond 64 bits, then every field the readers use is type- and range-checked
(effbench.result_schema). Any problem is a ResultError naming the file and the place in it.
Writers never produce NaN/Infinity: a non-finite number is written as null (a metric's value
with the reason). Files the readers write go through `output_file`, which keeps them inside the
result set's folder.
"""
from __future__ import annotations

import datetime as dt
import json
import math
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


MAX_FILE_BYTES = 256 * 2**20  # a real 23-run set is 0.44 MB; a suite with thousands of runs still fits
MAX_DEPTH = 32  # nesting of objects/lists (real files: 7)


class ResultError(ValueError):
    pass


def finite(obj: Any) -> Any:
    """`obj` with every NaN/Infinity replaced by None; a metric whose value is not finite gets a reason."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        out = {k: finite(v) for k, v in obj.items()}
        v = obj.get("value")
        if isinstance(v, float) and not math.isfinite(v) and not out.get("reason"):
            out["reason"] = f"the measured value was {v} (not finite)"
        return out
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide a PR gate head's results from the runner's user
        with os.fdopen(fd, "w") as f:
            json.dump(finite(json.loads(json.dumps(obj, default=_default))), f, indent=1, allow_nan=False)
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


def _check_schema(obj: Any, where: str, model) -> None:
    from . import result_schema

    found = result_schema.problems(obj, model)
    if found:
        raise ResultError(f"{where}: invalid result data:\n  " + "\n  ".join(found))


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
    from . import result_schema

    _check_schema(r, where, result_schema.Run)
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

    from . import result_schema

    _check_schema(obj, where, result_schema.ResultSet)
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


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number a result file may hold")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # beyond 64 bits; also keeps Python's int parsing linear
        raise ValueError(f"integer {text[:24]}... is beyond 64 bits")
    return int(text)


def _parse_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"number {text[:24]} overflows a float")
    return x


def _depth(obj: Any) -> int:
    """Nesting depth of lists/objects, without recursion."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        o, d = todo.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                todo.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def parse(data: bytes, where: str) -> Any:
    """JSON text of a result file -> Python objects, refusing what no effbench writer produces."""
    if len(data) > MAX_FILE_BYTES:
        raise ResultError(f"{where}: {len(data)} bytes is over the {MAX_FILE_BYTES}-byte limit of a result file")
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_int=_parse_int,
                         parse_float=_parse_float)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ResultError(f"{where}: corrupt result file ({e})") from None
    except RecursionError:
        raise ResultError(f"{where}: corrupt result file (nested deeper than the {MAX_DEPTH} levels allowed)") from None
    if _depth(obj) > MAX_DEPTH:
        raise ResultError(f"{where}: corrupt result file (nested deeper than the {MAX_DEPTH} levels allowed)")
    return obj


def load(path: str | Path) -> dict:
    p = resolve(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:  # checked before reading a byte
        raise ResultError(f"{p}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit of a result file")
    with open(p, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)  # a file growing meanwhile is still cut at the limit
    obj = validate_set(parse(data, str(p)), str(p))
    obj["_path"] = str(p)
    return obj


def output_file(folder: str | Path, name: str) -> Path:
    """`folder/name` for a file a reader writes into a result set's folder (plots, README), refusing
    a name or a symlinked subfolder that would land outside the folder. The file itself should be
    written with `replace_file` (a symlink already at that name is replaced, never followed)."""
    root = Path(folder).resolve()
    rel = Path(name)
    if rel.is_absolute() or any(part in ("", ".", "..") for part in rel.parts) or not rel.parts:
        raise ResultError(f"output name {name!r} is not a plain relative name inside {root}")
    target = root / rel
    if not target.parent.resolve().is_relative_to(root):
        raise ResultError(f"output {name!r} would be written outside the result folder {root} (a symlinked folder?)")
    return target


def output_dir(folder: str | Path, name: str) -> Path:
    """A subfolder of a result set's folder for a reader's files; refused if it resolves outside."""
    sub = output_file(folder, name)
    if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
        raise ResultError(f"output folder {str(sub)!r} exists and is not a plain folder")
    sub.mkdir(exist_ok=True)
    return sub


def replace_file(path: Path, write) -> None:
    """Call `write(tmp_path)` for a temporary file beside `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
