"""Where each run's child process runs: one small interface, three implementations.

An executor takes a RunSpec and gives back a `concurrent.futures.Future` of its RunResult
(`submit`), and says how many runs it keeps in flight (`slots`). The runner submits up to `slots`
runs, writes each RunResult into the result set as it arrives, and never knows which executor it is
talking to. Every executor runs the same child code (`python -m effbench.child`, member.run_child).

- `Serial`: one run at a time in this process's child (the default).
- `Devices`: one child per local GPU at a time (`--devices 0,1,2,3`), each started with
  `CUDA_VISIBLE_DEVICES` set to its device before CUDA starts; the child records the device's UUID
  (measure.environment, matched to NVML by UUID). On CPU it is refused (see `refuse_on_cpu`).
- `Ray`: each run a Ray task reserving one GPU (`num_gpus=1`; on CPU, `num_cpus` = the run's
  threads, or 1), which starts the same child on the worker in a temporary folder and sends back the
  RunResult and the child's log. The child gets the driver's thread variables (Ray's workers set
  OMP_NUM_THREADS=1 otherwise), so a run uses the thread count the suite sets wherever it runs, and
  records it. A run whose worker ran different code than the driver is recorded `failed` with both
  commits: a cluster must hold the same checkout on every node.
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from effbench import runspec
from effbench.child import THREAD_VARS, measure
from effbench.read import runlogs
from effbench.run import childfiles, member, shards

KINDS = ("serial", "ray")  # --executor; `--devices` selects Devices


class Serial:
    kind = "serial"
    slots = 1

    def __init__(self, out: Path, echo=print):
        self.out, self.echo = out, echo

    def submit(self, spec: runspec.RunSpec) -> Future:
        f: Future = Future()
        f.set_result(member.execute(spec, self.out, self.echo))
        return f

    def describe(self) -> dict:
        return {"kind": self.kind}

    def close(self) -> None:
        pass


def parse_devices(text: str) -> list[str]:
    """`0,1,2,3` -> ['0', '1', '2', '3']: distinct CUDA device indices or UUIDs (GPU-...)."""
    devs = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in devs if not (d.isdigit() or d.startswith(("GPU-", "MIG-")))]
    if not devs or bad or len(set(devs)) != len(devs):
        raise runspec.ConfigError(
            f"--devices {text!r}: expected distinct CUDA device indices or UUIDs separated by "
            f"commas, e.g. 0,1,2,3 or GPU-8f6d...,GPU-12ab..."
        )
    return devs


def measures_speed(spec: runspec.RunSpec) -> bool:
    """Whether a run's figures include timings that parallel runs on one CPU would distort: every
    fine-tuning run (tokens/s) and every inference run (prefill/decode tokens/s) does today."""
    return spec.scenario in runspec.SCENARIO_OF


def refuse_on_cpu(specs: list[runspec.RunSpec]) -> None:
    timed = [s.id for s in specs if s.device != "cuda" and measures_speed(s)]
    if timed:
        raise runspec.ConfigError(
            f"--devices runs one child per GPU; these runs are on the CPU and measure speed, which parallel runs "
            f"on one CPU would distort through each other's contention: {timed[:8]}{' ...' if len(timed) > 8 else ''}. "
            f"Run them serially (no --devices), or on CUDA (--device cuda)"
        )


class Devices:
    """One child per local device at a time; a device is taken from the free list for one run."""

    kind = "devices"

    def __init__(self, devices: list[str], out: Path, echo=print):
        self.devices, self.out, self.echo = devices, out, echo
        self.slots = len(devices)
        self.free: queue.Queue = queue.Queue()
        for d in devices:
            self.free.put(d)
        # Each child is started and awaited by one pool thread, which outlives it (PR_SET_PDEATHSIG).
        self.pool = ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="effbench-device")

    def _one(self, spec: runspec.RunSpec) -> dict:
        dev = self.free.get()
        try:
            echo = lambda line: self.echo(f"  [gpu {dev}] {spec.id}: {line.strip()}")  # noqa: E731
            r = member.execute(spec, self.out, echo, env={"CUDA_VISIBLE_DEVICES": dev})
        finally:
            self.free.put(dev)
        r["executor"] = {"kind": self.kind, "cuda_visible_devices": dev, "host": socket.gethostname()}
        return r

    def submit(self, spec: runspec.RunSpec) -> Future:
        return self.pool.submit(self._one, spec)

    def describe(self) -> dict:
        return {"kind": self.kind, "devices": self.devices}

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _thread_env() -> dict:
    """This process's thread variables, None where unset: a Ray worker's child gets exactly these."""
    return {k: os.environ.get(k) for k in THREAD_VARS}


def ray_task(spec_dict: dict, thread_env: dict) -> tuple[dict, str]:
    """Body of the Ray task, on a worker: the same child as a local run, in a temporary folder;
    returns (RunResult, the child's log)."""
    import ray

    spec = runspec.RunSpec.from_dict(spec_dict)
    with tempfile.TemporaryDirectory(prefix="effbench-ray-") as d:
        r = member.run_child(spec, Path(d), echo=lambda line: None, env=thread_env)
        log = runlogs.read(d, spec.id)
    ctx = ray.get_runtime_context()
    r["executor"] = {
        "kind": "ray",
        "host": socket.gethostname(),
        "node_id": ctx.get_node_id(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    return r, log


class Ray:
    """Runs as Ray tasks on the cluster at `address` (None: a new local instance, stopped on close)."""

    kind = "ray"

    def __init__(self, address: str | None, out: Path, echo=print, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise runspec.ConfigError("--executor ray needs the `ray` package: pip install 'effbench[ray]'") from None
        self.ray, self.address, self.out, self.echo = ray, address, out, echo
        self.started_here = not ray.is_initialized() and address is None
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self.task = ray.remote(max_retries=0)(ray_task)  # a retried run would be measured twice
        self.slots = 1 << 20  # every run is submitted; Ray schedules them on free resources
        self.code = shards.code_id(measure.git_state())

    def submit(self, spec: runspec.RunSpec) -> Future:
        why = member.precheck(spec, check_local_device=False)  # the driver may have no GPU; the workers do
        if why:
            return _done(member.skipped(spec, why))
        res = {"num_gpus": 1} if spec.device == "cuda" else {"num_cpus": spec.threads or 1}
        ref = self.task.options(**res).remote(spec.to_dict(), _thread_env())
        out: Future = Future()

        def arrived(f: Future) -> None:
            try:
                r, log = f.result()
            except Exception as e:  # the task itself failed: the worker died, or the cluster went away
                r, log = member.failed(spec, f"Ray task failed: {type(e).__name__}: {e}"), ""
            try:
                code = shards.code_id(r.get("env", {}).get("git") or {}) if r.get("env") else self.code
                if code != self.code:
                    r.update(
                        status="failed",
                        error=f"the Ray worker ran code {code}, the driver {self.code}: "
                        "every node needs the same checkout",
                    )
                (self.out / "runs").mkdir(parents=True, exist_ok=True)
                childfiles.write_log(self.out / "runs" / f"{spec.id}{runlogs.SUFFIX}", log)
            finally:  # the runner waits on this future: it is always set
                out.set_result(r)

        ref.future().add_done_callback(arrived)
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "address": self.address or "local instance"}

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def _done(r: dict) -> Future:
    f: Future = Future()
    f.set_result(r)
    return f


def make(kind: str, devices: str | None, address: str | None, specs: list[runspec.RunSpec], out: Path, echo=print):
    """The executor the command line asks for; refused before any work where it cannot serve `specs`."""
    if kind not in KINDS:
        raise runspec.ConfigError(f"--executor {kind!r}: valid: {list(KINDS)}")
    if devices and kind != "serial":
        raise runspec.ConfigError("--devices is for one machine; with --executor ray, Ray places each run on a GPU")
    if address and kind != "ray":
        raise runspec.ConfigError("--address is the Ray cluster's address; give it with --executor ray")
    if devices:
        devs = parse_devices(devices)
        refuse_on_cpu(specs)
        return Devices(devs, out, echo)
    if kind == "ray":
        return Ray(address, out, echo)
    return Serial(out, echo)
