"""The PR gate's isolation, end to end, through the scripts the workflow runs (.github/scripts/).

A hostile head: its compare.py says `same` to everything, its decode step sleeps 0.3 s per token
(a real slowdown, measured by its own child code), and its child tries to overwrite the base's
result set, checkout, cache and environment, plants links where the parent will write later runs'
files, and leaves a daemon behind that burns CPU and keeps trying. The gate must still say `worse`
and leave every base file as it was.

The head runs as an unprivileged user that this test creates (useradd; run as root, as CI does on
this project's machines), switched to with setpriv instead of the workflow's sudo: the same
pr_gate.sh steps, folders, modes, sandbox and hash checks, a different privilege-switch command.
Without root it is skipped with that reason. Tiny random model, 3 replicates a side: ~1.5 min on 2 idle cores, ~4 on a busy one.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GATE = REPO / ".github" / "scripts" / "pr_gate.sh"
VENV_PY = REPO / ".venv" / "bin" / "python"
SLEEP_S = 0.3  # per decoded token in the head: the base decodes at 10-100 ms a token here, even on a busy machine

SUITE = """[suite]
name = "gate"
model = "tiny"
device = "cpu"
replicates = 3   # the fewest that give a verdict through Holm over 5 timing rows at this noise
threads = 1      # both sides: less noise from OpenMP threads on a shared machine
[defaults.infer]
batch_sizes = [1]
prompt_len = 8
decode_tokens = 4
repeats = 2
quality = false
[[run]]
id = "infer-baseline"
scenario = "infer"
"""

HOSTILE_COMPARE = """

_honest_compare = compare


def compare(*args, **kwargs):  # hostile: whatever the numbers, nothing got worse
    res = _honest_compare(*args, **kwargs)
    for r in res["rows"]:
        r.update(verdict="same", fail=False)
    res["failed"] = []
    return res


def exit_status(res):
    return 0
"""

HOSTILE = '''"""What a hostile head does in each of its runs (written by tests/test_pr_gate.py)."""
import json, os, time

T = json.loads({targets!r})
LOG = os.path.join(os.environ["HOME"], "attempts.jsonl")


def _note(**kw):
    with open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\\n")


def _write(path):
    try:
        with open(path, "a") as f:
            f.write("tampered by the head\\n")
        return "written"
    except OSError as e:
        return type(e).__name__


def attack():
    for p in T["write"]:
        _note(kind="write", target=p, outcome=_write(p))
    for name, target in T["links"].items():  # the parent writes these names for later runs
        try:
            os.symlink(target, name)
            _note(kind="link", target=name, outcome="linked")
        except OSError as e:
            _note(kind="link", target=name, outcome=type(e).__name__)
    pid = os.fork()
    if pid == 0:  # a daemon outliving the run: burns CPU during the base's next run, keeps writing
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with open(os.path.join(os.environ["HOME"], "daemon.pids"), "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        end = time.time() + 600
        while time.time() < end:
            for p in T["write"]:
                _write(p)
            sum(i * i for i in range(200000))
        os._exit(0)
    os.waitpid(pid, 0)
'''


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected exactly one {old!r} to patch"
    path.write_text(text.replace(old, new))


def _copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("effbench", "techniques", "kernels", ".github"):
        shutil.copytree(REPO / d, dst / d, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dst)


def _python_wrapper(checkout: Path) -> str:
    """A checkout's `.venv/bin/python`: this project's interpreter with the checkout's own code first."""
    return f'#!/bin/sh\nPYTHONPATH={checkout} exec {VENV_PY} "$@"\n'


