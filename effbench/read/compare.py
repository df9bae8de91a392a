"""Compare two result sets (BASE, HEAD) run by run and metric by metric, for people and for CI.

Runs are matched as groups (effbench.read.replicates): every member (seed, replicate) of a suite run
with the same spec apart from results.NOT_MATCHED. Each metric gets a kind, and the kind decides
the rule (effbench.read.stats): `timing` (per-replicate values: Welch t on logs, CI, minimum detectable
effect, minimum effect; one replicate on a side: `info` with the within-run CI), `accuracy`
(several seeds: Welch t over seeds; one seed: paired McNemar / bootstrap over `items`), `bytes` and
`value` (exact with a relative tolerance), `info` (no direction: shown, never judged).

Verdicts, read from the row's interval (stats.judge) and oriented by the metric's higher_is_better:
`worse` / `better` where the interval excludes zero (for timings: the interval at the Holm-adjusted
level, adjust_timing, so it excludes zero exactly when the adjusted p < alpha); `same` where it lies
inside +-margin (timings: Options.min_effect, relative; accuracies: the base set's
noninferiority_margin, points; exact rules: their tolerance); `inconclusive` where neither is shown.

Nothing matched, or fewer than Options.min_matched of the smaller side's runs: NothingMatched
(exit 2), since "0 worse" over no rows is no verdict.

Result sets measured differently are refused (MismatchError, exit 2): device, model weights, task
data, CPU threads, core count, memory method. allow_mismatch (True: every kind; or a set of kinds)
turns those differences into warning lines. Rendering: compare_format.
"""

from __future__ import annotations

import dataclasses
import math

from effbench.read import replicates, results, stats
from effbench.read.options import DEFAULT_FAIL_ON, MISMATCH_KINDS, Options  # noqa: F401 (compare.Options)

TIME_UNITS = replicates.TIME_UNITS
TIMING_DERIVED = {"mfu"}  # proportional to a timing but recorded without samples
ITEMS_OF = {
    "accuracy": "arith.exact_match",
    "accuracy_unmodified": "arith.exact_match.unmodified",
    "arith_accuracy": "arith.exact_match",
}
RANK = {"worse": 0, "missing": 1, "inconclusive": 2, "better": 3, "same": 4, "info": 5}
JUDGED = ("worse", "better", "same", "inconclusive")  # verdicts of a judged row, in headline order


class MismatchError(ValueError):
    pass


class NothingMatched(ValueError):
    """Too few runs of one side match a run of the other: no comparison to speak of."""


def items_key(name: str, run: dict) -> str | None:
    """The `items` entry holding the per-item scores behind accuracy metric `name`, if any."""
    items = run.get("items") or {}
    k = ITEMS_OF.get(name)
    if k in items:
        return k
    task = (run.get("spec") or {}).get("task")
    held = {"accuracy": f"{task}.acc", "accuracy_unmodified": f"{task}.acc.unmodified"}.get(name)
    if held in items:  # a real-data fine-tuning task's (effbench.tasks.heldout) per-item acc
        return held
    return next((k for k in items if k.replace(".", "_") == name), None)


def kind_of(name: str, m: dict, run: dict) -> str:
    if m.get("higher_is_better") is None:
        return "info"
    if m.get("unit") in TIME_UNITS or name in TIMING_DERIVED:
        return "timing"
    if m.get("unit") == "B":
        return "bytes"
    if items_key(name, run) or (m.get("unit") == "fraction" and m.get("stderr") is not None):
        return "accuracy"
    return "value"


