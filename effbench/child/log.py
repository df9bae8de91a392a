"""Progress lines from a run's child: the parent (effbench.run.member) echoes the lines that carry
PREFIX from the child's stderr to the console, and keeps every line in the run's log file."""

from __future__ import annotations

import sys

PREFIX = "[effbench] "


def log(msg: str) -> None:
    """One progress line, flushed at once (the parent reads the child's stderr as it comes)."""
    print(PREFIX + msg, file=sys.stderr, flush=True)