def _state(pid: int) -> str | None:
    """A process's state letter (R, S, Z, ...) from /proc, None when it no longer exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _pids_of(uid: int) -> list[int]:
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if p.stat().st_uid == uid:
                out.append(int(p.name))
        except FileNotFoundError:  # ended meanwhile
            pass
    return out


def _as_user(user, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *cmd],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _blocking_folder(user, path: Path) -> Path | None:
    """The outermost folder above or at `path` that `user` cannot enter (None: it can reach `path`)."""
    for d in (*reversed(path.parents), path):
        if d.is_dir() and _as_user(user, "test", "-x", str(d)).returncode != 0:
            return d
    return None


def _readable_site(user, site: Path, root: Path) -> Path:
    """This project's site-packages where the PR user can read it: itself, or, when it lies under a
    folder that user cannot enter (a clone under a 0700 home or `mktemp -d`), a hard-linked copy in
    `root` (same inodes, root-owned, read-only to the PR user; seconds, no data copied). Where no link
    can be made (another file system), the test is skipped with the reason: never failed for it."""
    blocked = _blocking_folder(user, site)
    if blocked is None:
        return site
    copy = root / "site-packages"
    p = subprocess.run(["cp", "-al", str(site), str(copy)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(
            f"{site} lies under {blocked} (mode {blocked.stat().st_mode & 0o777:o}), which the PR user cannot "
            f"enter, and no hard-linked copy could be made in {root}: {p.stderr.strip()}"
        )
    assert _blocking_folder(user, copy) is None
    return copy


def _system_python() -> Path | None:
    """This Python version where any user may run it (this project's interpreter may live under /root)."""
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return next((Path(d) / name for d in ("/usr/local/bin", "/usr/bin") if (Path(d) / name).exists()), None)


@pytest.fixture
def pr_user():
    if os.geteuid() != 0:
        pytest.skip("the gate's isolation needs a second, unprivileged user: creating one (useradd) needs root")
    for tool in ("useradd", "userdel", "setpriv", "sha256sum", "pgrep"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not VENV_PY.exists():
        pytest.skip(f"no environment at {VENV_PY} (make setup)")
    if not _system_python():
        pytest.skip(
            f"no python{sys.version_info.major}.{sys.version_info.minor} in /usr/bin or /usr/local/bin for the PR user's venv"
        )
    name = "ebpr" + uuid.uuid4().hex[:8]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
        check=True,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


def test_hostile_head_cannot_change_the_verdict_or_the_base(pr_user):
    from effbench.read import compare, results, runlogs

    root = Path(tempfile.mkdtemp(prefix="effbench-gate-"))
    root.chmod(0o711)  # the PR user reaches JOB by name only
    job, base, head_src = root / "job", root / "base", root / "head"
    system_py = _system_python()
    env = {
        **os.environ,
        "PR_USER": pr_user.pw_name,
        "PR_AS": f"setpriv --reuid={pr_user.pw_uid} --regid={pr_user.pw_gid} --clear-groups --",
    }

    def gate(*args, check=True):
        p = subprocess.run(
            ["bash", str(GATE), args[0], str(job), *map(str, args[1:])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert not check or p.returncode == 0, f"pr_gate.sh {args[0]} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
        return p

    try:
        # the base: this code, its environment a wrapper around this project's interpreter
        _copy_tree(base)
        (base / ".venv" / "bin").mkdir(parents=True)
        (base / ".venv" / "bin" / "python").write_text(_python_wrapper(base))
        (base / ".venv" / "bin" / "python").chmod(0o755)
        suite = root / "gate.toml"
        suite.write_text(SUITE)

        # the head: the same code made hostile
        _copy_tree(head_src)
        (head_src / "effbench" / "read" / "compare.py").write_text(
            (head_src / "effbench" / "read" / "compare.py").read_text() + HOSTILE_COMPARE
        )
        _replace_once(
            head_src / "effbench" / "child" / "workloads" / "infer.py",
            "        t0 = time.perf_counter()\n        out = dec.step(input_ids=nxt,",
            f"        t0 = time.perf_counter()\n        time.sleep({SLEEP_S})\n        out = dec.step(input_ids=nxt,",
        )
        _replace_once(
            head_src / "effbench" / "child" / "main.py",
            "    res = run_spec(spec, shared_dir=",
            "    from effbench import _hostile\n    _hostile.attack()\n    res = run_spec(spec, shared_dir=",
        )
        cache = job / "base" / "cache"
        canary = cache / "effbench" / "canary.bin"
        site = _readable_site(pr_user, next((REPO / ".venv" / "lib").glob("python3*/site-packages")), root)
        targets = {
            "write": [
                str(job / "out" / "base" / "results.json"),
                str(job / "out" / "base" / "runs" / "infer-baseline.result.json"),
                str(base / "effbench" / "read" / "compare.py"),
                str(base / ".venv" / "bin" / "python"),
                str(canary),
                str(job / "state" / "before"),
                str(job / "bin" / "pr_sandbox.sh"),
                str(site / "zz_hostile.pth"),
                str(job / "out" / "head" / "results.json"),
                str(job / "out" / "compare.md"),
            ],
            "links": {
                f"infer-baseline@s0r{i}.{ext}": target
                for i in (1, 2)
                for ext, target in (("spec.json", str(base / "effbench" / "read" / "compare.py")), ("log", str(canary)))
            },
        }
        (head_src / "effbench" / "_hostile.py").write_text(HOSTILE.format(targets=json.dumps(targets)))

        gate("prepare")
        canary.parent.mkdir(parents=True)
        canary.write_bytes(os.urandom(4096))
        head = job / "pr" / "src"
        # the head builds its own environment as the PR user: a venv of the system's interpreter that
        # sees this project's installed packages, and the head's code (package-dir links as setuptools maps them)
        gate(
            "head-setup",
            head_src,
            "sh",
            "-c",
            f"{system_py} -m venv --without-pip .venv && printf '%s\\n' {site} \"$PWD\" "
            f"> .venv/lib/{system_py.name}/site-packages/deps.pth && ln -s ../techniques effbench/techniques && "
            "ln -s ../kernels effbench/kernels",
        )
        assert (head / ".venv").stat().st_uid == pr_user.pw_uid and (head / ".venv" / "bin" / "python").exists()
        gate("snapshot", base)

        p = gate("bench", base, suite, "--device", "cpu")
        logs = "".join(
            f"--- {f.name}\n{runlogs.read_file(f)[-2000:]}"
            for s in ("base", "head")
            for f in runlogs.files(job / "out" / s / "runs")
        )
        head_set, base_set = results.load(job / "out" / "head"), results.load(job / "out" / "base")
        assert [r["status"] for r in head_set["runs"] + base_set["runs"]] == ["ok"] * 6, p.stdout + p.stderr + logs
        assert (job / "state" / "ab.rc").read_text().strip() == "1", p.stdout + p.stderr  # ab: a regression
        v = gate("verify")
        assert "unchanged" in v.stderr

        # every attempt was made, and denied
        attempts = [json.loads(line) for line in (job / "pr" / "home" / "attempts.jsonl").read_text().splitlines()]
        writes = [a for a in attempts if a["kind"] == "write"]
        assert len(writes) == 3 * len(targets["write"])  # every head run tried every target
        assert {a["outcome"] for a in writes} == {"PermissionError"}, writes
        assert not (site / "zz_hostile.pth").exists()
        assert any(a["kind"] == "link" and a["outcome"] == "linked" for a in attempts)  # planted, and not followed
        # the daemons were killed when their run ended
        pids = [int(x) for x in (job / "pr" / "home" / "daemon.pids").read_text().split()]
        assert len(pids) == 3
        assert all(_state(pid) in (None, "Z") for pid in pids)  # gone, or a zombie its new parent has not reaped
        alive = [pid for pid in _pids_of(pr_user.pw_uid) if _state(pid) not in (None, "Z")]
        assert not alive, alive

        # the head's runs really ran in the head's code, as the PR user, and their results were read
        for f in (job / "out" / "head" / "runs").glob("*.result.json"):
            assert f.stat().st_uid == pr_user.pw_uid and f.stat().st_mode & 0o044 == 0o044
        head_logs = runlogs.files(job / "out" / "head" / "runs")
        assert len(head_logs) == 3 and all(f.name.endswith(runlogs.SUFFIX) for f in head_logs)  # compressed
        for f in head_logs:
            assert not f.is_symlink() and f.stat().st_uid == 0

        # the verdict: the base's code says worse; the head's own compare would have said nothing is
        res = compare.compare(base_set, head_set)
        row = next(r for r in res["rows"] if r["metric"] == "decode_tokens_per_s.b1")
        assert row["verdict"] == "worse" and row["change"] < -0.3, row
        rep = gate("report", base, check=False)
        assert rep.returncode == 1 and (job / "comment" / "status").read_text().strip() == "1"
        assert "decode_tokens_per_s.b1" in (job / "comment" / "comment.md").read_text()
        own = subprocess.run(
            [
                str(head / ".venv" / "bin" / "python"),
                "-m",
                "effbench.cli",
                "compare",
                str(job / "out" / "base"),
                str(job / "out" / "head"),
            ],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=120,
        )
        assert own.returncode == 0, own.stdout + own.stderr  # the head's compare.py, had it been asked

        # and verify does fail on a changed base file (the check can fail)
        with open(base / "effbench" / "read" / "compare.py", "a") as f:
            f.write("# changed\n")
        bad = gate("verify", check=False)
        assert bad.returncode == 5 and str(base / "effbench" / "read" / "compare.py") in bad.stderr
    finally:
        gate("cleanup", check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_an_environment_the_pr_user_cannot_enter_stops_the_gate_before_any_run(pr_user):
    """A head whose environment points into a 0700 folder (the checkout under a private home): head-setup
    and bench stop with exit 4, naming that folder and its mode, and no head run starts."""
    root = Path(tempfile.mkdtemp(prefix="effbench-gate-"))
    root.chmod(0o711)
    private = root / "private"
    (private / "site").mkdir(parents=True)
    private.chmod(0o700)
    job, base = root / "job", root / "base"
    base.mkdir()
    system_py = _system_python()
    env = {
        **os.environ,
        "PR_USER": pr_user.pw_name,
        "PR_AS": f"setpriv --reuid={pr_user.pw_uid} --regid={pr_user.pw_gid} --clear-groups --",
    }

    def gate(*args):
        return subprocess.run(
            ["bash", str(GATE), args[0], str(job), *map(str, args[1:])],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        assert gate("prepare").returncode == 0
        head_src = root / "head"
        head_src.mkdir()
        setup = gate(
            "head-setup",
            head_src,
            "sh",
            "-c",
            f"{system_py} -m venv --without-pip .venv && printf '%s\\n' "
            f"{private / 'site'} > .venv/lib/{system_py.name}/site-packages/deps.pth",
        )
        assert setup.returncode == 4, setup.stdout + setup.stderr
        assert f"{private} (mode 700, owner root) cannot be entered by {pr_user.pw_name}" in setup.stderr, setup.stderr
        assert "cannot be imported" in setup.stderr and "stopped before any run" in setup.stderr
        assert gate("snapshot", base).returncode == 0
        bench = gate("bench", base, root / "suite.toml", "--device", "cpu")
        assert bench.returncode == 4 and str(private) in bench.stderr, bench.stdout + bench.stderr
        assert not (job / "state" / "ab.rc").exists() and not any((job / "out" / "head" / "runs").iterdir())
    finally:
        gate("cleanup")
        shutil.rmtree(root, ignore_errors=True)


def _sanitizer():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sanitize_comment", REPO / ".github" / "scripts" / "sanitize_comment.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_comment_workflow_reads_the_verdict_as_data(tmp_path, capsys):
    """bench-comment.yml's sanitizer: validated number and sha, cleaned and cut text, no pings."""
    san = _sanitizer()
    v = tmp_path / "verdict"
    v.mkdir()
    (v / "pr").write_text("42\n")
    (v / "head_sha").write_text("a" * 40 + "\n")
    (v / "status").write_text("1\n")
    (v / "comment.md").write_text(san.MARKER + "\n| run | worse |\n@maintainers look\x00\u202e" + "x" * 70000)
    assert san.main([str(v), str(tmp_path / "body.md")]) == 0
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert out == {"pr": "42", "sha": "a" * 40, "state": "failure", "description": "regression beyond the thresholds"}
    body = (tmp_path / "body.md").read_text()
    assert body.startswith(san.MARKER) and body.count(san.MARKER) == 1
    assert "@maintainers" not in body and "@\u200bmaintainers" in body and "\x00" not in body and "\u202e" not in body
    assert san.MAX_CHARS < len(body) < san.MAX_CHARS + 200 and "cut at 60000" in body
    for name, bad in (("pr", "42; rm -rf /"), ("head_sha", "HEAD"), ("status", "0\nstate=success")):
        (v / name).write_text(bad)
        assert san.main([str(v), str(tmp_path / "body.md")]) == 2
        assert f"bad verdict artifact: {name}" in capsys.readouterr().err
        (v / name).write_text({"pr": "42", "head_sha": "a" * 40, "status": "1"}[name])
    (v / "status").write_text("3")  # inconclusive: its own state, not a pass
    assert san.main([str(v), str(tmp_path / "body.md")]) == 0
    assert "state=error\ndescription=inconclusive" in capsys.readouterr().out
    (v / "status").write_text("none")
    (v / "comment.md").unlink()
    assert san.main([str(v), str(tmp_path / "body.md")]) == 0
    assert "gate stopped before comparing" in (tmp_path / "body.md").read_text()


def test_parent_never_follows_or_trusts_the_childs_folder(tmp_path, monkeypatch):
    """childfiles: what the parent writes replaces a planted link; a result that is a link, a FIFO
    or oversized is refused with the reason (the runner records the run as failed)."""
    from effbench.read import results
    from effbench.run import childfiles

    victim = tmp_path / "victim.txt"
    victim.write_text("base file\n")
    log = tmp_path / "run.log"
    log.symlink_to(victim)
    childfiles.write_new(log, "spec\n")
    assert victim.read_text() == "base file\n" and not log.is_symlink() and log.read_text() == "spec\n"

    from _resultsets import infer_run

    results.write_json_atomic(tmp_path / "ok.result.json", infer_run())
    assert (tmp_path / "ok.result.json").stat().st_mode & 0o777 == 0o644  # readable by the runner's user
    assert childfiles.read_result(tmp_path / "ok.result.json")["id"] == "infer-baseline"
    (tmp_path / "link.result.json").symlink_to(tmp_path / "ok.result.json")
    with pytest.raises(results.ResultError, match="without following links"):
        childfiles.read_result(tmp_path / "link.result.json")
    os.mkfifo(tmp_path / "fifo.result.json")
    with pytest.raises(results.ResultError, match="not a regular file"):
        childfiles.read_result(tmp_path / "fifo.result.json")
    monkeypatch.setattr(results, "MAX_FILE_BYTES", 100)
    with pytest.raises(results.ResultError, match="over the 100-byte limit"):
        childfiles.read_result(tmp_path / "ok.result.json")


def _report_job(tmp_path: Path, step: float) -> Path:
    """A job folder as `pr_gate.sh bench` leaves it: out/base and out/head result sets."""
    from tests._resultsets import finetune_run, make_set, replicated, write

    job = tmp_path / "job"
    for d in ("state", "comment", "base/tmp", "base/pycache", "out/head/runs"):
        (job / d).mkdir(parents=True)
    for side, shift in (("base", 1.0), ("head", step)):
        rs = make_set(replicated(finetune_run(), 3, seed=7, shift=shift), suite="gate", sha=side[0] * 40)
        write(rs, job / "out" / side)
    return job


def test_comment_links_the_compare_page_only_at_a_plain_url(tmp_path, monkeypatch, capsys):
    from effbench.render import pr_report

    job = _report_job(tmp_path, 1.0)
    args = [str(job / "out" / "base"), str(job / "out" / "head"), "--comment", str(job / "c.md")]
    monkeypatch.delenv(pr_report.SITE_URL_ENV, raising=False)
    pr_report.main(args)
    assert "compare.html" not in (job / "c.md").read_text()
    monkeypatch.setenv(pr_report.SITE_URL_ENV, "https://example.org/bench/pr-42/")
    pr_report.main(args)
    assert "(https://example.org/bench/pr-42/compare.html)" in (job / "c.md").read_text()
    for bad in (
        "javascript:alert(1)",
        "https://x.org/a) [b](https://evil",
        'https://x.org/"onmouseover',
        "https://x .org",
    ):
        pr_report.main([*args, "--site-url", bad])
        assert "compare.html" not in (job / "c.md").read_text(), bad
        assert "not a plain http(s) URL" in capsys.readouterr().err


def test_gate_report_builds_the_compare_page_from_the_sets_the_base_wrote(tmp_path):
    """`pr_gate.sh report`: the comment links the compare page, JOB/comment/site holds it (the
    head's 30% slower training is a row there), and a set planted in the PR user's runs folder
    (a results.json, and one linked to a file of the runner's) is not part of the site."""
    job = _report_job(tmp_path, 1.3)
    planted = job / "out" / "head" / "runs" / "planted"
    planted.mkdir()
    (planted / "results.json").write_text(
        (job / "out" / "base" / "results.json").read_text().replace('"gate"', '"planted"')
    )
    secret = tmp_path / "runner_secret.json"
    secret.write_text((job / "out" / "base" / "results.json").read_text().replace('"gate"', '"secret"'))
    (job / "out" / "head" / "runs" / "linked").mkdir()
    (job / "out" / "head" / "runs" / "linked" / "results.json").symlink_to(secret)
    env = {**os.environ, "EFFBENCH_SITE_URL": "https://example.org/pr-7"}
    p = subprocess.run(["bash", str(GATE), "report", str(job), str(REPO)], env=env, capture_output=True, text=True)
    assert p.returncode == 1, p.stderr  # a regression
    comment = (job / "comment" / "comment.md").read_text()
    assert "(https://example.org/pr-7/compare.html)" in comment
    site = job / "comment" / "site"
    page = (site / "compare.html").read_text()
    assert "train_tokens_per_s" in page and "worse" in page
    text = "".join(f.read_text() for f in site.rglob("*.html"))
    assert "planted" not in text and "secret" not in text
    assert len(list((site / "sets").glob("*.html"))) == 2
