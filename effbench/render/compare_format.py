"""Render a comparison (effbench.read.compare.compare's dict) as markdown, JSON or CSV.

Markdown is what a PR comment shows: the headline first (so a glance says pass or fail), any
mismatch warnings, then one table per scenario with the worst regressions on top. Numbers carry
units: bytes in MiB, accuracies in percent with changes in points, other changes relative.
"""

from __future__ import annotations

import csv
import io
import json

from effbench.render import mdtable

COLUMNS = [
    "scenario",
    "run",
    "metric",
    "kind",
    "unit",
    "base",
    "head",
    "change",
    "lo",
    "hi",
    "p",
    "mde",
    "n_needed",
    "sd_log",
    "ci_level",
    "margin",
    "items_needed",
    "verdict",
    "fail",
    "method",
]


def value(x, unit, kind) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if unit == "B":
        return f"{x / 2**20:.1f} MiB"
    if kind == "accuracy":
        return f"{100 * x:.1f}%"
    if unit == "fraction":  # a share (trainable parameters, top-1 agreement): as a percentage, not "1 fraction"
        return f"{100 * x:.4g}%"
    return f"{x:.4g} {unit or ''}".rstrip()


def change(row) -> str:
    c = row["change"]
    if c is None:
        return "–"
    if row["kind"] == "accuracy":
        return f"{100 * c:+.1f} pts"
    return f"{100 * c:+.1f}%" if abs(c) != float("inf") else "new"


def interval(row) -> str:
    """The CI, with its level where it is not 95% (Holm-adjusted timing rows)."""
    lo, hi = row["lo"], row["hi"]
    if lo is None or hi is None:
        return ""
    level = row.get("ci_level")
    at = f" at {100 * level:.4g}%" if level is not None and abs(level - 0.95) > 5e-5 else ""
    if row["kind"] == "accuracy":
        return f"[{100 * lo:+.1f}, {100 * hi:+.1f}] pts{at}"
    return f"[{_pct(lo)}, {_pct(hi)}]{at}"


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%" if x <= 10 else "> +1000%"  # a relative change is > -100%; its CI may not end


def margin(row) -> str:
    m = row.get("margin")
    if m is None:
        return ""
    return f"±{100 * m:.3g} pts" if row["kind"] == "accuracy" else f"±{100 * m:.3g}%"


def decides(row) -> str:
    """What would make an inconclusive row decidable: replicates (timings), seeds or eval items
    (accuracies), from the power figures compare computed (80% power to detect the margin; about as
    many narrow the interval to within it when there is no change)."""
    n = row.get("n_needed")
    if row["kind"] == "timing":
        now = "{}/{}".format(*row["replicates"]) if row.get("replicates") else "?"
        return f"{n} replicates a side (now {now})" if n else f"more than {MAX_SHOWN} replicates a side (now {now})"
    if "over seeds" in row["method"]:
        return f"{n} seeds a side" if n else f"more than {MAX_SHOWN} seeds a side"
    k = row.get("items_needed")
    return f"about {k} paired eval items" if k else "more eval items or seeds"


MAX_SHOWN = 1000  # stats.MAX_REPLICATES


def mde(row) -> str:
    """Timing rows: the smallest change this pair could detect (80% power), and replicates a side
    ("3 vs 1": the base's, then the head's)."""
    if row["kind"] != "timing" or not row.get("replicates"):
        return ""
    n = "{} vs {}".format(*row["replicates"])
    if row.get("mde") is None:
        return f"– ({n})"
    return f"±{100 * row['mde']:.1f}% ({n})" if row["mde"] < 10 else f"> ±1000% ({n})"


def verdict(row) -> str:
    v = row["verdict"]
    return f"**{v}** ❌" if row["fail"] else f"**{v}**" if v == "worse" else v


def markdown(res: dict, title: str = "effbench compare") -> str:
    b, h = res["base"], res["head"]
    lines = [
        f"**{title}: {res['headline']}**",
        "",
        f"base: `{b['suite']}` git {str(b['git'])[:10]} ({b['created_utc']}) · "
        f"head: `{h['suite']}` git {str(h['git'])[:10]} ({h['created_utc']}) · device: {h['device']}",
    ]
    lines += [""] + [f"> {w}" for w in res["warnings"]] if res["warnings"] else []
    from effbench.read.compare import power_line

    if power_line(res):
        lines += ["", power_line(res)]
    if res["failed"]:
        lines += ["", f"Fails the gate: {', '.join(res['failed'])}"]
    undecided = [r for r in res["rows"] if f"{r['run']} {r['metric']}" in set(res.get("undecided") or ())]
    if undecided:
        lines += [
            "",
            f"Inconclusive ({len(undecided)} judged row(s): the interval neither excludes zero nor lies inside the "
            "margin). What would decide each, at 80% power to detect the margin:",
            "",
            mdtable.table(
                [[r["run"], r["metric"], change(r), interval(r), margin(r), decides(r)] for r in undecided],
                ["run", "metric", "change", "CI", "margin", "needed to decide"],
            ),
        ]
    for scen in dict.fromkeys(r["scenario"] for r in res["rows"]):
        rows = [
            [
                r["run"],
                r["metric"],
                value(r["base"], r["unit"], r["kind"]),
                value(r["head"], r["unit"], r["kind"]),
                change(r),
                interval(r),
                "" if r["p"] is None else f"{r['p']:.3g}",
                mde(r),
                verdict(r),
                r["method"],
            ]
            for r in res["rows"]
            if r["scenario"] == scen
        ]
        lines += [
            "",
            f"#### {scen}",
            "",
            mdtable.table(
                rows,
                ["run", "metric", "base", "head", "change", "CI", "p", "MDE (reps base vs head)", "verdict", "how"],
            ),
        ]
    for k in ("only_base", "only_head"):
        if res[k]:
            lines += ["", f"Runs only in {k[5:]}: " + ", ".join(f"`{i}`" for i in res[k])]
    lines += [
        "",
        "Verdicts from the CI: `worse`/`better` where it excludes zero, `same` where it lies inside the margin "
        f"(timings ±{100 * (res.get('power') or {}).get('min_effect', 0.05):.3g}%, accuracies the suite's "
        "non-inferiority margin), `inconclusive` where neither is shown. "
        "Timings: one value per replicate (a run in its own process); change = ratio of geometric means, "
        "Welch t-test and CI on log values, p Holm-adjusted and each CI at the level that matches it (shown where "
        "not 95%); MDE = the change the test detects "
        "with 80% power given the run-to-run spread. One replicate on a side: `info` (CI from within-run samples, "
        "no test). Accuracies: over seeds (Welch t) with several seeds, else paired on the same eval items "
        "(McNemar, exact CI). Bytes and deterministic figures: exact within a small tolerance. `info`: not judged.",
    ]
    return "\n".join(lines) + "\n"


def as_json(res: dict) -> str:
    return json.dumps(res, indent=1, default=str) + "\n"


def as_csv(res: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(res["rows"])
    return buf.getvalue()


FORMATS = {"markdown": markdown, "json": as_json, "csv": as_csv}
