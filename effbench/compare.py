"""Compare two result sets (BASE, HEAD) run by run and metric by metric, for people and for CI.

Runs are matched on their spec (model, task, scenario, techniques and parameters, budget, seed,
device: everything but id and timeout, as RunSpec.match_key). Each metric gets a kind, and the
kind decides the rule (effbench.stats): `timing` (has samples: Mann-Whitney U + bootstrap ratio
of medians + minimum effect), `accuracy` (paired McNemar / bootstrap over `items`), `bytes` and
`value` (exact with a relative tolerance), `info` (no direction, or a timing without samples:
shown, never judged). The verdict (better / worse / same) follows the metric's higher_is_better.

Result sets measured on a different model, data or device are refused (MismatchError, exit 2)
unless allow_mismatch, which turns each difference into a warning line. Rendering: compare_format.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from . import stats

TIME_UNITS = {"s", "ms", "us", "tokens/s", "J", "GB/s"}
TIMING_DERIVED = {"mfu"}  # proportional to a timing but recorded without samples
# Worse beyond these (relative change for timing/bytes/value, absolute fraction for accuracy) fails.
DEFAULT_FAIL_ON = {"timing": 0.05, "accuracy": 0.0, "bytes": 0.01, "value": 0.01, "status": 0.0}
ITEMS_OF = {"accuracy": "arith.exact_match", "accuracy_unmodified": "arith.exact_match.unmodified",
            "arith_accuracy": "arith.exact_match"}
RANK = {"worse": 0, "missing": 1, "better": 2, "same": 3, "info": 4}


class MismatchError(ValueError):
    pass


@dataclass
class Options:
    min_effect: float = 0.05  # timings: a change below this fraction is `same`
    alpha: float = 0.05  # significance level of the timing and accuracy tests
    conf: float = 0.95  # confidence level of the CIs shown
    bytes_tol: float = 0.01  # memory / byte counts: relative tolerance
    rss_tol: float = 0.15  # CPU RSS holds allocator-cached pages: identical default-model runs differed by up to 13%
    value_tol: float = 0.01  # other directional figures (perplexity, KLD, loss): relative tolerance
    fail_on: dict = field(default_factory=lambda: dict(DEFAULT_FAIL_ON))
    allow_mismatch: bool = False
    seed: int = 0


def match_key(spec: dict) -> str:
    return json.dumps({k: v for k, v in spec.items() if k not in ("id", "timeout_s")}, sort_keys=True)


def items_key(name: str, run: dict) -> str | None:
    """The `items` entry holding the per-item scores behind accuracy metric `name`, if any."""
    items = run.get("items") or {}
    k = ITEMS_OF.get(name)
    if k in items:
        return k
    return next((k for k in items if k.replace(".", "_") == name), None)


def kind_of(name: str, m: dict, run: dict) -> str:
    if m.get("higher_is_better") is None:
        return "info"
    if m.get("unit") in TIME_UNITS or name in TIMING_DERIVED:
        return "timing" if m.get("samples") else "info"
    if m.get("unit") == "B":
        return "bytes"
    if items_key(name, run) or (m.get("unit") == "fraction" and m.get("stderr") is not None):
        return "accuracy"
    return "value"


def _outcome(kind: str, name: str, mb: dict, mh: dict, rb: dict, rh: dict, o: Options) -> stats.Outcome:
    seed = o.seed + sum(map(ord, name))  # fixed per metric: reruns give the same CI
    if kind == "timing":
        stat = stats.statistic_of(mb["value"], mb["samples"])  # the change must be the change of the value shown
        return stats.timing(mb["samples"], mh["samples"], o.min_effect, o.alpha, o.conf, seed, stat)
    if kind == "accuracy":
        kb, kh = items_key(name, rb), items_key(name, rh)
        if kb and kh and len(rb["items"][kb]) == len(rh["items"][kh]):
            return stats.accuracy(rb["items"][kb], rh["items"][kh], o.alpha, o.conf, seed)
        return stats.accuracy_unpaired(mb, mh, o.alpha)
    tol = (o.rss_tol if "rss" in name else o.bytes_tol) if kind == "bytes" else o.value_tol
    return stats.tolerance(mb["value"], mh["value"], tol)


def compare_metric(name: str, mb: dict | None, mh: dict | None, rb: dict, rh: dict, o: Options) -> dict | None:
    m = mb or mh
    kind = kind_of(name, m, rb if mb else rh)
    row = {"scenario": rb["spec"]["scenario"], "run": rh["id"], "metric": name, "kind": kind, "unit": m.get("unit"),
           "higher_is_better": m.get("higher_is_better"), "base": (mb or {}).get("value"), "head": (mh or {}).get("value"),
           "change": None, "lo": None, "hi": None, "p": None, "bad": 0.0, "method": "", "fail": False}
    if row["base"] is None and row["head"] is None:
        return None
    if row["base"] is None or row["head"] is None:
        why = ((mb or {}).get("reason") or "not in base") if row["base"] is None else ((mh or {}).get("reason") or "not in head")
        return {**row, "verdict": "missing", "method": why}
    if kind == "info":
        b, h = row["base"], row["head"]
        change = h / b - 1 if isinstance(b, (int, float)) and b else None
        return {**row, "verdict": "info", "change": change, "method": "no direction" if m.get("higher_is_better") is None else "no samples"}
    out = _outcome(kind, name, mb, mh, rb, rh, o)
    hib = bool(m["higher_is_better"])
    verdict = "same" if out.direction == 0 else ("better" if (out.direction > 0) == hib else "worse")
    bad = (-out.change if hib else out.change) if out.change is not None else 0.0
    fail = verdict == "worse" and bad >= o.fail_on.get(kind, 0.0)
    return {**row, "change": out.change, "lo": out.lo, "hi": out.hi, "p": out.p, "verdict": verdict,
            "bad": bad, "method": out.method, "fail": fail}


def _hashes(d: dict, prefix: str = "") -> dict:
    """Every *sha256 field of a run's `data` (one level of nesting), except pruning's kept subsets:
    those are a technique's output, which a PR may change on purpose."""
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_hashes(v, f"{prefix}{k}."))
        elif k.endswith("sha256") and "kept" not in k:
            out[prefix + k] = v
    return out


