"""The executors' scheduling without a GPU: `--devices` never gives one device to two runs at once,
keeps every device busy, pins each child with CUDA_VISIBLE_DEVICES and records it; the child's
environment applies the executor's variables and the suite's thread count."""

from __future__ import annotations

import threading
import time

from effbench import runspec
from effbench.child import THREAD_VARS
from effbench.run import executors, member


def test_devices_pin_one_run_per_device_at_a_time(tmp_path, monkeypatch):
    busy: dict[str, str] = {}
    seen, peak, lock = [], [0], threading.Lock()

    def fake_execute(spec, out, echo=print, python=None, wrap=(), env=None):
        dev = env["CUDA_VISIBLE_DEVICES"]
        with lock:
            assert dev not in busy, f"{spec.id} and {busy.get(dev)} on device {dev} at once"
            busy[dev] = spec.id
            peak[0] = max(peak[0], len(busy))
        time.sleep(0.02)
        with lock:
            del busy[dev]
            seen.append((spec.id, dev))
        return member.skipped(spec, "fake")

    monkeypatch.setattr(member, "execute", fake_execute)
    specs = [runspec.RunSpec(id=f"r{i}", scenario="infer", model="tiny", device="cuda") for i in range(12)]
    ex = executors.Devices(["0", "1", "3"], tmp_path)
    futs = [ex.submit(s) for s in specs]
    got = [f.result() for f in futs]
    ex.close()
    assert sorted(r["id"] for r in got) == sorted(s.id for s in specs)
    assert {d for _, d in seen} == {"0", "1", "3"} and peak[0] == 3
    assert all(
        r["executor"]["kind"] == "devices" and r["executor"]["cuda_visible_devices"] in ("0", "1", "3") for r in got
    )


def test_child_env_sets_unsets_and_sizes_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as a Ray worker has it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    env = member.child_env(None, {"OMP_NUM_THREADS": None, "CUDA_VISIBLE_DEVICES": "2"})
    assert "OMP_NUM_THREADS" not in env and env["CUDA_VISIBLE_DEVICES"] == "2"
    env = member.child_env(3, {"OMP_NUM_THREADS": None})
    assert all(env[k] == "3" for k in THREAD_VARS)


def test_ray_children_get_the_drivers_thread_variables(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    te = executors._thread_env()
    assert te["OMP_NUM_THREADS"] is None and te["MKL_NUM_THREADS"] == "2" and set(te) == set(THREAD_VARS)
