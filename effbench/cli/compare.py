"""The comparing side of the command line: `compare`, `plot`, `report`, and `ab` / `aa`.

  effbench compare BASE HEAD [--format markdown|json|csv] [--fail-on timing=0.1 accuracy=0.02]
  effbench plot RESULTS... [--out DIR]
  effbench report RESULTS [--baseline OTHER]
  effbench ab BASE HEAD --suite NAME --out DIR [--replicates N] [--set SIDE:KEY=VALUE ...]
              [--wrap SIDE=CMD] [--allow-mismatch KIND ...] [--expect-same]
  effbench aa --suite aa --out DIR         `ab` with this checkout on both sides, --expect-same

Kept apart from cli.py so the run side and this side can change independently; cli.py calls
add_parsers. Exit status of compare, report and ab (effbench.read.compare.exit_status): 0 pass,
1 regression (--expect-same: any `worse`, `better` or `missing`), 2 bad input (nothing matched
included), 3 inconclusive (a judged row neither shows a change nor rules one out; --expect-same: any
row not `same`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from effbench.read import options as compare_options

if TYPE_CHECKING:  # the commands import what they use when they run: `--help` starts without scipy
    from effbench.read import compare


def parse_fail_on(items: list[str] | None) -> dict:
    from effbench import runspec
    from effbench.read import compare

    out = dict(compare.DEFAULT_FAIL_ON)
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq or k not in out:
            raise runspec.ConfigError(f"--fail-on {it!r}: expected KIND=THRESHOLD with KIND one of {sorted(out)}")
        try:
            out[k] = float("inf") if v == "never" else float(v)
        except ValueError:
            raise runspec.ConfigError(f"--fail-on {it!r}: threshold {v!r} is not a number or 'never'") from None
    return out


def parse_allow(text: str | None) -> bool | frozenset:
    """--allow-mismatch (cli.main rewrites `device weights` and `device,weights` alike to
    `--allow-mismatch=device,weights`, and a bare flag to `all`)."""
    from effbench import runspec
    from effbench.read import compare

    if not text:
        return False
    kinds = [k for k in text.split(",") if k]
    if kinds == ["all"]:
        return True
    bad = sorted(set(kinds) - set(compare.MISMATCH_KINDS))
    if bad:
        raise runspec.ConfigError(
            f"--allow-mismatch {bad}: unknown kind(s); valid: {list(compare.MISMATCH_KINDS)} (none given: all of them)"
        )
    return frozenset(kinds)


def options(args) -> compare.Options:
    from effbench import runspec
    from effbench.read import compare

    if args.min_effect is not None and not 0 <= args.min_effect < 1:
        raise runspec.ConfigError(f"--min-effect {args.min_effect} must be in [0, 1)")
    if not 0 < args.alpha < 1:
        raise runspec.ConfigError(f"--alpha {args.alpha} must be in (0, 1)")
    if not 0 <= args.min_matched <= 1:
        raise runspec.ConfigError(f"--min-matched {args.min_matched} must be in [0, 1]")
    return compare.Options(
        min_effect=args.min_effect,
        alpha=args.alpha,
        min_matched=args.min_matched,
        fail_on=parse_fail_on(args.fail_on),
        allow_mismatch=parse_allow(args.allow_mismatch),
    )


def emit(res: dict, fmt: str, out: str | None) -> None:
    from effbench.render import compare_format

    text = compare_format.FORMATS[fmt](res)
    print(text, end="")
    if out:
        Path(out).write_text(text)


def cmd_compare(args) -> int:
    from effbench.read import compare, results

    opts = options(args)  # bad options fail before any file is read
    res = compare.compare(results.load(args.base), results.load(args.head), opts)
    emit(res, args.format, args.out)
    return compare.exit_status(res)


def cmd_plot(args) -> int:
    from effbench.render import plot

    files = plot.plot(args.results, args.out)
    print(
        "\n".join(str(f) for f in files) if files else "effbench: nothing to plot (no ok runs with the figures plotted)"
    )
    return 0


def cmd_report(args) -> int:
    from effbench.read import compare
    from effbench.render import pr_report

    readme, cmp = pr_report.write_readme(args.results, args.baseline, options(args))
    print(f"wrote {readme}" + (f"\ncompare with baseline: {cmp['headline']}" if cmp else ""))
    return compare.exit_status(cmp) if cmp else 0


def judged(res: dict) -> list[str]:
    """Rows an A/A comparison must not have: every row that is neither `same` nor `info` (a judged
    difference, a figure on one side only, or a row that could not show equivalence), and every run
    none of whose timings was tested (one replicate a side: no interval, so equivalence is not shown
    either). A timing the suite measures once by design (eval_wall_s, in the quality replicate only)
    beside tested ones stays informational."""
    rows = res["rows"]
    bad = [f"{r['run']} {r['metric']} ({r['verdict']})" for r in rows if r["verdict"] not in ("same", "info")]
    timed = {r["run"] for r in rows if r["kind"] == "timing"}
    tested = {r["run"] for r in rows if r["kind"] == "timing" and r.get("p") is not None}
    return bad + [f"{run} timings (untested: one replicate a side)" for run in sorted(timed - tested)]


def expect_same(res: dict) -> int:
    """--expect-same: 0 when every judged row is `same`; 1 on a difference or a missing figure; 3
    when the only other rows are inconclusive (the A/A check could not show equivalence)."""
    from effbench.read import compare

    bad = judged(res)
    print(f"\nA/A {'PASS: every judged metric is same' if not bad else 'FAIL: ' + ', '.join(bad)}")
    if any(r["verdict"] in ("worse", "better", "missing") for r in res["rows"]):
        return compare.EXIT_REGRESSION
    return compare.EXIT_INCONCLUSIVE if bad else compare.EXIT_PASS


def cmd_ab(args) -> int:
    from effbench import runspec
    from effbench.cli.args import auto_device, suite_overrides
    from effbench.read import compare
    from effbench.render import compare_format
    from effbench.run import ab, suites

    opts = options(args)
    sets, wraps = ab.parse_sets(args.set), ab.parse_wraps(args.wrap)
    if sets["base"].get("threads") != sets["head"].get("threads") and not opts.allowed("threads"):
        raise runspec.ConfigError(
            "--set gives the sides different thread counts, which compare refuses: add "
            "--allow-mismatch threads (weights and data stay checked)"
        )
    suite = suites.load_suite(args.suite, suite_overrides(args, auto_device(args.device)))
    sides = [
        ab.Side(name, ref, wrap=wraps[name], settings=sets[name]) for name, ref in zip(ab.SIDES, (args.base, args.head))
    ]
    for s in sides:
        ab.resolve(s)
    res = ab.run_ab(suite, *sides, Path(args.out), opts, only=args.only, src=getattr(args, "checkouts", None))
    print(
        compare_format.markdown(res, title=f"effbench ab {args.base} {args.head}")
        if args.format == "markdown"
        else compare_format.FORMATS[args.format](res),
        end="",
    )
    print(f"comparison: {Path(args.out) / 'compare.md'}")
    if args.expect_same:
        return expect_same(res)
    return compare.exit_status(res)


def cmd_aa(args) -> int:
    """This checkout against itself through `ab` (interleaved replicates), expecting `same` everywhere."""
    args.base = args.head = str(Path(__file__).resolve().parents[2])
    args.expect_same = True
    return cmd_ab(args)


def _compare_options(p: argparse.ArgumentParser, min_matched: float = 0.0) -> None:
    from effbench.render import compare_format

    p.add_argument(
        "--min-effect",
        type=float,
        default=None,
        dest="min_effect",
        help="timings: the margin of `same`: the (Holm-adjusted) CI must lie inside ±this relative change "
        "(default: the base set's suite's timing_margin, else 0.05)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default 0.05)")
    p.add_argument(
        "--fail-on",
        nargs="+",
        metavar="KIND=X",
        dest="fail_on",
        help=f"exit 1 when a metric of KIND is worse by at least X (relative; accuracy: absolute fraction; "
        f"'never' disables); defaults {compare_options.DEFAULT_FAIL_ON}",
    )
    p.add_argument(
        "--allow-mismatch",
        dest="allow_mismatch",
        metavar="KIND[,KIND]",
        help=f"compare even if these differ (prints a warning): {', '.join(compare_options.MISMATCH_KINDS)}; "
        "as `device,weights` or `device weights`; given without a kind: all of them",
    )
    p.add_argument(
        "--min-matched",
        type=float,
        default=min_matched,
        dest="min_matched",
        metavar="SHARE",
        help="exit 2 when fewer than this share of the smaller side's runs match a run of the other side "
        f"(default {min_matched:g}; no match at all always exits 2)",
    )
    p.add_argument("--format", choices=sorted(compare_format.FORMATS), default="markdown")


def add_parsers(sub) -> None:
    from effbench.cli.args import add_replication_flags

    c = sub.add_parser(
        "compare", help="compare two result sets: verdicts with CIs; exit 1 regression, 2 bad input, 3 inconclusive"
    )
    c.add_argument("base", help="baseline results.json or its folder")
    c.add_argument("head", help="new results.json or its folder")
    c.add_argument("--out", help="also write the output to this file")
    _compare_options(c)
    c.set_defaults(fn=cmd_compare)
    p = sub.add_parser("plot", help="Pareto, fine-tuning, pruning and kernel plots (PNG + SVG)")
    p.add_argument("results", nargs="+", help="one or more result sets (several: one colour each)")
    p.add_argument("--out", help="folder for the plots (default: the first result set's folder)")
    p.set_defaults(fn=cmd_plot)
    r = sub.add_parser("report", help="write README.md (summary, compare, plots) into a result set's folder")
    r.add_argument("results", help="results.json or its folder")
    r.add_argument("--baseline", help="a result set to compare against")
    _compare_options(r)
    r.set_defaults(fn=cmd_report)
    for name, hlp in (
        ("ab", "run a suite for two code versions, replicates interleaved (ABBA), and compare"),
        ("aa", "A/A check: `ab` with this checkout on both sides; every judged metric must be same"),
    ):
        a = sub.add_parser(name, help=hlp)
        if name == "ab":
            a.add_argument(
                "base", help="git ref (checked out into OUT/src/<sha> with `make setup`) or a checkout with .venv"
            )
            a.add_argument("head", help="git ref or a checkout with .venv")
            a.add_argument("--set", nargs="+", metavar="SIDE:KEY=VALUE", help="a per-side setting, e.g. head:threads=1")
            a.add_argument(
                "--wrap",
                action="append",
                metavar="SIDE=CMD",
                help="prefix a side's child command, e.g. 'head=sudo -u bench'",
            )
            a.add_argument(
                "--checkouts", help="folder for the git refs' checkouts, reused across calls (default OUT/src)"
            )
            a.add_argument(
                "--expect-same",
                action="store_true",
                dest="expect_same",
                help="A/A: pass only when every judged metric is same: exit 1 on worse, better or missing, "
                "3 when the rest are inconclusive",
            )
        else:
            a.set_defaults(set=None, wrap=None)
        a.add_argument(
            "--suite", default="aa" if name == "aa" else None, required=name == "ab", help="suite name or .toml path"
        )
        a.add_argument("--out", required=True, help="folder receiving base/, head/ and compare.md")
        a.add_argument("--only", nargs="+", metavar="RUN_ID", help="only these runs of the suite: run ids or sweep ids")
        a.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        add_replication_flags(a)
        _compare_options(a, min_matched=1.0)  # one suite on both sides: every run must match
        a.set_defaults(fn=cmd_ab if name == "ab" else cmd_aa)
