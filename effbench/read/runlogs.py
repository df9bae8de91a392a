"""A run's log, as result sets keep it: `runs/<run id>.log.gz` (gzip, written when the run ends by
effbench.run.childfiles.compress_log), or `runs/<run id>.log` in sets written before logs were
compressed (and while a run is still going: the child writes plain text, the parent compresses it
once the child has exited). Every reader goes through here, so both forms read the same.

Only regular files count as logs, and none is opened through a link: a head's run writes into its
own runs/ folder and can plant `<later run id>.log` there as a link to a file it cannot read; the
gate reads the head's logs as a user who can, so a followed link would print that file in its report.
"""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

SUFFIX = ".log.gz"  # what is written and committed
PLAIN = ".log"  # older sets, and a run's live log


def path(folder: str | Path, run_id: str) -> Path | None:
    """The log of `run_id` in `folder` (a set's runs/ folder): the compressed one where both exist."""
    for suffix in (SUFFIX, PLAIN):
        p = Path(folder) / f"{run_id}{suffix}"
        if _regular(p):
            return p
    return None


def read_file(p: str | Path) -> str:
    """The text of one log file, .log.gz or .log (undecodable bytes replaced); OSError where `p`
    is a link or not a regular file (it is never opened through a link)."""
    p = Path(p)
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as raw:
        if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
            raise OSError(f"{p}: not a regular file")
        if p.name.endswith(SUFFIX):
            with gzip.open(raw, "rt", encoding="utf-8", errors="replace") as f:
                return f.read()
        return raw.read().decode("utf-8", errors="replace")


def read(folder: str | Path, run_id: str) -> str:
    """The text of `run_id`'s log in `folder`, "" where it has none."""
    p = path(folder, run_id)
    return read_file(p) if p else ""


def files(folder: str | Path) -> list[Path]:
    """Every log file in `folder`, compressed or not, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.name.endswith((SUFFIX, PLAIN)) and _regular(f))


def _regular(p: Path) -> bool:
    """A regular file at `p` itself (a link is not followed, so it is not one)."""
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except OSError:
        return False


def run_id(p: str | Path) -> str:
    """The run id a log file is named for."""
    name = Path(p).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name[: -len(PLAIN)]
