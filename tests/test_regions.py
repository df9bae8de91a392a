"""Measured regions leave evaluations out: the energy counter sums the segments around them."""

from __future__ import annotations

import sys
import types

from effbench.child import measure


def test_energy_sums_segments_and_leaves_the_pause_out(monkeypatch):
    readings = iter([1000, 3000, 5000, 6000])  # mJ: train 2 J, (evaluation 2 J), train 1 J
    fake = types.SimpleNamespace(nvmlDeviceGetTotalEnergyConsumption=lambda h: next(readings))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    e = measure.Energy("cpu")
    e.handle, e.reason = object(), None  # as if NVML had answered
    with e:
        e.pause()
        e.resume()
    r = e.result()
    assert r["value"] == 3.0 and "2 segments" in r["method"]


def test_energy_without_a_segment_is_missing():
    e = measure.Energy("cpu")
    assert e.result()["value"] is None