def _timing(
    name: str, gb: list, gh: list, mb: dict, mh: dict, o: Options, seed: int
) -> tuple[stats.Outcome, float, float]:
    """Replicate level where both sides have >= 2 replicates; else one replicate: no test."""
    vb, vh = replicates.values(gb, name), replicates.values(gh, name)
    if len(vb) >= 2 and len(vh) >= 2:
        return (
            stats.replicate_timing(vb, vh, o.min_effect, o.alpha, o.conf),
            replicates.geomean(vb),
            replicates.geomean(vh),
        )
    change = mh["value"] / mb["value"] - 1 if mb["value"] else None
    lo = hi = None
    if mb.get("samples") and mh.get("samples"):  # within-run samples: the CI of this one pair of runs, never a test
        stat = stats.statistic_of(mb["value"], mb["samples"])
        _, lo, hi = stats.bootstrap_ratio_of_medians(
            mb["samples"], mh["samples"], conf=o.conf, seed=seed, statistic=stat
        )
        lo, hi = lo - 1, hi - 1
    why = f"{len(vb)}/{len(vh)} replicates: no test" + (" (CI: within-run samples)" if lo is not None else "")
    return stats.Outcome(change, lo, hi, None, 0, why), mb["value"], mh["value"]


def _accuracy(
    name: str, gb: list, gh: list, mb: dict, mh: dict, o: Options, seed: int
) -> tuple[stats.Outcome, float, float]:
    sb, sh = replicates.by_seed(gb, name), replicates.by_seed(gh, name)
    if len(sb) >= 2 and len(sh) >= 2:
        vb = [r["metrics"][name]["value"] for r in sb.values()]
        vh = [r["metrics"][name]["value"] for r in sh.values()]
        return stats.seed_accuracy(vb, vh, o.alpha, margin=o.accuracy_margin), sum(vb) / len(vb), sum(vh) / len(vh)
    common = [k for k in sb if k in sh] or [None]
    rb, rh = (
        (sb[common[0]], sh[common[0]]) if common[0] is not None else (replicates.primary(gb), replicates.primary(gh))
    )
    mb, mh = rb["metrics"].get(name) or mb, rh["metrics"].get(name) or mh
    kb, kh = items_key(name, rb), items_key(name, rh)
    if common[0] is not None and kb and kh and len(rb["items"][kb]) == len(rh["items"][kh]) and rb["items"][kb]:
        out = stats.accuracy(rb["items"][kb], rh["items"][kh], o.alpha, seed=seed, margin=o.accuracy_margin)
        if len(sb) > 1 or len(sh) > 1:
            out = dataclasses.replace(out, method=out.method + f", seed {common[0]} only")
    else:
        out = stats.accuracy_unpaired(mb, mh, o.alpha)
    return out, mb["value"], mh["value"]


def compare_metric(name: str, gb: list, gh: list, o: Options) -> dict | None:
    """One metric of one matched group pair (gb, gh: the members of each side)."""
    rb, rh = replicates.primary(gb), replicates.primary(gh)
    mb = rb["metrics"].get(name) or next(
        (r["metrics"][name] for r in gb if r["metrics"].get(name, {}).get("value") is not None), None
    )
    mh = rh["metrics"].get(name) or next(
        (r["metrics"][name] for r in gh if r["metrics"].get(name, {}).get("value") is not None), None
    )
    m = mb or mh
    kind = kind_of(name, m, rb if mb else rh)
    row = {
        "scenario": rb["spec"]["scenario"],
        "run": rh["id"],
        "metric": name,
        "kind": kind,
        "unit": m.get("unit"),
        "higher_is_better": m.get("higher_is_better"),
        "base": (mb or {}).get("value"),
        "head": (mh or {}).get("value"),
        "change": None,
        "lo": None,
        "hi": None,
        "p": None,
        "bad": 0.0,
        "method": "",
        "fail": False,
        "mde": None,
        "n_needed": None,
        "sd_log": None,
        "se_log": None,
        "df": None,
        "ci_level": None,
        "margin": None,
        "replicates": None,
        "items_needed": None,
    }
    if row["base"] is None and row["head"] is None:
        return None
    if row["base"] is None or row["head"] is None:
        why = (
            ((mb or {}).get("reason") or "not in base")
            if row["base"] is None
            else ((mh or {}).get("reason") or "not in head")
        )
        return {**row, "verdict": "missing", "method": why}
    if kind == "info":
        b, h = row["base"], row["head"]
        change = h / b - 1 if isinstance(b, (int, float)) and isinstance(h, (int, float)) and b else None
        return {**row, "verdict": "info", "change": change, "method": "no direction"}
    seed = o.seed + sum(map(ord, name))  # fixed per metric: reruns give the same CI
    if kind == "timing":
        out, row["base"], row["head"] = _timing(name, gb, gh, mb, mh, o, seed)
        row["replicates"] = [len(replicates.values(gb, name)), len(replicates.values(gh, name))]
        if out.p is None:  # one replicate on a side: shown, never judged
            return {**row, "verdict": "info", "change": out.change, "lo": out.lo, "hi": out.hi, "method": out.method}
        margin = o.min_effect
    elif kind == "accuracy":
        out, row["base"], row["head"] = _accuracy(name, gb, gh, mb, mh, o, seed)
        margin = o.accuracy_margin
    else:
        margin = (o.rss_tol if "rss" in name else o.bytes_tol) if kind == "bytes" else o.value_tol
        out = stats.tolerance(mb["value"], mh["value"], margin)
    row.update(
        change=out.change,
        lo=out.lo,
        hi=out.hi,
        p=out.p,
        method=out.method,
        mde=out.mde,
        n_needed=out.n_needed,
        sd_log=out.sd_log,
        se_log=out.se_log,
        df=out.df,
        items_needed=out.items_needed,
        margin=margin,
        ci_level=None if out.lo is None else 1 - o.alpha,
    )
    # exact rules (bytes, values) have no interval: their tolerance decided the direction (0: within it)
    return judge(row, o, out.direction if out.lo is None or out.hi is None else None)


