"""One member of a suite in its own child process: `[wrap] python -m effbench.child SPEC OUT`.

The part of the run side every executor shares (serial, one per local GPU, Ray workers, `ab`'s two
interpreters): whether the device and scenario can host a spec (precheck), the child's environment
and thread pools, starting and watching the child, and the record of a run that failed or was
skipped. The runner (a suite) and the executors (where children run) both build on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from effbench import models, runspec
from effbench.child import THREAD_VARS
from effbench.child.log import PREFIX
from effbench.read import results, runinfo, runlogs
from effbench.run import childfiles, lifetime
from effbench.techniques import build_all


def precheck(spec: runspec.RunSpec, check_local_device: bool = True) -> str | None:
    """Why a run cannot be hosted (a technique's reason, or no CUDA here), else None.
    check_local_device=False: the run goes to another machine (Ray), whose device this one cannot see."""
    scen = runspec.SCENARIO_OF[spec.scenario]
    for t in build_all(list(spec.techniques)):
        why = t.skip_reason(scen, spec.device)
        if why:
            return why
    if spec.device == "cuda" and check_local_device:
        import torch

        if not torch.cuda.is_available():
            return "the run asks for device 'cuda' but torch.cuda.is_available() is False"
    return None


def warm_model_cache(
    specs,
    echo=print,
    python: str | None = None,
    wrap: tuple[str, ...] = (),
    only_if_needed: bool = True,
    timeout_s: float = 1800,
) -> list[str]:
    """Load once, in a process of its own, each model of `specs` that loads from a cache effbench
    builds (the default model: the GGUF dequantized, ~40 s and ~1.5 GB on 2 CPU cores), so that no
    run builds it inside its measured start-up and memory. `python`/`wrap`: the interpreter and
    prefix the runs will use (`ab`: each side's checkout, whose code may keep another cache format,
    so there `only_if_needed=False` lets that side's own code check). Returns the models warmed. A
    failure is echoed and left to the runs, which record it as their own failure."""
    names = sorted({s.model for s in specs if s.model == models.DEFAULT_MODEL})
    if only_if_needed:
        names = [n for n in names if models.cache_to_build(n)]
    for name in names:
        echo(
            f"model cache: loading {name} once before the first run (built there if missing, outside every measurement)"
        )
        t0 = time.perf_counter()
        code = f"from effbench import models; models.load({name!r}, with_tokenizer=False)"
        try:  # cwd: not a checkout, whose kernels/ folder would shadow the package (see run_child)
            p = subprocess.run(
                [*wrap, python or sys.executable, "-c", code],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=child_env(None),
                cwd=tempfile.gettempdir(),
            )
            why = "" if p.returncode == 0 else (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as e:
            why = f"{type(e).__name__}: {e}"
        echo(
            f"    {name}: {'ready' if not why else 'not ready (' + why[:300] + '); each run will record its own load'} "
            f"in {time.perf_counter() - t0:.0f}s"
        )
    return names


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


def run_child(
    spec: runspec.RunSpec,
    folder: Path,
    echo=print,
    python: str | None = None,
    wrap: tuple[str, ...] = (),
    env: dict | None = None,
) -> dict:
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
        proc = subprocess.Popen(
            cmd,
            stdout=logf,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=folder,
            env=child_env(spec.threads, env),
            preexec_fn=lifetime.die_with_parent(),
        )
        timer = threading.Timer(spec.timeout_s, proc.kill)  # a silent hang is killed too
        timer.start()
        try:
            for line in proc.stderr:  # type: ignore[union-attr]
                logf.write(line)
                if line.startswith(PREFIX):
                    echo(f"    {line[len(PREFIX) :].rstrip()}")
            proc.wait()
        except BaseException:  # Ctrl-C or an error here: the child does not outlive its run
            proc.kill()
            proc.wait()
            raise
        finally:
            timed_out = not timer.is_alive() and proc.returncode is not None and proc.returncode < 0
            timer.cancel()
    log_gz = childfiles.compress_log(log_path)  # the child has exited and the file is closed: complete
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
        tail = runlogs.read_file(log_gz)[-1500:] if log_gz else ""
        detail = (
            f"child process exited with code {rc} without a result (killed by the OOM killer?)"
            if status == "oom"
            else f"child process exited with code {rc}; log tail: {tail}"
        )
    return failed(spec, detail, status)


def failed(spec: runspec.RunSpec, detail: str, status: str = "failed") -> dict:
    r = results.new_run(spec.id, spec.to_dict(), status=status)
    r["error"] = detail
    return r


def skipped(spec: runspec.RunSpec, why: str) -> dict:
    return results.new_run(spec.id, spec.to_dict(), status="skipped", reason=why)


def execute(
    spec: runspec.RunSpec,
    out: Path,
    echo=print,
    python: str | None = None,
    wrap: tuple[str, ...] = (),
    env: dict | None = None,
) -> dict:
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


def label(spec: runspec.RunSpec) -> str:
    rep = (
        f", seed {spec.seed} replicate {spec.replicate}{' timing only' if spec.timing_only else ''}"
        if spec.id != spec.group
        else ""
    )
    return f"{spec.id} ({spec.scenario}, {runinfo.techniques_label({'spec': spec.to_dict()})}{rep})"
