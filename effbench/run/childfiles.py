"""Files a run's parent exchanges with its child, in a folder the child's user may also write.

In the PR gate (.github/scripts/pr_gate.sh) the head's runs execute as another, unprivileged user,
and their folder (`<out>/head/runs`) is sticky and world-writable, like /tmp. The parent runs the
base's code with rights the head must not get, so there it never follows a link (a link planted at
the name of a later run's log would otherwise make the parent overwrite a file of the base's),
never writes into a file it did not just create, and reads a child's result only from a regular
file of at most results.MAX_FILE_BYTES (a FIFO or /dev/zero in its place is refused, not read).

A run's log is written plain while its child runs (the child's stdout is the file) and compressed
by the parent when the child has exited (`compress_log`: `<id>.log` -> `<id>.log.gz`, read without
following links, written as a new file, gzip with no name or time in its header so that the same
log gives the same bytes); effbench.read.runlogs reads either form.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
from pathlib import Path
from typing import IO

from effbench.read import results

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: opening a FIFO does not wait


def _open_new_fd(path: Path) -> int:
    """A new file of ours at `path`, replacing whatever entry was there (a link is removed, never
    followed; O_EXCL fails rather than write into a file someone put back meanwhile)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, _NEW, 0o644)


def open_new(path: Path) -> IO[str]:
    """A new file of ours at `path` for writing text (see _open_new_fd)."""
    return os.fdopen(_open_new_fd(path), "w")


def write_new(path: Path, text: str) -> None:
    with open_new(path) as f:
        f.write(text)


def _gzip(raw: IO[bytes]) -> gzip.GzipFile:
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # no name, no time: as `gzip -n`


def write_log(path: Path, text: str) -> None:
    """A log's text as a new gzip file at `path` (a `<id>.log.gz` name)."""
    with os.fdopen(_open_new_fd(path), "wb") as raw, _gzip(raw) as gz:
        gz.write(text.encode("utf-8", errors="replace"))


def compress_log(path: Path) -> Path | None:
    """`<id>.log` -> `<id>.log.gz` beside it, the plain file removed; returns the new path (None
    where there is no regular file at `path`: a link or a FIFO is neither read nor removed)."""
    try:
        fd = os.open(path, _READ)
    except OSError:
        return None
    gz_path = path.with_name(path.name + ".gz")
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return None
        with os.fdopen(_open_new_fd(gz_path), "wb") as raw, _gzip(raw) as gz:
            shutil.copyfileobj(src, gz)
    os.unlink(path)
    return gz_path


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