def judge(row: dict, o: Options, exact: int | None = None) -> dict:
    """Set the row's verdict, bad and fail from its interval [lo, hi] and margin (stats.judge), or
    from `exact` (the direction of an exact rule: 0 within its tolerance)."""
    d = exact if exact is not None else stats.judge(row["lo"], row["hi"], row["margin"])
    hib = bool(row["higher_is_better"])
    verdict = "inconclusive" if d is None else "same" if d == 0 else ("better" if (d > 0) == hib else "worse")
    c = row["change"]
    bad = (-c if hib else c) if c is not None else 0.0
    row.update(verdict=verdict, bad=bad, fail=verdict == "worse" and bad >= o.fail_on.get(row["kind"], 0.0))
    return row


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


def _threads(run: dict, rs: dict):
    return (run.get("spec") or {}).get("threads") or (run.get("env") or rs.get("env") or {}).get("torch_threads")


def _memory_method(run: dict):
    return (run.get("metrics", {}).get("peak_rss_bytes") or {}).get("method")


def _first_per_seed(members: list) -> dict:
    """seed -> the first ok member with that seed (task data are generated from the seed)."""
    out: dict = {}
    for r in replicates.ok(members) or members[:1]:
        out.setdefault(r["spec"].get("seed", 0), r)
    return out


