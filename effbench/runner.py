"""Run a suite: one child process per run, results gathered into a result set as they arrive.

Where each child runs is the executor's business (effbench.executors: serial, one per local GPU,
Ray tasks); the runner submits specs, keeps as many in flight as the executor has slots, and
rewrites results.json atomically after every run that arrives, in the suite's member order. So a
crash of one run, or a SIGKILL of this process at any moment, leaves a results.json that loads, and
`--resume` keeps its finished runs and runs the rest. A lock on the folder keeps a second suite
out of it. Children die with this process (effbench.lifetime).
`--shard i/N` runs the members of one stable shard (effbench.shards). A run that the device or
scenario cannot host is recorded as skipped with the reason and never started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

from . import childfiles, config, lifetime, measure, report, results, shards
from .techniques import build_all

PREFIX = "[effbench] "


def log(msg: str) -> None:
    """Progress from a child: the parent echoes lines carrying PREFIX to the console."""
    print(PREFIX + msg, file=sys.stderr, flush=True)


def precheck(spec: config.RunSpec, check_local_device: bool = True) -> str | None:
    """Why a run cannot be hosted (a technique's reason, or no CUDA here), else None.
    check_local_device=False: the run goes to another machine (Ray), whose device this one cannot see."""
    scen = config.SCENARIO_OF[spec.scenario]
    for t in build_all(list(spec.techniques)):
        why = t.skip_reason(scen, spec.device)
        if why:
            return why
    if spec.device == "cuda" and check_local_device:
        import torch

        if not torch.cuda.is_available():
            return "the run asks for device 'cuda' but torch.cuda.is_available() is False"
    return None


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def child_env(threads: int | None, env: dict | None = None) -> dict:
    """The child's environment: this one with `env`'s entries applied (None: unset), then, with a
    thread count, every BLAS/OpenMP pool sized before import."""
    out = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    env = out
    if threads is not None:
        env.update({k: str(threads) for k in THREAD_VARS})
    return env


def run_child(spec: config.RunSpec, folder: Path, echo=print, python: str | None = None, wrap: tuple[str, ...] = (),
              env: dict | None = None) -> dict:
    """Run one spec in its own process: `[*wrap] python -m effbench.child SPEC OUT` (python: this
    interpreter unless given, e.g. the other checkout's `.venv/bin/python` in `effbench ab`; env:
    variables to set, None to unset, e.g. CUDA_VISIBLE_DEVICES). The child is killed by the kernel
    when this process dies (lifetime.die_with_parent)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    spec_path, out_path, log_path = (folder / f"{spec.id}.{s}" for s in ("spec.json", "result.json", "log"))
    # childfiles: the folder may be writable by the child's user (the PR gate's head), never trusted
    childfiles.write_new(spec_path, json.dumps(spec.to_dict(), indent=1))
    out_path.unlink(missing_ok=True)
    cmd = [*wrap, python or sys.executable, "-m", "effbench.child", str(spec_path), str(out_path)]
    status, detail = None, ""
    with childfiles.open_new(log_path) as logf:
        # cwd: the run's folder, never the repository root, whose `kernels/` folder would shadow
        # the real `kernels` package that transformers and bitsandbytes probe for (`-m` puts the
        # working directory first on sys.path).
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.PIPE, text=True, bufsize=1, cwd=folder,
                                env=child_env(spec.threads, env), preexec_fn=lifetime.die_with_parent())
        timer = threading.Timer(spec.timeout_s, proc.kill)  # a silent hang is killed too
        timer.start()
        try:
            for line in proc.stderr:  # type: ignore[union-attr]
                logf.write(line)
                if line.startswith(PREFIX):
                    echo(f"    {line[len(PREFIX):].rstrip()}")
            proc.wait()
        except BaseException:  # Ctrl-C or an error here: the child does not outlive its run
            proc.kill()
            proc.wait()
            raise
        finally:
            timed_out = not timer.is_alive() and proc.returncode is not None and proc.returncode < 0
            timer.cancel()
    if timed_out and not os.path.lexists(out_path):
        status, detail = "timeout", f"run exceeded timeout_s={spec.timeout_s} and was killed"
    if status is None and os.path.lexists(out_path):
        try:
            return childfiles.read_result(out_path)
        except results.ResultError as e:
            status, detail = "failed", f"child wrote an unreadable result: {e}"
    if status is None:
        rc = proc.returncode
        status = "oom" if rc in (-9, 137) else "failed"
        tail = log_path.read_text()[-1500:]
        detail = f"child process exited with code {rc} without a result (killed by the OOM killer?)" \
            if status == "oom" else f"child process exited with code {rc}; log tail: {tail}"
    return failed(spec, detail, status)


