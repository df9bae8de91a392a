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
    lo, hi = row["lo"], row["hi"]
    if lo is None or hi is None:
        return ""
    if row["kind"] == "accuracy":
        return f"[{100 * lo:+.1f}, {100 * hi:+.1f}] pts"
    return f"[{100 * lo:+.1f}%, {100 * hi:+.1f}%]"


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
                ["run", "metric", "base", "head", "change", "95% CI", "p", "MDE (reps base vs head)", "verdict", "how"],
            ),
        ]
    for k in ("only_base", "only_head"):
        if res[k]:
            lines += ["", f"Runs only in {k[5:]}: " + ", ".join(f"`{i}`" for i in res[k])]
    lines += [
        "",
        "Timings: one value per replicate (a run in its own process); change = ratio of geometric means, "
        "Welch t-test and CI on log values, `same` below the minimum effect; MDE = the change the test detects "
        "with 80% power given the run-to-run spread. One replicate on a side: `info` (CI from within-run samples, "
        "no test). Accuracies: over seeds (Welch t) with several seeds, else paired on the same eval items "
        "(McNemar). Bytes and deterministic figures: exact within a small tolerance. `info`: not judged.",
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
