"""Run a suite: one child process per run, results gathered into a result set as they arrive.

results.json is rewritten after every run, so a crash of one run (or of this process) never loses
the runs before it. A run that the device or scenario cannot host is recorded as skipped with the
reason and never started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import childfiles, config, measure, report, results
from .techniques import build_all

PREFIX = "[effbench] "


def log(msg: str) -> None:
    """Progress from a child: the parent echoes lines carrying PREFIX to the console."""
    print(PREFIX + msg, file=sys.stderr, flush=True)


def precheck(spec: config.RunSpec) -> str | None:
    scen = config.SCENARIO_OF[spec.scenario]
    for t in build_all(list(spec.techniques)):
        why = t.skip_reason(scen, spec.device)
        if why:
            return why
    if spec.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "the run asks for device 'cuda' but torch.cuda.is_available() is False"
    return None


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def child_env(threads: int | None) -> dict:
    """The child's environment: with a thread count, every BLAS/OpenMP pool is sized before import."""
    env = dict(os.environ)
    if threads is not None:
        env.update({k: str(threads) for k in THREAD_VARS})
    return env


def run_child(spec: config.RunSpec, folder: Path, echo=print, python: str | None = None, wrap: tuple[str, ...] = ()) -> dict:
    """Run one spec in its own process: `[*wrap] python -m effbench.child SPEC OUT` (python: this
    interpreter unless given, e.g. the other checkout's `.venv/bin/python` in `effbench ab`)."""
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
                                env=child_env(spec.threads))
        timer = threading.Timer(spec.timeout_s, proc.kill)  # a silent hang is killed too
        timer.start()
        try:
            for line in proc.stderr:  # type: ignore[union-attr]
                logf.write(line)
                if line.startswith(PREFIX):
                    echo(f"    {line[len(PREFIX):].rstrip()}")
            proc.wait()
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
    r = results.new_run(spec.id, spec.to_dict(), status=status)
    r["error"] = detail
    return r


def check_only(suite: config.Suite, only: list[str] | None) -> None:
    unknown = sorted(set(only or ()) - {r.id for r in suite.runs})
    if unknown:
        raise config.ConfigError(f"unknown run id(s) {unknown}; valid: {[r.id for r in suite.runs]}")


def execute(spec: config.RunSpec, out: Path, echo=print, python: str | None = None, wrap: tuple[str, ...] = ()) -> dict:
    """One member: skipped with the reason where the device or scenario cannot host it, else a child."""
    t0 = time.monotonic()
    why = precheck(spec)
    if why:
        r = results.new_run(spec.id, spec.to_dict(), status="skipped", reason=why)
    else:
        r = run_child(spec, out / "runs", echo, python, wrap)
    msg = r.get("reason") or r.get("error") or ""
    echo(f"    -> {r['status']} in {time.monotonic() - t0:.0f}s{': ' + msg[:300] if msg else ''}")
    return r


def label(spec: config.RunSpec) -> str:
    rep = f", seed {spec.seed} replicate {spec.replicate}{' timing only' if spec.timing_only else ''}" if spec.id != spec.group else ""
    return f"{spec.id} ({spec.scenario}, {report.techniques_label({'spec': spec.to_dict()})}{rep})"


def run_suite(suite: config.Suite, out_root: Path, only: list[str] | None = None, echo=print) -> Path:
    check_only(suite, only)
    runs = suite.members(only)
    device = runs[0].device if runs else "cpu"
    env = measure.environment(device)
    rs = results.new_set(suite, env, env["git"])
    out = results.set_dir(out_root, suite.name, env["git"].get("sha"))
    out.mkdir(parents=True, exist_ok=True)
    echo(f"effbench: suite {suite.name!r}, {len(runs)} runs ({len({r.group for r in runs})} suite runs x seeds x replicates) "
         f"on {env.get('device_name')} -> {out}")
    t_suite = time.monotonic()
    for i, spec in enumerate(runs, 1):
        echo(f"[{i}/{len(runs)}] {label(spec)}")
        rs["runs"].append(execute(spec, out, echo))
        results.write_json_atomic(out / "results.json", rs)
    if suite.kernel_bench != "none":
        echo(f"kernel micro-benchmark ({suite.kernel_bench} sweep)")
        rs.update(run_kernel_bench_child(out, device, quick=suite.kernel_bench == "quick"))
        results.write_json_atomic(out / "results.json", rs)
    (out / "summary.md").write_text(report.summary_markdown(rs))
    echo(f"effbench: {len(runs)} runs in {time.monotonic() - t_suite:.0f}s")
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