def failed(spec: config.RunSpec, detail: str, status: str = "failed") -> dict:
    r = results.new_run(spec.id, spec.to_dict(), status=status)
    r["error"] = detail
    return r


def skipped(spec: config.RunSpec, why: str) -> dict:
    return results.new_run(spec.id, spec.to_dict(), status="skipped", reason=why)


def check_only(suite: config.Suite, only: list[str] | None) -> None:
    """Refuse, before any work, an `--only` name that is neither a run id nor a sweep id."""
    suite.select(only)


def execute(spec: config.RunSpec, out: Path, echo=print, python: str | None = None, wrap: tuple[str, ...] = (),
            env: dict | None = None) -> dict:
    """One member: skipped with the reason where the device or scenario cannot host it, else a child."""
    t0 = time.monotonic()
    why = precheck(spec)
    if why:
        r = skipped(spec, why)
    else:
        r = run_child(spec, out / "runs", echo, python, wrap, env)
    msg = r.get("reason") or r.get("error") or ""
    echo(f"    -> {r['status']} in {time.monotonic() - t0:.0f}s{': ' + msg[:300] if msg else ''}")
    return r


def label(spec: config.RunSpec) -> str:
    rep = f", seed {spec.seed} replicate {spec.replicate}{' timing only' if spec.timing_only else ''}" if spec.id != spec.group else ""
    return f"{spec.id} ({spec.scenario}, {report.techniques_label({'spec': spec.to_dict()})}{rep})"


FINISHED = ("ok", "skipped")  # kept by --resume; failed, oom (also: a child killed from outside), timeout run again
NOT_COMPARED = ("timeout_s",)  # spec fields a resumed run may differ in


def resumable(prev: dict, suite: config.Suite, runs: list[config.RunSpec], git: dict, shard: dict | None) -> dict[str, dict]:
    """The runs of an interrupted result set that --resume keeps: finished, with the same spec as a
    member of this suite; refused outright for other code, another suite or another device."""
    where = prev.get("_path")
    for what, old, new in (("code", shards.code_id(prev.get("git") or {}), shards.code_id(git)),
                           ("suite", prev.get("suite"), suite.name), ("shard", prev.get("shard"), shard),
                           ("device", (prev.get("env") or {}).get("device"), runs[0].device if runs else None)):
        if old != new:
            raise config.ConfigError(f"--resume {where}: recorded {what} {old!r} is not this run's {new!r}; "
                                     "a result set resumes only with the same code, suite and device")
    want = {m.id: {k: v for k, v in m.to_dict().items() if k not in NOT_COMPARED} for m in runs}
    keep = {}
    for r in prev["runs"]:
        spec = {k: v for k, v in r["spec"].items() if k not in NOT_COMPARED}
        if r["status"] in FINISHED and want.get(r["id"]) == spec:
            keep[r["id"]] = r
    return keep


def run_suite(suite: config.Suite, out_root: Path, only: list[str] | None = None, echo=print, executor: str = "serial",
              devices: str | None = None, address: str | None = None, shard: str | None = None,
              resume: str | None = None) -> Path:
    """Run the suite's members (one shard of them with `shard`), through the executor asked for, into
    a new result folder under out_root, or into the folder of `resume`, keeping its finished runs."""
    check_only(suite, only)
    members = suite.members(only)
    shard_ix = shards.parse(shard) if shard else None
    runs = shards.select(members, *shard_ix) if shard_ix else members
    device = members[0].device if members else "cpu"
    env = measure.environment(device)
    prev = results.load(resume) if resume else None
    shard_rec = {"index": shard_ix[0], "count": shard_ix[1]} if shard_ix else None
    kept = resumable(prev, suite, runs, env["git"], shard_rec) if prev else {}
    if prev:
        out = Path(prev["_path"]).parent
    else:
        out = results.set_dir(out_root, suite.name, env["git"].get("sha"))
        if shard_ix:
            out = out.with_name(f"{out.name}_shard{shard_ix[0]}of{shard_ix[1]}")
    ex = _executor(executor, devices, address, runs, out, echo)  # refused here, before the folder exists
    try:
        with lifetime.FolderLock(out):
            return _run(suite, runs, members, shard_ix, prev, kept, ex, env, device, out, echo)
    finally:
        ex.close()


