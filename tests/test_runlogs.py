"""Run logs are committed compressed: the parent turns a child's plain `<id>.log` into
`<id>.log.gz` once the child has exited (childfiles.compress_log, deterministic bytes, no link
followed), and every reader (effbench.read.runlogs) reads that and the plain logs of older sets
alike; `effbench merge` compresses a shard's plain logs. The committed sets hold no plain log."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

from effbench.read import runlogs
from effbench.run import childfiles

ROOT = Path(__file__).resolve().parents[1]
TEXT = "step 1 loss 2.5\n" * 200 + "ünïcode ✓\n"


def test_compress_replaces_the_plain_log_with_the_same_text(tmp_path):
    (tmp_path / "run-a.log").write_text(TEXT)
    gz = childfiles.compress_log(tmp_path / "run-a.log")
    assert gz == tmp_path / "run-a.log.gz" and not (tmp_path / "run-a.log").exists()
    assert runlogs.read(tmp_path, "run-a") == TEXT == gzip.decompress(gz.read_bytes()).decode()
    assert gz.stat().st_size < len(TEXT.encode()) / 5  # a repetitive log shrinks


def test_the_same_log_gives_the_same_bytes(tmp_path):
    """No file name or time in the header (as `gzip -n`): a recompressed log does not change the tree."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "x.log").write_text(TEXT)
        os.utime(tmp_path / d / "x.log", (1000 if d == "a" else 2000,) * 2)
        childfiles.compress_log(tmp_path / d / "x.log")
    childfiles.write_log(tmp_path / "c.log.gz", TEXT)
    a = (tmp_path / "a" / "x.log.gz").read_bytes()
    assert a == (tmp_path / "b" / "x.log.gz").read_bytes() == (tmp_path / "c.log.gz").read_bytes()
    assert a[4:8] == b"\0\0\0\0" and not a[3] & 0x08  # MTIME zero, no FNAME flag


def test_readers_take_either_form_and_prefer_the_compressed(tmp_path):
    (tmp_path / "old.log").write_text("plain\n")
    childfiles.write_log(tmp_path / "new.log.gz", "compressed\n")
    assert runlogs.read(tmp_path, "old") == "plain\n" and runlogs.read(tmp_path, "new") == "compressed\n"
    assert runlogs.read(tmp_path, "missing") == "" and runlogs.path(tmp_path, "missing") is None
    (tmp_path / "new.log").write_text("stale\n")
    assert runlogs.read(tmp_path, "new") == "compressed\n"
    assert [runlogs.run_id(f) for f in runlogs.files(tmp_path)] == ["new", "new", "old"]


def test_compress_never_follows_a_planted_link(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not a log")
    (tmp_path / "run-b.log").symlink_to(secret)
    assert childfiles.compress_log(tmp_path / "run-b.log") is None
    assert (tmp_path / "run-b.log").is_symlink() and not (tmp_path / "run-b.log.gz").exists()
    (tmp_path / "run-c.log").write_text(TEXT)
    (tmp_path / "run-c.log.gz").symlink_to(secret)  # planted where the compressed log goes
    childfiles.compress_log(tmp_path / "run-c.log")
    assert secret.read_text() == "not a log" and not (tmp_path / "run-c.log.gz").is_symlink()
    assert runlogs.read(tmp_path, "run-c") == TEXT


def test_readers_never_follow_a_planted_link(tmp_path):
    """A head's run can plant `<later id>.log` as a link to a file only the gate's reader can read:
    the reader neither lists it nor opens it, whichever form it has."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the gate's secret\n")
    (tmp_path / "run-d.log").symlink_to(secret)
    (tmp_path / "run-e.log.gz").symlink_to(secret)
    childfiles.write_log(tmp_path / "run-f.log.gz", TEXT)
    assert [f.name for f in runlogs.files(tmp_path)] == ["run-f.log.gz"]
    assert runlogs.path(tmp_path, "run-d") is None and runlogs.read(tmp_path, "run-d") == ""
    assert runlogs.read(tmp_path, "run-e") == ""
    for link in ("run-d.log", "run-e.log.gz"):
        try:
            text = runlogs.read_file(tmp_path / link)
        except OSError:
            continue
        raise AssertionError(f"{link} was read through the link: {text!r}")
    os.mkfifo(tmp_path / "run-g.log")  # not a regular file: not listed, and opening it does not block
    assert runlogs.path(tmp_path, "run-g") is None


def test_committed_sets_hold_only_compressed_logs():
    tracked = subprocess.run(
        ["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    logs = [f for f in tracked if ".log" in Path(f).name]
    assert logs and all(f.endswith(runlogs.SUFFIX) for f in logs), [f for f in logs if not f.endswith(".gz")][:5]
    for f in logs[:20]:
        assert runlogs.read_file(ROOT / f)  # each decompresses to text