def mismatches(base: dict, head: dict, pairs: list) -> list[tuple[str, str]]:
    """What makes the two sides incomparable, as (kind, message): device, model weights, task data,
    CPU threads, core count, peak-memory method (region VmHWM against lifetime ru_maxrss)."""
    out = []
    eb, eh = base.get("env") or {}, head.get("env") or {}
    if eb.get("device_name") != eh.get("device_name"):
        out.append(("device", f"device differs: base {eb.get('device_name')!r}, head {eh.get('device_name')!r}"))
    if eb.get("cpu_count") and eh.get("cpu_count") and eb["cpu_count"] != eh["cpu_count"]:
        out.append(("cores", f"CPU core count differs: base {eb['cpu_count']}, head {eh['cpu_count']}"))
    for gb, gh in pairs:
        sb, sh = _first_per_seed(gb), _first_per_seed(gh)
        common = [k for k in sb if k in sh]
        for rb, rh in [(sb[k], sh[k]) for k in common] or [(replicates.primary(gb), replicates.primary(gh))]:
            wb, wh = (rb.get("model") or {}).get("weights_sha256"), (rh.get("model") or {}).get("weights_sha256")
            if wb and wh and wb != wh:
                out.append(("weights", f"run {rh['id']}: model weights sha256 {wb[:12]}… != {wh[:12]}…"))
            hb, hh = _hashes(rb.get("data")), _hashes(rh.get("data"))
            for k in sorted(set(hb) & set(hh)):
                if hb[k] != hh[k] and common:  # task data are generated from the seed
                    out.append(("data", f"run {rh['id']}: task data {k} {hb[k][:12]}… != {hh[k][:12]}…"))
            tb, th = _threads(rb, base), _threads(rh, head)
            if tb and th and tb != th:
                out.append(("threads", f"run {rh['id']}: CPU threads differ: base {tb}, head {th}"))
            cb, ch = (rb.get("env") or {}).get("cpu_count"), (rh.get("env") or {}).get("cpu_count")
            if cb and ch and cb != ch:
                out.append(("cores", f"run {rh['id']}: CPU core count differs: base {cb}, head {ch}"))
            mb, mh = _memory_method(rb), _memory_method(rh)
            if mb and mh and mb != mh:
                out.append(
                    ("memory_method", f"run {rh['id']}: peak memory measured differently: base {mb!r}, head {mh!r}")
                )
    return list(dict.fromkeys(out))


def _status_row(rb: dict, rh: dict) -> dict:
    sb, sh = rb["status"], rh["status"]
    verdict = "same" if sb == sh else ("worse" if sb == "ok" else "better" if sh == "ok" else "same")
    return {
        "scenario": rb["spec"]["scenario"],
        "run": rh["id"],
        "metric": "(status)",
        "kind": "status",
        "unit": None,
        "higher_is_better": None,
        "base": sb,
        "head": sh,
        "change": None,
        "lo": None,
        "hi": None,
        "p": None,
        "bad": 1.0 if verdict == "worse" else 0.0,
        "verdict": verdict,
        "fail": verdict == "worse",
        "method": (rh.get("reason") or rh.get("error") or rb.get("reason") or rb.get("error") or "")[:120],
    }


def compare(base: dict, head: dict, o: Options | None = None) -> dict:
    """The comparison as a plain dict: rows, runs only in one side, warnings, counts, headline, power."""
    o = o or Options()
    if o.min_effect is None:  # the suite's margin of "no change that matters" in timings (relative)
        o = dataclasses.replace(o, min_effect=float(base.get("timing_margin", head.get("timing_margin", 0.05))))
    if o.accuracy_margin is None:  # the suite's margin of "no change that matters" in quality (fraction)
        margin = base.get("noninferiority_margin", head.get("noninferiority_margin", 0.01))
        o = dataclasses.replace(o, accuracy_margin=float(margin))
    gb, gh = replicates.groups(base), replicates.groups(head)
    pairs = [(gb[k], gh[k]) for k in gh if k in gb]
    check_matched(base, head, gb, gh, len(pairs), o)
    problems = mismatches(base, head, pairs)
    refused = [m for k, m in problems if not o.allowed(k)]
    if refused:
        kinds = sorted({k for k, m in problems if not o.allowed(k)})
        raise MismatchError(
            "refusing to compare result sets measured differently (pass --allow-mismatch "
            f"{' '.join(kinds)} to compare anyway):\n  " + "\n  ".join(refused)
        )
    rows = []
    for mb, mh in pairs:
        rb, rh = replicates.primary(mb), replicates.primary(mh)
        if rb["status"] != "ok" or rh["status"] != "ok":
            rows.append(_status_row(rb, rh))
            continue
        names = list(dict.fromkeys(n for r in replicates.ok(mb) + replicates.ok(mh) for n in r["metrics"]))
        for name in names:
            row = compare_metric(name, mb, mh, o)
            if row:
                rows.append(row)
    adjust_timing(rows, o)
    rows.sort(key=lambda r: (r["scenario"], RANK[r["verdict"]], -(r["bad"] if math.isfinite(r["bad"]) else 1e300)))
    counts = {v: sum(r["verdict"] == v for r in rows) for v in RANK}
    res = {
        "base": _side(base),
        "head": _side(head),
        "rows": rows,
        "counts": counts,
        "only_base": [replicates.primary(gb[k])["id"] for k in gb if k not in gh],
        "only_head": [replicates.primary(gh[k])["id"] for k in gh if k not in gb],
        "warnings": [f"WARNING: compared despite a mismatch: {m}" for _, m in problems],
        "failed": [f"{r['run']} {r['metric']}" for r in rows if r["fail"]],
        "power": power(rows, o),
        "same_set": same_set(base, head),
    }
    res["undecided"] = [f"{r['run']} {r['metric']}" for r in undecided(rows, o)]
    res["headline"] = headline(res)
    return res


