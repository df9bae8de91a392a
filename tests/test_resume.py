"""A child killed with SIGKILL is recorded and the suite goes on; the suite killed with SIGKILL
leaves a result set that loads and no child still running; `--resume` completes it with each run
exactly once; a second suite on the same folder is refused while one holds it. A tiny-model suite
of three inference runs; the test starts five children."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from effbench import cli
from effbench.read import results
from effbench.run import lifetime

pytestmark = pytest.mark.slow
SUITE = """
[suite]
name = "killme"
model = "tiny"
device = "cpu"
[defaults.infer]
batch_sizes = [1]
prompt_len = 8
decode_tokens = 2
repeats = 1
quality = false
[[run]]
id = "a"
scenario = "infer"
[[run]]
id = "b"
scenario = "infer"
budget = {prompt_len = 9}
[[run]]
id = "c"
scenario = "infer"
budget = {prompt_len = 10}
"""


def _start(tmp_path: Path) -> subprocess.Popen:
    (tmp_path / "killme.toml").write_text(SUITE)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "effbench.cli",
            "run",
            "--suite",
            str(tmp_path / "killme.toml"),
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )  # never the repository root: its kernels/ would shadow a package


def _wait(pred, timeout_s=120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail("timed out waiting")


def _runs_written(tmp_path: Path) -> list:
    try:
        return json.loads(next((tmp_path / "out" / "killme").iterdir()).joinpath("results.json").read_text())["runs"]
    except (StopIteration, FileNotFoundError, json.JSONDecodeError):
        return []


def _children_of_suite(folder: Path) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "effbench.child" in cmd and any(str(folder) in c for c in cmd):
            out.append(p)
    return out


def test_sigkills_then_resume_runs_each_run_once(tmp_path):
    parent = _start(tmp_path)
    folder = _wait(
        lambda: (
            next(iter((tmp_path / "out" / "killme").glob("*")), None)
            if (tmp_path / "out" / "killme").exists()
            else None
        )
    )
    os.kill(_wait(lambda: _children_of_suite(folder))[0].pid, signal.SIGKILL)  # run a's child, killed alone
    _wait(lambda: len(_runs_written(tmp_path)) >= 2)  # a recorded as killed, b finished
    _wait(lambda: _children_of_suite(folder))  # c's child is going
    parent.send_signal(signal.SIGKILL)  # then the suite itself
    parent.wait()
    _wait(lambda: not _children_of_suite(folder), timeout_s=10)  # c's child died with its parent
    interrupted = results.load(folder)  # loads, whatever moment the kill came
    rs = {r["id"]: r for r in interrupted["runs"]}
    assert set(rs) == {"a", "b"} and rs["b"]["status"] == "ok"
    assert rs["a"]["status"] != "ok" and "code -9" in rs["a"]["error"]

    with lifetime.FolderLock(folder):  # another suite holds the folder: refused, nothing written
        assert cli.main(["run", "--suite", str(tmp_path / "killme.toml"), "--resume", str(folder)]) == 2
    assert results.load(folder)["runs"] == interrupted["runs"]

    assert cli.main(["run", "--suite", str(tmp_path / "killme.toml"), "--resume", str(folder)]) == 0
    done = results.load(folder)
    assert [r["id"] for r in done["runs"]] == ["a", "b", "c"] and all(r["status"] == "ok" for r in done["runs"])
    assert done["runs"][1] == rs["b"]  # kept as recorded (its wall time and figures), not run again
    assert done["resumed"][-1] == {"utc": done["resumed"][-1]["utc"], "kept": 1, "dropped": 1}
    assert done["created_utc"] == interrupted["created_utc"]

    # a second resume of a complete set runs nothing
    assert cli.main(["run", "--suite", str(tmp_path / "killme.toml"), "--resume", str(folder)]) == 0
    assert results.load(folder)["runs"] == done["runs"]


XEON = "Intel(R) Xeon(R) Processor"


def _interrupted(tmp_path, statuses: dict[str, str]):
    """(suite, its members, an interrupted set of it begun on a Xeon holding runs `statuses`: id -> status)."""
    from effbench.child import measure
    from effbench.run import suites

    (tmp_path / "killme.toml").write_text(SUITE)
    suite = suites.load_suite(str(tmp_path / "killme.toml"))
    every = suite.members(None)
    by_id = {m.id: m for m in every}
    prev = {
        "_path": str(tmp_path / "set" / "results.json"),
        "git": measure.git_state(),
        "suite": "killme",
        "shard": None,
        "env": {"device": "cpu", "device_name": XEON},
        "runs": [{"id": i, "status": st, "spec": by_id[i].to_dict()} for i, st in statuses.items()],
    }
    return suite, every, prev


def test_resume_refuses_to_drop_finished_runs_left_out_by_only(tmp_path):
    """`--resume SET --only X` with finished runs outside X would rewrite the set without them (it
    once dropped three finished QLoRA seeds here): refused before any work, naming them; a resume whose
    runs cover every finished one keeps them."""
    from effbench import runspec
    from effbench.run import runner

    suite, every, prev = _interrupted(tmp_path, {"a": "ok", "b": "failed"})
    here = {"git": prev["git"], "device_name": XEON}
    with pytest.raises(runspec.ConfigError, match=r"finished runs \['a'\].*\['b', 'c'\]"):
        runner.resumable(prev, suite, suite.members(["b", "c"]), here, None)
    kept = runner.resumable(prev, suite, every, here, None)
    assert list(kept) == ["a"]  # the failed run is run again


def test_resume_refuses_a_set_begun_on_another_machine_model(tmp_path):
    """A set begun on one CPU model and resumed on another (a new VM after a session ended: Xeon, then
    EPYC) would hold two machines' timings side by side as if comparable: refused, naming both; the
    same model resumes."""
    from effbench import runspec
    from effbench.run import runner

    suite, every, prev = _interrupted(tmp_path, {"a": "ok"})
    with pytest.raises(
        runspec.ConfigError, match=r"machine 'Intel\(R\) Xeon\(R\) Processor' is not this run's 'AMD EPYC'"
    ):
        runner.resumable(prev, suite, every, {"git": prev["git"], "device_name": "AMD EPYC"}, None)
    same = runner.resumable(prev, suite, every, {"git": prev["git"], "device_name": XEON}, None)
    assert list(same) == ["a"]