def mismatches(base: dict, head: dict, pairs: list) -> list[str]:
    """What makes the two sides incomparable: device, model weights, task data."""
    out = []
    db, dh = (base.get("env") or {}).get("device_name"), (head.get("env") or {}).get("device_name")
    if db != dh:
        out.append(f"device differs: base {db!r}, head {dh!r}")
    for rb, rh in pairs:
        wb, wh = (rb.get("model") or {}).get("weights_sha256"), (rh.get("model") or {}).get("weights_sha256")
        if wb and wh and wb != wh:
            out.append(f"run {rh['id']}: model weights sha256 {wb[:12]}… != {wh[:12]}…")
        hb, hh = _hashes(rb.get("data")), _hashes(rh.get("data"))
        for k in sorted(set(hb) & set(hh)):
            if hb[k] != hh[k]:
                out.append(f"run {rh['id']}: task data {k} {hb[k][:12]}… != {hh[k][:12]}…")
    return out


def _status_row(rb: dict, rh: dict) -> dict:
    sb, sh = rb["status"], rh["status"]
    verdict = "same" if sb == sh else ("worse" if sb == "ok" else "better" if sh == "ok" else "same")
    return {"scenario": rb["spec"]["scenario"], "run": rh["id"], "metric": "(status)", "kind": "status", "unit": None,
            "higher_is_better": None, "base": sb, "head": sh, "change": None, "lo": None, "hi": None, "p": None,
            "bad": 1.0 if verdict == "worse" else 0.0, "verdict": verdict, "fail": verdict == "worse",
            "method": (rh.get("reason") or rh.get("error") or rb.get("reason") or rb.get("error") or "")[:120]}


def compare(base: dict, head: dict, o: Options | None = None) -> dict:
    """The comparison as a plain dict: rows, runs only in one side, warnings, counts, headline."""
    o = o or Options()
    kb = {match_key(r["spec"]): r for r in base["runs"]}
    kh = {match_key(r["spec"]): r for r in head["runs"]}
    pairs = [(kb[k], kh[k]) for k in kh if k in kb]
    problems = mismatches(base, head, pairs)
    if problems and not o.allow_mismatch:
        raise MismatchError("refusing to compare result sets measured differently (pass --allow-mismatch to compare anyway):\n  "
                            + "\n  ".join(problems))
    rows = []
    for rb, rh in pairs:
        if rb["status"] != "ok" or rh["status"] != "ok":
            rows.append(_status_row(rb, rh))
            continue
        for name in list(rb["metrics"]) + [n for n in rh["metrics"] if n not in rb["metrics"]]:
            row = compare_metric(name, rb["metrics"].get(name), rh["metrics"].get(name), rb, rh, o)
            if row:
                rows.append(row)
    rows.sort(key=lambda r: (r["scenario"], RANK[r["verdict"]], -(r["bad"] if math.isfinite(r["bad"]) else 1e300)))
    counts = {v: sum(r["verdict"] == v for r in rows) for v in RANK}
    res = {"base": _side(base), "head": _side(head), "rows": rows, "counts": counts,
           "only_base": [kb[k]["id"] for k in kb if k not in kh], "only_head": [kh[k]["id"] for k in kh if k not in kb],
           "warnings": [f"WARNING: compared despite a mismatch: {p}" for p in problems],
           "failed": [f"{r['run']} {r['metric']}" for r in rows if r["fail"]]}
    res["headline"] = headline(res)
    return res


def _side(rs: dict) -> dict:
    return {"suite": rs.get("suite"), "path": rs.get("_path"), "git": (rs.get("git") or {}).get("sha"),
            "device": (rs.get("env") or {}).get("device_name"), "created_utc": rs.get("created_utc")}


def headline(res: dict) -> str:
    c = res["counts"]
    parts = [f"{c['worse']} worse", f"{c['better']} better", f"{c['same']} same"]
    parts += [f"{c[k]} {k}" for k in ("missing",) if c[k]] + ([f"{c['info']} informational"] if c["info"] else [])
    parts += [f"{len(res[k])} run(s) only in {k[5:]}" for k in ("only_base", "only_head") if res[k]]
    return ", ".join(parts)


def exit_status(res: dict) -> int:
    """0: nothing worse beyond the fail-on thresholds; 1: something is (bad input exits 2 earlier)."""
    return 1 if res["failed"] else 0
