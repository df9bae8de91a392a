"""The members of a result set's runs: groups of (seed, replicate) RunResults of one suite run.

A group is every run with the same spec apart from results.NOT_MATCHED (id, seed, replicate,
threads, ...). Its primary member (first seed, replicate 0) carries the figures measured once
(bytes, deterministic quality); timings come from every ok member (one value per replicate);
accuracies from the quality members, one per seed. Version-1 result sets give groups of one.
"""

from __future__ import annotations

import math

import numpy as np

from effbench.read.results import match_key


def groups(rs: dict) -> dict[str, list[dict]]:
    """match key -> member runs, in the order they appear."""
    out: dict[str, list[dict]] = {}
    for r in rs["runs"]:
        out.setdefault(match_key(r["spec"]), []).append(r)
    return out


def primary(members: list[dict]) -> dict:
    """The member whose id is the group's (first seed, replicate 0), else the first quality member."""
    for r in members:
        if r["id"] == r["spec"].get("group", r["id"]):
            return r
    return next((r for r in members if not r["spec"].get("timing_only")), members[0])


def ok(members: list[dict]) -> list[dict]:
    return [r for r in members if r["status"] == "ok"]


def values(members: list[dict], name: str) -> list[float]:
    """The metric's value in every ok member that measured it (one per replicate)."""
    out = []
    for r in ok(members):
        v = (r["metrics"].get(name) or {}).get("value")
        if isinstance(v, (int, float)) and math.isfinite(v) and v > 0:
            out.append(float(v))
    return out


def spread(members: list[dict], fn) -> dict | None:
    """The range of `fn(member)` over the ok members where it is a finite number, one value per
    member (replicate or seed): {"lo", "hi", "n"}; None where no member has one. The x intervals
    of the figures: n = 1 is one measurement with no interval."""
    vals = [v for v in (fn(r) for r in ok(members)) if isinstance(v, (int, float)) and math.isfinite(v)]
    return {"lo": float(min(vals)), "hi": float(max(vals)), "n": len(vals)} if vals else None


def sd_of(members: list[dict], name: str) -> tuple[int, float | None]:
    """(how many replicates measured `name`, the sample sd of their values (ddof=1), None below two)."""
    xs = values(members, name)
    return len(xs), (float(np.std(xs, ddof=1)) if len(xs) > 1 else None)


def by_seed(members: list[dict], name: str) -> dict[int, dict]:
    """seed -> the quality member (lowest replicate) that measured metric `name`."""
    out: dict[int, dict] = {}
    for r in sorted(ok(members), key=lambda r: r["spec"].get("replicate", 0)):
        if r["spec"].get("timing_only") or (r["metrics"].get(name) or {}).get("value") is None:
            continue
        out.setdefault(r["spec"].get("seed", 0), r)
    return out


def geomean(xs: list[float]) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def seed_summary(members: list[dict], name: str) -> dict | None:
    """Mean over seeds of an accuracy, with the across-seed sd and the mean per-item stderr."""
    runs = by_seed(members, name)
    if not runs:
        return None
    vals = [r["metrics"][name]["value"] for r in runs.values()]
    ses = [r["metrics"][name].get("stderr") for r in runs.values()]
    return {
        "mean": float(np.mean(vals)),
        "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
        "n_seeds": len(vals),
        "stderr": float(np.mean(ses)) if all(s is not None for s in ses) else None,
        "seeds": sorted(runs),
    }


TIME_UNITS = {"s", "ms", "us", "tokens/s", "J", "GB/s"}


def representative(members: list[dict]) -> dict:
    """One run standing for its group in tables and plots: the primary member, with each timing
    replaced by the median over replicates (`replicates` = how many) and each seed-measured
    accuracy by its mean over seeds (`seed_sd`, `n_seeds`; stderr = mean per-item stderr)."""
    p = primary(members)
    if len(members) == 1 or p["status"] != "ok":
        return p
    rep = {**p, "metrics": dict(p["metrics"]), "members": [r["id"] for r in members]}
    for name, m in p["metrics"].items():
        if m.get("value") is None:
            continue
        if m.get("unit") in TIME_UNITS and m.get("higher_is_better") is not None:
            vals = values(members, name)
            if len(vals) > 1:
                rep["metrics"][name] = {
                    **m,
                    "value": float(np.median(vals)),
                    "replicates": len(vals),
                    "method": (m.get("method") or "") + f"; median over {len(vals)} replicates",
                }
        elif m.get("unit") == "fraction" and m.get("stderr") is not None:
            s = seed_summary(members, name)
            if s and s["n_seeds"] > 1:
                rep["metrics"][name] = {
                    **m,
                    "value": s["mean"],
                    "stderr": s["stderr"],
                    "seed_sd": s["sd"],
                    "n_seeds": s["n_seeds"],
                    "method": (m.get("method") or "") + f"; mean over {s['n_seeds']} seeds",
                }
    return rep


def representatives(rs: dict) -> list[dict]:
    """One representative per group, in result-set order."""
    return [representative(ms) for ms in groups(rs).values()]
