"""A cold model cache is built once, in a process of its own, before a suite's first run, so that no
run's start-up and memory include the build; a run whose own process built it anyway says so
(its model note) and records its RSS after set-up as missing, with the reason."""

from __future__ import annotations

import stat
from types import SimpleNamespace

from effbench import models
from effbench.child import main as child
from effbench.run import member, runner, suites


def _fake_python(tmp_path, rc: int = 0):
    """An interpreter stand-in that logs its arguments (and fails with `rc`)."""
    log = tmp_path / "calls.log"
    py = tmp_path / "python"
    py.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "ModelError: no GGUF here" >&2\nexit {rc}\n')
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return str(py), log


def test_warm_loads_each_cached_model_once_in_its_own_process(tmp_path):
    py, log = _fake_python(tmp_path)
    specs = [SimpleNamespace(model=m) for m in ("smollm2-135m", "tiny", "smollm2-135m", "arch:smollm2-135m")]
    echoed = []
    assert member.warm_model_cache(specs, echoed.append, py, only_if_needed=False) == ["smollm2-135m"]
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("-c ") and "models.load('smollm2-135m'" in calls[0]
    assert "ready in" in echoed[-1] and "not ready" not in echoed[-1]
    # random-weight models have no cache: nothing to start
    assert member.warm_model_cache([SimpleNamespace(model="tiny")], echoed.append, py, only_if_needed=False) == []
    assert len(log.read_text().splitlines()) == 1


def test_warm_skips_a_built_cache_and_reports_a_failed_build(tmp_path, monkeypatch):
    py, log = _fake_python(tmp_path, rc=2)
    specs = [SimpleNamespace(model="smollm2-135m")]
    monkeypatch.setattr(models, "cache_to_build", lambda name: None)  # built and verified
    assert member.warm_model_cache(specs, print, py) == [] and not log.exists()
    monkeypatch.setattr(models, "cache_to_build", lambda name: "not built yet")
    echoed = []
    assert member.warm_model_cache(specs, echoed.append, py) == ["smollm2-135m"]
    assert "not ready (ModelError: no GGUF here)" in echoed[-1] and "each run will record" in echoed[-1]


def test_runner_warms_before_the_first_run(tmp_path, monkeypatch):
    (tmp_path / "s.toml").write_text(
        '[suite]\nname = "warm"\nmodel = "tiny"\ndevice = "cpu"\n'
        '[[run]]\nid = "a"\nscenario = "infer"\n[[run]]\nid = "b"\nscenario = "infer"\n'
    )
    events = []
    monkeypatch.setattr(member, "warm_model_cache", lambda specs, echo: events.append(("warm", [s.id for s in specs])))

    def fake_execute(spec, out, echo=print, *a, **k):
        events.append(("run", spec.id))
        return member.skipped(spec, "not run by this test")

    monkeypatch.setattr(member, "execute", fake_execute)
    runner.run_suite(suites.load_suite(str(tmp_path / "s.toml")), tmp_path / "out", echo=lambda *a: None)
    assert events == [("warm", ["a", "b"]), ("run", "a"), ("run", "b")]


def test_a_run_that_built_the_cache_says_so_and_reports_no_rss(monkeypatch):
    monkeypatch.setattr(models, "BUILT_IN_THIS_PROCESS", ["tiny"])
    budget = dict(batch_sizes=[1], prompt_len=8, decode_tokens=2, repeats=1, quality=False)
    r = child.run_spec(dict(id="cold", scenario="infer", model="tiny", device="cpu", budget=budget, seed=0))
    assert r["status"] == "ok", r.get("error")
    assert "cache was built in this run's process" in r["model"]["note"]
    rss = r["metrics"]["rss_after_setup_bytes"]
    assert rss["value"] is None and "model cache was built" in rss["reason"] and rss["unit"] == "B"
    monkeypatch.setattr(models, "BUILT_IN_THIS_PROCESS", [])
    r = child.run_spec(dict(id="warm", scenario="infer", model="tiny", device="cpu", budget=budget, seed=0))
    assert r["metrics"]["rss_after_setup_bytes"]["value"] > 0 and "built" not in r["model"]["note"]
