"""Files a run's parent exchanges with its child, in a folder the child's user may also write.

In the PR gate (.github/scripts/pr_gate.sh) the head's runs execute as another, unprivileged user,
and their folder (`<out>/head/runs`) is sticky and world-writable, like /tmp. The parent runs the
base's code with rights the head must not get, so there it never follows a link (a link planted at
the name of a later run's log would otherwise make the parent overwrite a file of the base's),
never writes into a file it did not just create, and reads a child's result only from a regular
file of at most results.MAX_FILE_BYTES (a FIFO or /dev/zero in its place is refused, not read).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from effbench.read import results

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: opening a FIFO does not wait


def open_new(path: Path) -> IO[str]:
    """A new file of ours at `path` for writing text, replacing whatever entry was there (a link is
    removed, never followed; O_EXCL fails rather than write into a file someone put back meanwhile)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.fdopen(os.open(path, _NEW, 0o644), "w")


def write_new(path: Path, text: str) -> None:
    with open_new(path) as f:
        f.write(text)


def read_result(path: Path) -> dict:
    """A child's RunResult, validated; ResultError for a link, a non-regular file, an oversized or
    malformed one."""
    try:
        fd = os.open(path, _READ)
    except OSError as e:  # ELOOP: a link
        raise results.ResultError(
            f"{path}: cannot open the child's result without following links ({e.strerror})"
        ) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise results.ResultError(
                f"{path}: the child's result is not a regular file (mode {stat.filemode(st.st_mode)})"
            )
        if st.st_size > results.MAX_FILE_BYTES:
            raise results.ResultError(
                f"{path}: {st.st_size} bytes is over the {results.MAX_FILE_BYTES}-byte limit of a result file"
            )
        data = f.read(results.MAX_FILE_BYTES + 1)
    return results.validate_run(results.parse(data, str(path)), str(path))
