"""A result set's README.md (summary, comparison with a baseline, plots), and the PR entry point.

README.md sits beside results.json and embeds the plots by relative path, so committing
results/<suite>/<run>/ shows the whole report on the code host's page.

`python -m effbench.render.pr_report BASE HEAD --comment FILE` is what the PR gate (`pr_gate.sh report`,
from .github/workflows/bench.yml; always the base's code) calls after
`effbench ab BASE_CHECKOUT HEAD_CHECKOUT --out DIR`
(BASE = DIR/base, HEAD = DIR/head; a folder holding results.json is taken as it is, else the
newest result set under it, as `make bench OUT=ROOT` writes): it writes the head's README.md
against the base, writes the comparison markdown for the PR comment (with, for each inconclusive
row, the replicates that would decide it), and exits like `effbench compare` (0 pass, 1 regression,
2 bad input, nothing matched included, 3 inconclusive: a judged row neither shows a change nor rules
one out), so the job fails on regressions and says when it could not decide.

With a site URL (`--site-url URL`, else the environment variable EFFBENCH_SITE_URL: where the
folder that `pr_gate.sh report` builds with `effbench site ... --compare` is published, e.g. a
GitHub Pages path per pull request) the comment links URL/compare.html, the compare page of the
two sets. A URL that is not plain http(s) (quotes, spaces, brackets, parentheses or markup in it)
is left out with a warning rather than written into the comment.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from effbench.read import compare, results
from effbench.render import compare_format, plot, report

MARKER = "<!-- effbench-compare -->"  # lets the workflow find and update its own comment
SITE_URL_ENV = "EFFBENCH_SITE_URL"
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/+=-]*)?")  # nothing that ends a link


def compare_link(site_url: str | None) -> str | None:
    """The comment's markdown line linking the compare page under `site_url`, or None (no URL,
    or one refused: a warning says why)."""
    if not site_url:
        return None
    url = site_url.strip()
    if not _URL.fullmatch(url):
        print(
            f"effbench: warning: {SITE_URL_ENV}/--site-url {url[:80]!r} is not a plain http(s) URL; no link",
            file=sys.stderr,
        )
        return None
    return f"[Compare page: every row, base and head]({url.rstrip('/')}/compare.html)"


def newest_set(root: str | Path) -> Path:
    """`root` itself when it holds results.json (an `effbench ab` side), else the most recently
    created result-set folder under it (<root>/<suite>/<stamp>_<sha>/)."""
    if (Path(root) / "results.json").is_file():
        return Path(root)
    found = sorted(Path(root).glob("*/*/results.json"), key=lambda p: (p.parent.name, p.stat().st_mtime))
    if not found:
        raise results.ResultError(f"no result set under {str(root)!r} (expected {root}/<suite>/<run>/results.json)")
    return found[-1].parent


def write_readme(
    path: str | Path, baseline: str | Path | None = None, opts: compare.Options | None = None
) -> tuple[Path, dict | None]:
    """Draw the set's figures into its folder, as PNG only (what a committed set keeps: one copy of
    each; SVGs and figures of several sets are made on demand by `effbench plot ... --out DIR`), and
    write its README.md (and summary.md again, so both show this code's derived figures); returns
    (README path, the comparison against `baseline` or None)."""
    rs = results.load(path)
    folder = Path(rs["_path"]).parent
    sets = [rs] + ([results.load(baseline)] if baseline else [])
    cmp = compare.compare(sets[1], rs, opts) if baseline else None
    lines = [report.summary_markdown(rs)]
    if cmp:
        lines += [
            f"## Compared with the baseline `{Path(sets[1]['_path']).parent.name}`",
            "",
            compare_format.markdown(cmp, title="compare"),
        ]
    pngs = plot.plot([rs["_path"]], folder, formats=("png",))
    lone = [
        s
        for s in plot.QUALITY
        if f"pareto_{s}" not in {Path(f).stem for f in pngs}
        and any(r["spec"]["scenario"] == s and r["status"] == "ok" for r in rs["runs"])
    ]
    if lone:
        for s in lone:  # one an older report drew would contradict this README
            results.output_file(folder, f"pareto_{s}.png").unlink(missing_ok=True)  # a link: only the link goes
        lines += [
            f"No {' or '.join(f'`pareto_{s}`' for s in lone)} trade-off figure: one needs two runs of a"
            " comparable group (task, items, budget, seeds) with a quality and a speed figure, and this set"
            " has no such pair; the tables above hold every figure.",
            "",
        ]
    if pngs:
        both = f"effbench plot {sets[1]['_path']} {rs['_path']} --out DIR" if baseline else ""
        lines += [
            "## Plots",
            "",
            f"As SVG: `effbench plot {rs['_path']} --out DIR`"
            + (f"; this set and its baseline in one figure each: `{both}`." if both else "."),
            "",
        ]
        for f in pngs:
            rel = Path(f).resolve().relative_to(folder.resolve()).as_posix()  # plot returns absolute paths
            lines += [f"![{rel}]({rel})", ""]
    readme = results.output_file(folder, "README.md")
    results.replace_file(readme, lambda tmp: tmp.write_text("\n".join(lines)))
    # summary.md, written when the set was measured, is brought up to this code's derived figures too
    results.replace_file(results.output_file(folder, "summary.md"), lambda tmp: tmp.write_text(lines[0]))
    return readme, cmp


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m effbench.render.pr_report", description="bench results of a PR: head README + compare comment"
    )
    p.add_argument("base_root", help="folder the base's `make bench OUT=...` wrote into")
    p.add_argument("head_root", help="folder the head's `make bench OUT=...` wrote into")
    p.add_argument("--comment", required=True, help="markdown file for the PR comment / job summary")
    p.add_argument("--allow-mismatch", action="store_true", help="compare even if model, data or device differ (warns)")
    p.add_argument(
        "--site-url",
        default=os.environ.get(SITE_URL_ENV),
        help=f"where the gate's site folder is published: the comment links URL/compare.html (default: ${SITE_URL_ENV})",
    )
    args = p.parse_args(argv)
    try:
        base, head = newest_set(args.base_root), newest_set(args.head_root)
        # the sides of `effbench ab`: one suite, so every run must match (a head whose result files
        # claim other specs would otherwise leave nothing to judge and pass)
        opts = compare.Options(allow_mismatch=args.allow_mismatch, min_matched=1.0)
        readme, cmp = write_readme(head, base, opts)
    except (ValueError, FileNotFoundError) as e:  # ResultError, MismatchError: bad input
        Path(args.comment).write_text(f"{MARKER}\n**effbench compare could not run:** {e}\n")
        print(f"effbench: error: {e}", file=sys.stderr)
        return 2
    link = compare_link(args.site_url)
    Path(args.comment).write_text(f"{MARKER}\n{compare_format.markdown(cmp)}" + (f"\n{link}\n" if link else ""))
    print(compare_format.markdown(cmp))
    print(f"README: {readme}")
    return compare.exit_status(cmp)


if __name__ == "__main__":
    sys.exit(main())