def same_set(base: dict, head: dict) -> bool:
    """BASE and HEAD are one result set (one file, or the same runs): the comparison shows the
    noise of the intervals only, not a difference between two code versions."""
    same_file = base.get("_path") is not None and base.get("_path") == head.get("_path")
    return same_file or base.get("runs") == head.get("runs")


def check_matched(base: dict, head: dict, gb: dict, gh: dict, matched: int, o: Options) -> None:
    """Refuse (NothingMatched) when no run matched, or fewer than o.min_matched of the side with
    fewer runs: most likely two different suites or suite settings, where "0 worse" would mislead."""
    small = min(len(gb), len(gh))
    if matched and matched >= o.min_matched * small:
        return

    def ids(g: dict, other: dict) -> str:
        left = [replicates.primary(g[k])["id"] for k in g if k not in other]
        return ", ".join(left[:8]) + (f", … ({len(left)} in all)" if len(left) > 8 else "")

    name = {id(base): base.get("_path") or "BASE", id(head): head.get("_path") or "HEAD"}
    what = (
        "no run matched"
        if not matched
        else f"only {matched} run(s) matched, under the {o.min_matched:.0%} of the {small} runs of the smaller side "
        "that --min-matched requires"
    )
    raise NothingMatched(
        f"nothing to compare: {what} between base {name[id(base)]} and head {name[id(head)]} (runs match by "
        f"their spec apart from {', '.join(results.NOT_MATCHED)}; the same suite and settings on both sides match). "
        f"Unmatched in base: {ids(gb, gh) or '-'}; unmatched in head: {ids(gh, gb) or '-'}"
    )


def adjust_timing(rows: list[dict], o: Options) -> None:
    """Timing rows are many tests of one pair of code versions, whose replicates move together: their
    p-values are Holm-adjusted (family-wise alpha), so that an A/A comparison has no `worse` or
    `better` at the stated alpha over all rows rather than on each row. The raw p-value stays in
    `p_raw`. Each row's interval is recomputed at the level that matches its adjusted p-value,
    1 - alpha * p_raw / p_adj (between 1 - alpha and Bonferroni's 1 - alpha/m): it excludes zero
    exactly when p_adj < alpha, so an interval and a p-value never disagree; the verdict follows."""
    tested = [r for r in rows if r["kind"] == "timing" and r["p"] is not None]
    m = len(tested)
    for r, p in zip(tested, stats.holm([r["p"] for r in tested])):
        r["p_raw"], r["p"] = r["p"], float(p)
        level = 1 - o.alpha * (r["p_raw"] / r["p"] if r["p_raw"] > 0 else 1.0)
        r["ci_level"] = level
        r["lo"], r["hi"] = stats.log_interval(math.log1p(r["change"]), r["se_log"], r["df"], level)
        if m > 1:
            r["method"] += f", Holm over {m} timing rows"
            # power at the Bonferroni level alpha/m, which Holm's first step uses: a conservative MDE
            r["mde"] = stats.mde(r["sd_log"], *r["replicates"], alpha=o.alpha / m)
            r["n_needed"] = stats.replicates_needed(r["sd_log"], o.min_effect, alpha=o.alpha / m)
        judge(r, o)


