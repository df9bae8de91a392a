"""Shards partition a suite by spec (not position); merge refuses sets that are not shards of one
suite run by the same code on the same device kind; bad scale-out flags fail before any work."""

from __future__ import annotations

import dataclasses
import random

import pytest
from _resultsets import finetune_run

from effbench import cli, runspec
from effbench.read import results
from effbench.run import shards, suites


def members(name: str = "cpu-full") -> list[runspec.RunSpec]:
    return suites.load_suite(name, {"seeds": [0, 1], "replicates": 3}).members()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_partition_the_members(count):
    ms = members()
    parts = [shards.select(ms, i, count) for i in range(count)]
    ids = [s.id for p in parts for s in p]
    assert sorted(ids) == sorted(m.id for m in ms) and len(ids) == len(set(ids))


def test_a_runs_shard_depends_on_its_spec_not_its_position():
    ms = members()
    before = {m.id: shards.shard_of(m, 4) for m in ms}
    shuffled = list(ms)
    random.Random(0).shuffle(shuffled)
    assert {m.id: shards.shard_of(m, 4) for m in shuffled} == before
    assert {m.id: shards.shard_of(m, 4) for m in ms[::3]} == {
        m.id: before[m.id] for m in ms[::3]
    }  # --only keeps shards
    assert shards.shard_of(dataclasses.replace(ms[0], threads=7, timeout_s=5), 4) == before[ms[0].id]
    assert len(set(before.values())) == 4  # 24 members: every shard gets work


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shard_is_refused_with_the_form(text):
    with pytest.raises(runspec.ConfigError, match="i/N with 0 <= i < N"):
        shards.parse(text)


def _set(tmp_path, name, runs, members_, **changes):
    suite = suites.load_suite("smoke")
    git = changes.pop("git", {"sha": "1" * 40, "dirty": False})
    rs = results.new_set(suite, {"device": "cpu", "device_name": "Test CPU", "git": git}, git)
    rs.update(runs=runs, members=members_, shard=None, **changes)
    folder = tmp_path / name
    results.write_json_atomic(folder / "results.json", rs)
    return str(folder)


def test_merge_joins_in_member_order_and_refuses_mixed_sets(tmp_path):
    a, b = finetune_run("finetune-full"), finetune_run("infer-baseline")
    order = ["infer-baseline", "finetune-full"]
    p0, p1 = _set(tmp_path, "s0", [a], order), _set(tmp_path, "s1", [b], order)
    merged = results.load(shards.merge([p0, p1], tmp_path / "m"))
    assert [r["id"] for r in merged["runs"]] == order
    other_code = _set(tmp_path, "c", [b], order, git={"sha": "2" * 40, "dirty": False})
    dirty = _set(tmp_path, "d", [b], order, git={"sha": "1" * 40, "dirty": True, "diff_sha256": "e" * 64})
    other_suite = _set(tmp_path, "x", [b], order, suite="other")
    other_device = _set(tmp_path, "g", [b], order, env={"device": "cuda", "device_name": "NVIDIA H100 80GB HBM3"})
    for bad, what in ((other_code, "code"), (dirty, "code"), (other_suite, "suite"), (other_device, "device")):
        with pytest.raises(runspec.ConfigError, match=f"differ in {what}"):
            shards.merge([p0, bad], tmp_path / f"out-{what}")
    with pytest.raises(runspec.ConfigError, match=r"no set holds run\(s\) \['infer-baseline'\]"):
        shards.merge([p0, _set(tmp_path, "e", [], order)], tmp_path / "out-missing")
    with pytest.raises(runspec.ConfigError, match="more than one set"):
        shards.merge([p0, p0], tmp_path / "out-twice")


def test_code_identity_tells_dirty_trees_apart():
    clean = {"sha": "1" * 40, "dirty": False}
    assert shards.code_id(clean) == "1" * 40
    d1, d2 = (dict(clean, dirty=True, diff_sha256=h * 64) for h in "ab")
    assert len({shards.code_id(clean), shards.code_id(d1), shards.code_id(d2)}) == 3
    assert shards.code_id(d1) == shards.code_id(dict(d1))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--devices", "0,1"], "measure speed"),  # CPU runs in parallel would measure each other
        (["--devices", "0,0"], "distinct CUDA device indices"),
        (["--devices", "cuda:0"], "distinct CUDA device indices"),
        (["--address", "auto"], "give it with --executor ray"),
        (["--executor", "ray", "--devices", "0"], "--devices is for one machine"),
        (["--shard", "3/3"], "i/N with 0 <= i < N"),
    ],
)
def test_bad_scale_out_flags_fail_before_any_work(tmp_path, capsys, argv, message):
    code = cli.main(["run", "--suite", "smoke", "--device", "cpu", "--out", str(tmp_path), *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "smoke").exists()  # no folder, no run
