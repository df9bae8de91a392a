"""GitHub-markdown tables of text that comes from result files.

Result files are untrusted data (a pull request's own run writes the set the gate reads): a
technique name, a failure reason or a run's error text may hold `|` or line breaks, which would
split a table row into extra columns or end the table. Every markdown table of the read side is
made here, each cell escaped.
"""

from __future__ import annotations

from tabulate import tabulate


def cell(x) -> str:
    """One table cell: `|` escaped as `\\|`, line breaks as spaces; None as an empty cell."""
    return " ".join(("" if x is None else str(x)).replace("|", "\\|").splitlines())


def table(rows, head) -> str:
    """A GitHub-markdown table of rows under head, every cell escaped and kept as written."""
    return tabulate(
        [[cell(x) for x in r] for r in rows], [cell(h) for h in head], tablefmt="github", disable_numparse=True
    )