def power(rows: list[dict], o: Options) -> dict:
    """What the timing rows could detect: the largest MDE, the replicates a side needs to detect
    min_effect on every tested timing row, and the rows with one replicate (not tested)."""
    tested = [r for r in rows if r["kind"] == "timing" and r["p"] is not None]
    untested = [
        f"{r['run']} {r['metric']}" for r in rows if r["kind"] == "timing" and r["p"] is None and r["verdict"] == "info"
    ]
    worst = max((r for r in tested if r["mde"] is not None), key=lambda r: r["mde"], default=None)
    needs = [r["n_needed"] for r in tested]
    return {
        "min_effect": o.min_effect,
        "tested": len(tested),
        "one_replicate": untested,
        "max_mde": worst["mde"] if worst else None,
        "max_mde_row": f"{worst['run']} {worst['metric']}" if worst else None,
        "replicates_needed": (None if any(n is None for n in needs) else max(needs)) if needs else None,
        "replicates_needed_unbounded": any(n is None for n in needs),
    }


def _side(rs: dict) -> dict:
    return {
        "suite": rs.get("suite"),
        "path": rs.get("_path"),
        "git": (rs.get("git") or {}).get("sha"),
        "device": (rs.get("env") or {}).get("device_name"),
        "created_utc": rs.get("created_utc"),
    }


def headline(res: dict) -> str:
    c = res["counts"]
    parts = [f"{c[v]} {v}" for v in JUDGED]
    parts += [f"{c[k]} {k}" for k in ("missing",) if c[k]] + ([f"{c['info']} informational"] if c["info"] else [])
    parts += [f"{len(res[k])} run(s) only in {k[5:]}" for k in ("only_base", "only_head") if res[k]]
    pw = res.get("power") or {}
    if pw.get("one_replicate") and not pw.get("tested"):
        parts.append("timings not tested (1 replicate)")
    if res.get("same_set"):
        parts.append("note: BASE and HEAD are the same result set (the intervals show its noise, no code change)")
    return ", ".join(parts)


def power_line(res: dict) -> str:
    """One sentence on what the timing comparison could detect, and the replicates that would do."""
    pw = res.get("power") or {}
    eff = f"{100 * pw.get('min_effect', 0.05):.0f}%"
    out = []
    if pw.get("tested"):
        if pw.get("max_mde") is not None:
            size = f"{100 * pw['max_mde']:.1f}%" if pw["max_mde"] < 10 else "over 1000%"
            out.append(
                f"Timings were tested on replicates; the largest minimum detectable effect (80% power) is "
                f"{size} ({pw['max_mde_row']})."
            )
        if pw.get("replicates_needed_unbounded"):
            out.append(
                f"With the run-to-run noise measured here, no practical number of replicates detects {eff} on every timing row."
            )
        elif pw.get("replicates_needed") is not None:
            out.append(
                f"With the run-to-run noise measured here, {pw['replicates_needed']} replicates a side detect a {eff} change "
                f"on every timing row (80% power)."
            )
    if pw.get("one_replicate"):
        out.append(
            f"{len(pw['one_replicate'])} timing figure(s) have 1 replicate on a side and are shown as `info`, not tested "
            f"(run with --replicates 3 or more)."
        )
    return " ".join(out)


EXIT_PASS, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3


def undecided(rows: list[dict], o: Options) -> list[dict]:
    """Inconclusive rows of a judged kind: one whose --fail-on threshold is not `never`."""
    return [r for r in rows if r["verdict"] == "inconclusive" and math.isfinite(o.fail_on.get(r["kind"], 0.0))]


def exit_status(res: dict) -> int:
    """1: something is worse beyond the fail-on thresholds; else 3: a judged row is inconclusive (the
    measurements can neither show a change nor rule one out); else 0. Bad input exits 2 earlier."""
    if res["failed"]:
        return EXIT_REGRESSION
    return EXIT_INCONCLUSIVE if res.get("undecided") else EXIT_PASS
