"""The reading side of the command line: `compare`, `plot`, `report` and the A/A check `aa`.

  effbench compare BASE HEAD [--format markdown|json|csv] [--fail-on timing=0.1 accuracy=0.02]
  effbench plot RESULTS... [--out DIR]
  effbench report RESULTS [--baseline OTHER]
  effbench aa --suite smoke --out DIR      run the suite twice, compare: everything must be `same`

Kept apart from cli.py so the run side and this side can change independently; cli.py calls
add_parsers. Exit status of compare and aa: 0 pass, 1 regression (aa: any difference), 2 bad input.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import compare, compare_format, config, results


def parse_fail_on(items: list[str] | None) -> dict:
    out = dict(compare.DEFAULT_FAIL_ON)
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq or k not in out:
            raise config.ConfigError(f"--fail-on {it!r}: expected KIND=THRESHOLD with KIND one of {sorted(out)}")
        try:
            out[k] = float("inf") if v == "never" else float(v)
        except ValueError:
            raise config.ConfigError(f"--fail-on {it!r}: threshold {v!r} is not a number or 'never'") from None
    return out


def options(args) -> compare.Options:
    if not 0 <= args.min_effect < 1:
        raise config.ConfigError(f"--min-effect {args.min_effect} must be in [0, 1)")
    return compare.Options(min_effect=args.min_effect, alpha=args.alpha, fail_on=parse_fail_on(args.fail_on),
                           allow_mismatch=args.allow_mismatch)


def emit(res: dict, fmt: str, out: str | None) -> None:
    text = compare_format.FORMATS[fmt](res)
    print(text, end="")
    if out:
        Path(out).write_text(text)


def cmd_compare(args) -> int:
    res = compare.compare(results.load(args.base), results.load(args.head), options(args))
    emit(res, args.format, args.out)
    return compare.exit_status(res)


def cmd_plot(args) -> int:
    from . import plot

    files = plot.plot(args.results, args.out)
    print("\n".join(str(f) for f in files) if files else "effbench: nothing to plot (no ok runs with the figures plotted)")
    return 0


def cmd_report(args) -> int:
    from . import pr_report

    readme, cmp = pr_report.write_readme(args.results, args.baseline, options(args))
    print(f"wrote {readme}" + (f"\ncompare with baseline: {cmp['headline']}" if cmp else ""))
    return compare.exit_status(cmp) if cmp else 0


def cmd_aa(args) -> int:
    from .cli import auto_device
    from .runner import run_suite

    suite = config.load_suite(args.suite, {"device": auto_device(args.device)})
    sides = [run_suite(suite, Path(args.out) / side) for side in ("a", "b")]
    res = compare.compare(results.load(sides[0]), results.load(sides[1]), options(args))
    emit(res, args.format, str(Path(args.out) / f"aa.{'md' if args.format == 'markdown' else args.format}"))
    judged = [r for r in res["rows"] if r["verdict"] in ("worse", "better", "missing")]
    print(f"\nA/A {'PASS: every judged metric is same' if not judged else 'FAIL: ' + ', '.join(r['run'] + ' ' + r['metric'] for r in judged)}")
    return 1 if judged else 0


def _compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-effect", type=float, default=0.05, dest="min_effect",
                   help="timings: relative change below which the verdict is same (default 0.05)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default 0.05)")
    p.add_argument("--fail-on", nargs="+", metavar="KIND=X", dest="fail_on",
                   help=f"exit 1 when a metric of KIND is worse by at least X (relative; accuracy: absolute fraction; "
                        f"'never' disables); defaults {compare.DEFAULT_FAIL_ON}")
    p.add_argument("--allow-mismatch", action="store_true", dest="allow_mismatch",
                   help="compare even if model weights, task data or device differ (prints a warning)")
    p.add_argument("--format", choices=sorted(compare_format.FORMATS), default="markdown")


def add_parsers(sub) -> None:
    c = sub.add_parser("compare", help="compare two result sets: verdicts with CIs; exit 1 on a regression")
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
    a = sub.add_parser("aa", help="A/A check: run a suite twice from the same code and compare (must be all same)")
    a.add_argument("--suite", default="smoke", help="suite name or .toml path (default smoke)")
    a.add_argument("--out", required=True, help="folder receiving a/, b/ and aa.md")
    a.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _compare_options(a)
    a.set_defaults(fn=cmd_aa)