def _executor(kind, devices, address, runs, out, echo):
    from . import executors

    return executors.make(kind, devices, address, runs, out, echo)


def _run(suite, runs, members, shard_ix, prev, kept, ex, env, device, out, echo) -> Path:
    rs = results.new_set(suite, env, env["git"])
    rs.update(members=[m.id for m in members], executor=ex.describe(),
              shard={"index": shard_ix[0], "count": shard_ix[1]} if shard_ix else None)
    if prev:
        rs["resumed"] = [*prev.get("resumed", []), {"utc": rs["created_utc"], "kept": len(kept),
                                                    "dropped": len(prev["runs"]) - len(kept)}]
        rs["created_utc"] = prev["created_utc"]
    done = dict(kept)
    order = {m.id: i for i, m in enumerate(runs)}

    def write() -> None:
        rs["runs"] = [done[m.id] for m in runs if m.id in done]
        results.write_json_atomic(out / "results.json", rs)

    write()  # from here on the folder holds a result set that loads, whenever this process dies
    todo = [m for m in runs if m.id not in done]
    echo(f"effbench: suite {suite.name!r}, {len(runs)} runs ({len({r.group for r in runs})} suite runs x seeds x replicates)"
         f"{f', shard {shard_ix[0]}/{shard_ix[1]} of {len(members)}' if shard_ix else ''}"
         f"{f', {len(kept)} kept from the interrupted set' if prev else ''} on {env.get('device_name')} "
         f"through {ex.describe()} -> {out}")
    t_suite = time.monotonic()
    pending: dict = {}
    queue = iter(todo)

    def fill() -> None:
        while len(pending) < ex.slots:
            spec = next(queue, None)
            if spec is None:
                return
            echo(f"[{order[spec.id] + 1}/{len(runs)}] {label(spec)}")
            pending[ex.submit(spec)] = spec

    fill()
    while pending:
        finished, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
        for f in finished:
            spec = pending.pop(f)
            done[spec.id] = f.result()
            if ex.slots > 1:  # runs end out of order: say which one this is
                r = done[spec.id]
                why = (r.get("reason") or r.get("error") or "")[:300]
                echo(f"    {spec.id} -> {r['status']}{': ' + why if why else ''}")
            write()
        fill()
    if prev and ("kernels" in prev or "kernels_missing" in prev):
        rs.update({k: prev[k] for k in ("kernels", "kernels_missing") if k in prev})
    elif suite.kernel_bench != "none" and (shard_ix is None or shard_ix[0] == 0):
        echo(f"kernel micro-benchmark ({suite.kernel_bench} sweep)")
        rs.update(run_kernel_bench_child(out, device, quick=suite.kernel_bench == "quick"))
        write()
    (out / "summary.md").write_text(report.summary_markdown(rs))
    echo(f"effbench: {len(todo)} runs in {time.monotonic() - t_suite:.0f}s")
    return out


def run_kernel_bench_child(out: Path, device: str, quick: bool) -> dict:
    """The kernel micro-benchmark in its own process (CUDA only); its records, or the reason why none."""
    if device != "cuda":
        return {"kernels_missing": "the kernel micro-benchmark needs CUDA; the Triton interpreter on CPU checks correctness, not speed"}
    path = out.resolve() / "kernels.json"
    code = ("import json, sys; from effbench.kernelbench import run_kernel_bench; "
            "json.dump(run_kernel_bench('cuda', quick=sys.argv[2] == 'quick'), open(sys.argv[1], 'w'))")
    with open(out / "kernels.log", "w") as logf:
        proc = subprocess.run([sys.executable, "-c", code, str(path), "quick" if quick else "full"],
                              stdout=logf, stderr=subprocess.STDOUT, cwd=out.resolve())
    if proc.returncode != 0 or not path.exists():
        return {"kernels_missing": f"kernel benchmark exited with code {proc.returncode}; see kernels.log"}
    return {"kernels": json.loads(path.read_text())}
