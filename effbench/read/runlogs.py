"""A run's log, as result sets keep it: `runs/<run id>.log.gz` (gzip, written when the run ends by
effbench.run.childfiles.compress_log), or `runs/<run id>.log` in sets written before logs were
compressed (and while a run is still going: the child writes plain text, the parent compresses it
once the child has exited). Every reader goes through here, so both forms read the same.
"""

from __future__ import annotations

import gzip
from pathlib import Path

SUFFIX = ".log.gz"  # what is written and committed
PLAIN = ".log"  # older sets, and a run's live log


def path(folder: str | Path, run_id: str) -> Path | None:
    """The log of `run_id` in `folder` (a set's runs/ folder): the compressed one where both exist."""
    for suffix in (SUFFIX, PLAIN):
        p = Path(folder) / f"{run_id}{suffix}"
        if p.is_file():
            return p
    return None


def read_file(p: str | Path) -> str:
    """The text of one log file, .log.gz or .log (undecodable bytes replaced)."""
    p = Path(p)
    if p.name.endswith(SUFFIX):
        with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return p.read_text(encoding="utf-8", errors="replace")


def read(folder: str | Path, run_id: str) -> str:
    """The text of `run_id`'s log in `folder`, "" where it has none."""
    p = path(folder, run_id)
    return read_file(p) if p else ""


def files(folder: str | Path) -> list[Path]:
    """Every log file in `folder`, compressed or not, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.name.endswith((SUFFIX, PLAIN)) and f.is_file())


def run_id(p: str | Path) -> str:
    """The run id a log file is named for."""
    name = Path(p).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name[: -len(PLAIN)]
