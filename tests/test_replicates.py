"""Replicates: suite expansion, replicate-level timing verdicts (run-level drift vs a real shift),
power (MDE, replicates needed), seeds, non-inferiority, the mismatch guard and the ABBA order."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from _resultsets import finetune_run, make_set, real_finetune, real_infer, replicated
from scipy import stats as sps

from effbench import cli, runspec
from effbench.cli.main import rewrite_allow_mismatch
from effbench.read import compare, results, runlogs, stats, tradeoff
from effbench.render import compare_format
from effbench.run import ab, suites


# -- statistics -------------------------------------------------------------------------------
def _drifting(n, seed, shift=1.0, drift=0.03, step=0.02, k=98):
    """n replicate medians of k per-step times: each replicate drifts by `drift`, steps by `step`."""
    rng = np.random.default_rng(seed)
    return [float(np.median(shift * rng.lognormal(0, drift) * rng.lognormal(0, step, k))) for _ in range(n)]


def test_run_level_drift_is_same_at_replicate_level_but_flagged_by_pooled_samples():
    same = sum(stats.replicate_timing(_drifting(3, s), _drifting(3, s + 1000)).direction == 0 for s in range(100))
    assert same >= 95
    # the old rule (samples of one run as replicates) calls much of this drift a difference
    rng = np.random.default_rng(0)
    flagged = sum(
        stats.timing(
            rng.lognormal(0, 0.03) * rng.lognormal(0, 0.02, 98),
            rng.lognormal(0, 0.03) * rng.lognormal(0, 0.02, 98),
            min_effect=0.0,
        ).direction
        != 0
        for _ in range(50)
    )
    assert flagged > 25


def test_true_10pct_shift_with_enough_replicates_is_found_with_its_size():
    found = 0
    for s in range(50):
        o = stats.replicate_timing(_drifting(6, s), _drifting(6, s + 1000, shift=1.1))
        found += o.direction == 1
        assert o.lo < o.change < o.hi
    assert found >= 45


def test_mde_is_the_change_found_with_80pct_power():
    sd, n = 0.03, 5
    m = stats.mde(sd, n, n)
    rng = np.random.default_rng(0)
    hits = np.mean(
        [sps.ttest_ind(rng.normal(np.log1p(m), sd, n), rng.normal(0, sd, n)).pvalue < 0.05 for _ in range(4000)]
    )
    assert hits == pytest.approx(0.8, abs=0.03)  # Monte Carlo of the test at the stated MDE
    assert stats.mde(sd, 10, 10) < m < stats.mde(sd, 3, 3)  # more replicates, smaller MDE
    assert stats.replicates_needed(sd, m) == n  # the inverse question gives back n
    assert stats.mde(sd, 1, 5) is None and stats.mde(0.0, 3, 3) == 0.0


def test_one_replicate_is_info_never_a_verdict():
    base = make_set([real_infer()])
    head = make_set([real_infer(dec=13.0)])  # half the speed, one replicate a side
    res = compare.compare(base, head)
    rows = [r for r in res["rows"] if r["kind"] == "timing"]
    assert rows and all(r["verdict"] == "info" and r["p"] is None for r in rows)
    assert all(r["lo"] is not None for r in rows if r["metric"].startswith("decode_tokens_per_s"))  # within-run CI kept
    assert "not tested" in res["headline"] and compare.exit_status(res) == 0


def test_replicated_sets_from_real_shapes():
    base = make_set(replicated(real_finetune(), 5, 1) + replicated(real_infer(), 5, 2))
    aa = make_set(replicated(real_finetune(), 5, 3) + replicated(real_infer(), 5, 4))
    slow = make_set(replicated(real_finetune(), 5, 5, shift=1.1) + replicated(real_infer(), 5, 6, shift=1.1))
    res = compare.compare(base, aa)
    timing = [r for r in res["rows"] if r["kind"] == "timing"]
    # A/A at 3% drift, 5 replicates: no change shown; equivalence within 5% shown where the interval is narrow
    assert (
        timing
        and {r["verdict"] for r in timing} <= {"same", "inconclusive"}
        and "same" in {r["verdict"] for r in timing}
    )
    assert compare.exit_status(res) == (3 if res["counts"]["inconclusive"] else 0)
    assert all(r["mde"] is not None and r["replicates"] == [5, 5] for r in timing)
    assert res["power"]["replicates_needed"] >= 2 and "replicates a side" in compare.power_line(res)
    res = compare.compare(base, slow)
    v = {r["metric"]: r["verdict"] for r in res["rows"]}
    assert (
        v["train_tokens_per_s"] == "worse"
        and v["decode_tokens_per_s.b8"] == "worse"
        and v["decode_latency_p50_ms.b8"] == "worse"
    )
    assert compare.exit_status(res) == 1


def test_accuracy_over_seeds_counts_seed_variance():
    def seeded(accs):
        runs = []
        for s, a in enumerate(accs):
            items = [1.0] * a + [0.0] * (100 - a)
            r = replicated(finetune_run(items=items), 1, s, seeds=(s,))[0]
            r["id"] = "finetune-full" if s == 0 else f"finetune-full@s{s}r0"
            runs.append(r)
        return runs

    base, head = make_set(seeded([30, 40, 35])), make_set(seeded([37, 28, 41]))
    row = next(r for r in compare.compare(base, head)["rows"] if r["metric"] == "accuracy")
    # +0.3 pts with a seed-to-seed sd of ~5 pts: no change shown, and no equivalence within 1 pt either
    assert "over seeds" in row["method"] and row["verdict"] == "inconclusive" and row["lo"] < -0.01 < 0.01 < row["hi"]
    assert row["n_needed"] > 3  # the seeds a side that would decide it
    assert row["base"] == pytest.approx(0.35) and row["head"] == pytest.approx(106 / 300)


def test_noninferiority_known_answers():
    base = [1.0] * 60 + [0.0] * 40
    assert stats.noninferiority(base, base, 0.01)[1] == 0.0  # identical: not worse by any margin
    worse = [0.0] * 10 + [1.0] * 50 + [0.0] * 40  # 10 points lost
    d, p = stats.noninferiority(base, worse, 0.01)
    assert d == pytest.approx(-0.1) and p > 0.5
    d, p = stats.noninferiority(base, worse, 0.2)
    assert p < 0.01  # a 20-point margin holds


def test_tradeoff_line_per_technique():
    probe = [1.0, 0.0, 0.0, 0.0] * 50
    rs = make_set(
        replicated(real_infer(probe=probe), 3, 1)
        + replicated(real_infer("infer-int8", [{"name": "int8", "params": {}}], dec=13.0, probe=probe), 3, 2)
    )
    (line,) = tradeoff.lines(rs, 0.01)
    assert re.match(r"- `infer-int8` vs `infer-baseline`: 0\.[45]\dx decode tokens/s \(b8\)", line)
    assert "not worse than -1 pt" in line and "(3 replicates each)" in line


# -- suites, CLI, mismatch guard, order ---------------------------------------------------------
def test_suite_expands_into_members(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        '[suite]\nname="s"\nmodel="tiny"\nreplicates=2\nthreads=1\n'
        '[[run]]\nid="a"\nscenario="infer"\n[[run]]\nid="b"\nscenario="finetune"\nseeds=[3,4]\nreplicates=1\n'
    )
    s = suites.load_suite(str(p))
    ids = [(m.id, m.seed, m.replicate, m.timing_only, m.threads) for m in s.members()]
    # in rounds: every run's first member, then every run's second, so drift spreads over each run's replicates
    assert ids == [("a", 0, 0, False, 1), ("b", 3, 0, False, 1), ("a@s0r1", 0, 1, True, 1), ("b@s4r0", 4, 0, False, 1)]
    assert len({m.match_key() for m in s.members()}) == 2  # one group per suite run
    s = suites.load_suite(str(p), {"replicates": 3, "seeds": [7]})
    assert [(m.id, m.seed) for m in s.members(["b"])] == [("b", 7), ("b@s7r1", 7), ("b@s7r2", 7)]
    for bad in ("replicates=0", "seeds=[]", "threads=-1", "noninferiority_margin=2"):
        p.write_text(f'[suite]\nname="s"\nmodel="tiny"\n{bad}\n[[run]]\nid="a"\nscenario="infer"\n')
        with pytest.raises(runspec.ConfigError, match=bad.split("=")[0]):
            suites.load_suite(str(p))
    assert cli.main(["run", "--suite", "smoke", "--seeds", "0,x"]) == 2
    assert cli.main(["run", "--suite", "smoke", "--replicates", "0"]) == 2


def test_thread_mismatch_is_refused_unless_allowed_by_kind():
    base = make_set(replicated(real_infer(), 2, 1))
    head_runs = replicated(real_infer(), 2, 2)
    for r in head_runs:
        r["spec"]["threads"] = 1
    head = make_set(head_runs)
    with pytest.raises(compare.MismatchError, match="--allow-mismatch threads"):
        compare.compare(base, head)
    assert compare.compare(base, head, compare.Options(allow_mismatch=frozenset({"threads"})))["warnings"]
    head["runs"][0]["model"]["weights_sha256"] = "9" * 64  # weights are still checked
    with pytest.raises(compare.MismatchError, match="weights"):
        compare.compare(base, head, compare.Options(allow_mismatch=frozenset({"threads"})))
    assert rewrite_allow_mismatch(["compare", "--allow-mismatch", "a", "b"]) == [
        "compare",
        "--allow-mismatch=all",
        "a",
        "b",
    ]
    assert (
        rewrite_allow_mismatch(["ab", "x", "y", "--allow-mismatch", "threads", "cores"])[-1]
        == "--allow-mismatch=threads,cores"
    )


def test_abba_order_and_ab_input_errors(tmp_path):
    assert ab.order(4) == [("base", "head"), ("head", "base"), ("base", "head"), ("head", "base")]
    assert ab.parse_sets(["head:threads=1"]) == {"base": {}, "head": {"threads": 1}}
    for bad in (["left:threads=1"], ["head:colour=1"], ["head:threads=x"]):
        with pytest.raises(runspec.ConfigError):
            ab.parse_sets(bad)
    with pytest.raises(runspec.ConfigError, match="neither an existing checkout"):
        ab.resolve(ab.Side("base", "no-such-ref-xyz"))
    with pytest.raises(runspec.ConfigError, match=".venv"):
        ab.resolve(ab.Side("base", str(tmp_path)))


# -- older result sets ---------------------------------------------------------------------------
COMMITTED = sorted((Path(__file__).resolve().parent.parent / "results").glob("*/*/results.json"))


def _fresh_like(rs: dict) -> dict:
    """A version-2 set shaped like a fresh run of the same suite: 3 replicates per run, train_wall_s
    with step times under step_s instead of samples (as the current fine-tuning code records)."""
    runs = []
    for r in rs["runs"]:
        r = copy.deepcopy(r)
        r["schema"] = results.RUN_SCHEMA
        tw = r["metrics"].get("train_wall_s")
        if tw and "samples" in tw:
            tw["step_s"] = tw.pop("samples")
        runs += replicated(r, 3, 0, drift_cv=0.01) if r["status"] == "ok" else [r]
    fresh = {**copy.deepcopy({k: v for k, v in rs.items() if k != "runs"}), "schema": results.SET_SCHEMA, "runs": runs}
    return results.validate_set(fresh, "fresh")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.parent.name)
def test_committed_result_sets_compare_with_fresh_ones(path, tmp_path, capsys):
    old = results.load(path)
    if old["schema"] != "effbench.resultset/1":  # a committed version-2 set: it compares with itself, all same
        assert old["schema"] in ("effbench.resultset/2", results.SET_SCHEMA)
        res = compare.compare(old, results.load(path))
        assert res["rows"] and not [r for r in res["rows"] if r["verdict"] in ("worse", "better", "missing")]
        assert "same result set" in res["headline"]
        compare_format.markdown(res)
        assert cli.main(["compare", str(path), str(path)]) in (0, 3)  # 3: timing intervals wider than the margin
        return
    fresh = _fresh_like(old)
    for base, head in ((old, fresh), (fresh, old)):
        res = compare.compare(base, head)
        timing = [r for r in res["rows"] if r["kind"] == "timing"]
        assert timing and all(r["verdict"] == "info" for r in timing)  # 1 replicate on the old side: not tested
        assert any(r["metric"] == "train_wall_s" for r in timing)
        compare_format.markdown(res)
    smoke = make_set([finetune_run(), real_infer()])  # a smoke-shaped fresh set: nothing matches, said so
    with pytest.raises(compare.NothingMatched, match="no run matched"):
        compare.compare(old, smoke, compare.Options(allow_mismatch=True))
    results.write_json_atomic(tmp_path / "f" / "results.json", fresh)
    assert cli.main(["compare", "--allow-mismatch", str(path), str(tmp_path / "f")]) == 0
    assert "informational" in capsys.readouterr().out


def test_unknown_schema_is_refused_naming_both_versions(tmp_path):
    rs = make_set([finetune_run()])
    rs["schema"] = "effbench.resultset/9"
    results.write_json_atomic(tmp_path / "results.json", rs)
    with pytest.raises(results.ResultError, match=r"resultset/9.*resultset/4.*resultset/3.*resultset/2"):
        results.load(tmp_path)


def test_ab_interleaves_sides_with_their_own_interpreter_and_settings(tmp_path):
    """Two 'checkouts' whose .venv/bin/python runs this interpreter; head at 1 thread and wrapped."""
    import sys

    for side in ("b", "h"):
        py = tmp_path / side / ".venv" / "bin" / "python"
        py.parent.mkdir(parents=True)
        py.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        py.chmod(0o755)
    suite = tmp_path / "t.toml"
    suite.write_text(
        '[suite]\nname="t"\nmodel="tiny"\nreplicates=2\n[defaults.infer]\nbatch_sizes=[1]\nprompt_len=8\n'
        'decode_tokens=2\nrepeats=2\nquality=false\n[[run]]\nid="infer-baseline"\nscenario="infer"\n'
    )
    out = tmp_path / "out"
    args = [
        "ab",
        str(tmp_path / "b"),
        str(tmp_path / "h"),
        "--suite",
        str(suite),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--set",
        "head:threads=1",
        "--wrap",
        "head=sh -c 'echo wrapped >&2; exec \"$@\"' sh",
    ]
    assert cli.main(args) == 2  # the thread difference is refused without --allow-mismatch threads
    assert cli.main(args + ["--allow-mismatch", "threads"]) in (0, 1, 3)
    base, head = results.load(out / "base"), results.load(out / "head")
    assert (
        [r["id"] for r in base["runs"]] == [r["id"] for r in head["runs"]] == ["infer-baseline", "infer-baseline@s0r1"]
    )
    assert all(r["status"] == "ok" for r in base["runs"] + head["runs"])
    assert [r["env"]["torch_threads"] for r in head["runs"]] == [1, 1] and head["runs"][0]["spec"]["threads"] == 1
    assert base["runs"][0]["spec"]["threads"] is None
    assert "wrapped" in runlogs.read(out / "head" / "runs", "infer-baseline")
    assert "effbench ab" in base["ceiling_missing"] and "ceiling" not in head  # the roofline says why it is missing
    assert "wrapped" not in runlogs.read(out / "base" / "runs", "infer-baseline")
    # ABBA: base r0 before head r0, head r1 before base r1 (result files' modification times)
    t = {
        (s, i): (out / s / "runs" / f"{i}.result.json").stat().st_mtime_ns
        for s in ("base", "head")
        for i in ("infer-baseline", "infer-baseline@s0r1")
    }
    assert (
        t["base", "infer-baseline"]
        < t["head", "infer-baseline"]
        < t["head", "infer-baseline@s0r1"]
        < t["base", "infer-baseline@s0r1"]
    )
    md = (out / "compare.md").read_text()
    assert "CPU threads differ" in md and "decode_tokens_per_s.b1" in md


def test_fixture_shapes_are_the_committed_ones():
    from _resultsets import REAL_SHAPE

    rs = results.load(next(p for p in COMMITTED if p.parent.parent.name == "cpu"))
    runs = {r["id"]: r for r in rs["runs"]}
    for name, (k, unit, hib) in REAL_SHAPE.items():
        m = runs["finetune-full" if name.startswith("train") else "infer-baseline"]["metrics"][name]
        assert (len(m["samples"]), m["unit"], m["higher_is_better"]) == (k, unit, hib), name


def test_members_come_in_rounds_that_spread_each_runs_replicates_over_the_suite():
    s = suites.load_suite("cpu-full")
    ms = s.members()
    pos: dict[str, list[int]] = {}
    for i, m in enumerate(ms):
        pos.setdefault(m.group, []).append(i)
    assert [g for g in pos] == [r.id for r in s.runs]  # first round in suite order
    # a run's k-th member comes after every run's (k-1)-th member: no run's replicates sit side by side
    for k in range(1, max(len(v) for v in pos.values())):
        prev_round = max(v[k - 1] for v in pos.values() if len(v) > k - 1)
        assert all(v[k] > prev_round for v in pos.values() if len(v) > k)
    assert sorted(m.id for m in ms) == sorted({m.id for m in ms})  # every member once
