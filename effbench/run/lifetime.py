"""Process lifetime and exclusive use of a result folder.

- `die_with_parent()`: a `preexec_fn` for a child run. On Linux the child asks the kernel for
  SIGKILL when the thread that started it dies (prctl PR_SET_PDEATHSIG, through ctypes), so a suite
  killed with SIGKILL leaves no run still going that `--resume` would start a second time. The child
  stays in the suite's process group, so a terminal's Ctrl-C (or a scheduler's signal to the group)
  reaches it as before. Elsewhere (macOS) there is no parent-death signal: a SIGKILLed suite's
  running child finishes on its own (its result is then ignored by --resume, which reruns it).
  Caveat of PR_SET_PDEATHSIG: it fires when the starting *thread* exits; the executors start each
  child from a thread that waits for it, so that thread outlives the child.
- `FolderLock`: an exclusive, non-blocking `flock` on `<folder>/.effbench.lock` for as long as a
  suite writes into the folder. A second suite on the same folder fails at once with a clear error;
  the kernel drops the lock when its holder dies, even by SIGKILL, so no stale lock is left behind.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded here, in the parent: after fork (in a process with threads) only a plain foreign call is safe.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class FolderBusy(RuntimeError):
    pass


def die_with_parent(parent_pid: int | None = None):
    """A preexec_fn: SIGKILL this child when its parent dies (Linux); exits at once if the parent
    already died between fork and prctl (the child would be re-parented and never be signalled)."""
    parent = os.getpid() if parent_pid is None else parent_pid

    def preexec() -> None:
        if _LIBC is not None:
            if _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                os._exit(70)  # EX_SOFTWARE: an unguarded child is worse than none
            if os.getppid() != parent:
                os._exit(70)

    return preexec


class FolderLock:
    """`with FolderLock(folder):` exclusive use of a result folder by one suite at a time."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".effbench.lock"
        self.fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FolderBusy(
                f"{self.path.parent} is in use by another effbench suite (process {holder}); wait for it "
                f"to finish, or give another --out / --resume folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
