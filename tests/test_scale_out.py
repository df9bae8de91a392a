"""The smoke suite through a local Ray instance and through two shards joined by `merge` equals the
serial run (conftest's smoke_serial) in every deterministic figure: status, spec, model and data
hashes, per-item scores, losses, accuracies, perplexity, KL divergence, sizes and counts. Timings
and resident memory are left out: they differ from any run to the next.

Time on top of the serial run the end-to-end tests share, on the shared 2-core machine: the Ray
test 3.8 min under a load average of ~6 (the serial run 5.1 min there), the shards 2.0 min under a
load of 2 to 4 (the serial run 2.7 min there).
"""

from __future__ import annotations

import pytest

from effbench import cli
from effbench.read import results, runlogs

pytestmark = pytest.mark.slow
VARIES = ("s", "ms", "tokens/s")  # units of timings


def deterministic(run: dict) -> dict:
    """The figures of a run that the same code, spec and thread count reproduce exactly."""
    metrics = {}
    for name, m in run["metrics"].items():
        if m.get("unit") in VARIES or "rss" in name:
            metrics[name] = "varies"
        else:
            metrics[name] = {k: v for k, v in m.items() if k in ("value", "samples", "stderr", "n", "unit", "reason")}
    curves = {
        k: ([{f: v for f, v in p.items() if f != "train_wall_s"} for p in c] if k == "accuracy_vs_time" else c)
        for k, c in run["curves"].items()
    }
    return {
        "id": run["id"],
        "status": run["status"],
        "reason": run["reason"],
        "error": run["error"],
        "spec": run["spec"],
        "model": run["model"],
        "data": run["data"],
        "items": run["items"],
        "curves": curves,
        "metrics": metrics,
        "threads": run["env"].get("torch_threads"),
    }


def assert_same_figures(got: dict, want: dict) -> None:
    assert [r["id"] for r in got["runs"]] == [r["id"] for r in want["runs"]]
    for a, b in zip(got["runs"], want["runs"]):
        assert a["status"] == "ok", (a["id"], a.get("error"))
        assert deterministic(a) == deterministic(b), a["id"]
    assert got["members"] == want["members"] and got["plan"] == want["plan"] and got["suite"] == want["suite"]


def test_ray_reproduces_the_serial_smoke_set(smoke_serial, tmp_path):
    code, serial, _ = smoke_serial
    assert code == 0
    assert cli.main(["run", "--suite", "smoke", "--device", "cpu", "--executor", "ray", "--out", str(tmp_path)]) == 0
    folder = next((tmp_path / "smoke").iterdir())
    got = results.load(folder)
    assert_same_figures(got, serial)
    assert got["executor"] == {"kind": "ray", "address": "local instance"}
    for r in got["runs"]:
        assert r["executor"]["kind"] == "ray" and r["executor"]["node_id"]
        assert runlogs.path(folder / "runs", r["id"]).name == f"{r['id']}.log.gz"  # compressed on the driver
        assert runlogs.read(folder / "runs", r["id"])  # the worker's log came back to the driver


def test_two_shards_merged_reproduce_the_serial_smoke_set(smoke_serial, tmp_path):
    _, serial, _ = smoke_serial
    for i in range(2):
        assert (
            cli.main(["run", "--suite", "smoke", "--device", "cpu", "--shard", f"{i}/2", "--out", str(tmp_path)]) == 0
        )
    parts = sorted((tmp_path / "smoke").iterdir())
    sets = [results.load(p) for p in parts]
    assert [s["shard"] for s in sets] == [{"index": 0, "count": 2}, {"index": 1, "count": 2}]
    ids = [r["id"] for s in sets for r in s["runs"]]
    assert sorted(ids) == sorted(serial["members"]) and len(ids) == len(set(ids))  # each run in exactly one shard
    old = runlogs.files(parts[1] / "runs")[0]  # a shard written before logs were compressed
    text = runlogs.read_file(old)
    plain = old.with_name(runlogs.run_id(old) + runlogs.PLAIN)
    plain.write_text(text)
    old.unlink()
    assert cli.main(["merge", str(tmp_path / "merged"), *map(str, parts)]) == 0
    merged = results.load(tmp_path / "merged")
    logs = runlogs.files(tmp_path / "merged" / "runs")
    assert sorted(runlogs.run_id(f) for f in logs) == sorted(ids) and all(f.name.endswith(".gz") for f in logs)
    assert runlogs.read(tmp_path / "merged" / "runs", runlogs.run_id(plain)) == text
    assert_same_figures(merged, serial)
    assert merged["shard"] is None and len(merged["merged_from"]) == 2
    assert cli.main(["merge", str(tmp_path / "again"), str(parts[0]), str(parts[0])]) == 2  # a run twice: refused
