"""Run a suite: one child process per run, results gathered into a result set as they arrive.

Where each child runs is the executor's business (effbench.run.executors: serial, one per local GPU,
Ray tasks); the runner submits specs, keeps as many in flight as the executor has slots, and
rewrites results.json atomically after every run that arrives, in the suite's member order. So a
crash of one run, or a SIGKILL of this process at any moment, leaves a results.json that loads, and
`--resume` keeps its finished runs and runs the rest. A lock on the folder keeps a second suite
out of it. Children die with this process (effbench.run.lifetime).
`--shard i/N` runs the members of one stable shard (effbench.run.shards). A run that the device or
scenario cannot host is recorded as skipped with the reason and never started.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

from effbench import runspec
from effbench.child import measure
from effbench.read import results
from effbench.render import report
from effbench.run import childfiles, executors, lifetime, member, shards, suites
from effbench.run.member import label

FINISHED = ("ok", "skipped")  # kept by --resume; failed, oom (also: a child killed from outside), timeout run again
NOT_COMPARED = ("timeout_s",)  # spec fields a resumed run may differ in


def resumable(
    prev: dict, suite: suites.Suite, runs: list[runspec.RunSpec], env: dict, shard: dict | None
) -> dict[str, dict]:
    """The runs of an interrupted result set that --resume keeps: finished, with the same spec as a
    member of this suite; refused outright for other code, another suite, another device kind or
    another machine model (`env` is this machine's measure.environment: a set begun on one CPU or GPU
    model and finished on another would put two machines' timings side by side as if comparable),
    and where a finished run is not among `runs` (an --only or shard that leaves it out would write
    the set without it)."""
    where = prev.get("_path")
    old_env = prev.get("env") or {}
    for what, old, new in (
        ("code", shards.code_id(prev.get("git") or {}), shards.code_id(env.get("git") or {})),
        ("suite", prev.get("suite"), suite.name),
        ("shard", prev.get("shard"), shard),
        ("device", old_env.get("device"), runs[0].device if runs else None),
        ("machine", old_env.get("device_name"), env.get("device_name")),
    ):
        if old != new:
            raise runspec.ConfigError(
                f"--resume {where}: recorded {what} {old!r} is not this run's {new!r}; "
                "a result set resumes only with the same code, suite, device and machine model "
                "(start a new set instead)"
            )
    outside = sorted({r["id"] for r in prev["runs"] if r.get("status") in FINISHED} - {m.id for m in runs})
    if outside:
        raise runspec.ConfigError(
            f"--resume {where}: finished runs {outside} are not among the runs asked for "
            f"({sorted(m.id for m in runs)}), and the resumed set would drop them; "
            "resume with --only naming them too, or without --only"
        )
    want = {m.id: {k: v for k, v in m.to_dict().items() if k not in NOT_COMPARED} for m in runs}
    keep = {}
    for r in prev["runs"]:
        spec = {k: v for k, v in r["spec"].items() if k not in NOT_COMPARED}
        if r["status"] in FINISHED and want.get(r["id"]) == spec:
            keep[r["id"]] = r
    return keep


def run_suite(
    suite: suites.Suite,
    out_root: Path,
    only: list[str] | None = None,
    echo=print,
    executor: str = "serial",
    devices: str | None = None,
    address: str | None = None,
    shard: str | None = None,
    resume: str | None = None,
) -> Path:
    """Run the suite's members (one shard of them with `shard`), through the executor asked for, into
    a new result folder under out_root, or into the folder of `resume`, keeping its finished runs."""
    members = suite.members(only)  # an unknown --only name is refused here, before any work
    shard_ix = shards.parse(shard) if shard else None
    runs = shards.select(members, *shard_ix) if shard_ix else members
    device = members[0].device if members else "cpu"
    env = measure.environment(device)
    prev = results.load(resume) if resume else None
    shard_rec = {"index": shard_ix[0], "count": shard_ix[1]} if shard_ix else None
    kept = resumable(prev, suite, runs, env, shard_rec) if prev else {}
    if prev:
        out = Path(prev["_path"]).parent
    else:
        out = results.set_dir(out_root, suite.name, env["git"].get("sha"))
        if shard_ix:
            out = out.with_name(f"{out.name}_shard{shard_ix[0]}of{shard_ix[1]}")
    ex = executors.make(executor, devices, address, runs, out, echo)  # refused here, before the folder exists
    plan = _Plan(suite, members, runs, shard_ix, prev, kept, env, device, out)
    try:
        with lifetime.FolderLock(out):
            return _run(plan, ex, echo)
    finally:
        ex.close()


@dataclass
class _Plan:
    """What run_suite settled before any run started."""

    suite: suites.Suite
    members: list  # every member of the suite (RunSpecs), in rounds
    runs: list  # the members this process runs: all, or one shard's
    shard_ix: tuple[int, int] | None
    prev: dict | None  # the interrupted set of --resume
    kept: dict  # its finished runs that this plan keeps, by id
    env: dict  # measure.environment of this machine
    device: str
    out: Path  # the result folder


def _run(plan: _Plan, ex, echo) -> Path:
    suite, runs, members, shard_ix, prev, kept = (
        plan.suite,
        plan.runs,
        plan.members,
        plan.shard_ix,
        plan.prev,
        plan.kept,
    )
    env, device, out = plan.env, plan.device, plan.out
    rs = results.new_set(suite, env, env["git"])
    rs.update(
        members=[m.id for m in members],
        executor=ex.describe(),
        shard={"index": shard_ix[0], "count": shard_ix[1]} if shard_ix else None,
    )
    if prev:
        rs["resumed"] = [
            *prev.get("resumed", []),
            {"utc": rs["created_utc"], "kept": len(kept), "dropped": len(prev["runs"]) - len(kept)},
        ]
        rs["created_utc"] = prev["created_utc"]
    done = dict(kept)
    order = {m.id: i for i, m in enumerate(runs)}

    def write() -> None:
        rs["runs"] = [done[m.id] for m in runs if m.id in done]
        results.write_json_atomic(out / "results.json", rs)

    write()  # from here on the folder holds a result set that loads, whenever this process dies
    todo = [m for m in runs if m.id not in done]
    echo(
        f"effbench: suite {suite.name!r}, {len(runs)} runs ({len({r.group for r in runs})} suite runs x seeds x replicates)"
        f"{f', shard {shard_ix[0]}/{shard_ix[1]} of {len(members)}' if shard_ix else ''}"
        f"{f', {len(kept)} kept from the interrupted set' if prev else ''} on {env.get('device_name')} "
        f"through {ex.describe()} -> {out}"
    )
    t_suite = time.monotonic()
    member.warm_model_cache(todo, echo)  # a cold cache is built here, not inside the first run's measurements
    if prev and ("ceiling" in prev or "ceiling_missing" in prev):
        rs.update({k: prev[k] for k in ("ceiling", "ceiling_missing") if k in prev})
    elif suite.ceiling != "none":
        rs.update(run_ceiling_child(out, device, suite, runs, ex, echo))
        write()
    else:  # asked for none (the suite's `ceiling = "none"`, or --ceiling none): say so, not "predates"
        rs["ceiling_missing"] = f'suite {suite.name!r} ran with ceiling = "none"'
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


def _json_child(out: Path, name: str, code: str, args: list[str], env: dict | None = None, keep: bool = True):
    """Run `python -c code OUT/<name>.json *args` in its own process, its output in <name>.log.gz;
    (the JSON it wrote, exit code): None where it failed or wrote nothing. `keep`: leave the file."""
    path = out.resolve() / f"{name}.json"
    with open(out / f"{name}.log", "w") as logf:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path), *args],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=out.resolve(),
            env=env,
        )
    childfiles.compress_log(out / f"{name}.log")  # -> <name>.log.gz, as the runs' logs
    if proc.returncode != 0 or not path.exists():
        return None, proc.returncode
    rec = json.loads(path.read_text())
    if not keep:
        path.unlink()
    return rec, 0


def run_ceiling_child(out: Path, device: str, suite: suites.Suite, runs: list, ex, echo=print) -> dict:
    """The device's measured ceiling (effbench.child.ceiling) at every matmul dtype the runs use,
    in its own process with the runs' thread count, before any run; or why there is none."""
    if ex.kind == "ray":
        return {"ceiling_missing": "runs executed on Ray workers: this machine's ceiling says nothing about theirs"}
    dtypes = sorted({runspec.matmul_dtype(r) for r in runs}) or ["float32"]
    echo(f"ceiling: matmul FLOP/s at {', '.join(dtypes)} and copy bandwidth on {device}")
    code = (
        "import json, sys; from effbench.child import ceiling; "
        "json.dump(ceiling.measure(sys.argv[2], sys.argv[3].split(','), quick=sys.argv[4] == 'quick'), open(sys.argv[1], 'w'))"
    )
    rec, rc = _json_child(
        out, "ceiling", code, [device, ",".join(dtypes), suite.ceiling], member.child_env(suite.threads), keep=False
    )
    if rec is None:
        return {"ceiling_missing": f"ceiling measurement exited with code {rc}; see ceiling.log.gz"}
    return {"ceiling": rec}


def run_kernel_bench_child(out: Path, device: str, quick: bool) -> dict:
    """The kernel micro-benchmark in its own process (CUDA only); its records, or the reason why none."""
    if device != "cuda":
        return {
            "kernels_missing": "the kernel micro-benchmark needs CUDA; the Triton interpreter on CPU checks correctness, not speed"
        }
    code = (
        "import json, sys; from effbench.kernelbench.bench import run_kernel_bench; "
        "json.dump(run_kernel_bench('cuda', quick=sys.argv[2] == 'quick'), open(sys.argv[1], 'w'))"
    )
    rec, rc = _json_child(out, "kernels", code, ["quick" if quick else "full"])
    if rec is None:
        return {"kernels_missing": f"kernel benchmark exited with code {rc}; see kernels.log.gz"}
    return {"kernels": rec}
