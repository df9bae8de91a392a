"""Change points over a suite's history (effbench.read.history): a 10% step at a known commit is
found at that commit and nowhere else; 20 A/A sets (one distribution) give none on any line; a
line never joins sets of another device, model or CPU thread count."""

from __future__ import annotations

import numpy as np

from effbench.read import history
from tests._sitesets import history as make_history


def _cps(sets):
    return {k: history.change_points([pt["values"] for _, pt in pts]) for k, pts in history.lines(sets).items()}


def test_step_of_ten_percent_is_flagged_at_its_commit():
    sets = make_history(16, step_at=9, step=1.1)
    cps = _cps(sets)
    thr = cps[("finetune-full", "throughput", "Test CPU", f"tiny ({'a' * 8})", "default threads")]
    assert [c["index"] for c in thr] == [9]
    assert sets[9]["git"]["sha"].startswith("09")
    assert -0.12 < thr[0]["change"] < -0.06  # throughput / 1.1: about -9%
    infer = cps[("infer-baseline", "throughput", "Test CPU", f"tiny ({'a' * 8})", "default threads")]
    assert [c["index"] for c in infer] == [9]
    # memory, accuracy and cost per point did not move: no change point on those lines
    assert not any(v for (g, m, *_), v in cps.items() if m != "throughput")


def test_twenty_aa_sets_have_no_change_point():
    cps = _cps(make_history(20))
    assert cps and not any(cps.values())


def test_rule_needs_the_effect_as_well_as_the_p_value():
    tiny = [[100.0, 100.1, 99.9]] * 5 + [[102.0, 102.1, 101.9]] * 5  # clear but 2%: under MIN_EFFECT
    assert history.change_points(tiny) == []
    assert [c["index"] for c in history.change_points(tiny, min_effect=0.01)] == [5]
    assert history.change_points([[1.0]]) == [] and history.change_points([]) == []


def test_lines_keep_devices_and_models_apart():
    sets = make_history(4)
    for rs in sets[2:]:
        rs["env"]["device_name"] = "Other CPU"
        for r in rs["runs"]:
            r["env"]["device_name"] = "Other CPU"
    keys = {k for k in history.lines(sets) if k[:2] == ("finetune-full", "throughput")}
    assert {k[2] for k in keys} == {"Test CPU", "Other CPU"}
    assert all(len(history.lines(sets)[k]) == 2 for k in keys)


def test_lines_keep_thread_counts_apart():
    """A history whose later sets ran on 1 thread (and slower): two lines, neither with a step,
    rather than one line with a change point that is only the thread count."""
    sets = make_history(8, step_at=4, step=1.5)
    for rs in sets[4:]:
        for r in rs["runs"]:
            r["spec"]["threads"] = 1
    got = history.lines(sets)
    keys = sorted(k for k in got if k[:2] == ("finetune-full", "throughput"))
    assert [k[4] for k in keys] == ["1 thread", "default threads"]
    assert [len(got[k]) for k in keys] == [4, 4]
    assert {id(rs) for rs, _ in got[keys[0]]} == {id(rs) for rs in sets[4:]}
    assert not any(history.change_points([pt["values"] for _, pt in got[k]]) for k in keys)
    assert history.threads_label({"threads": 2}) == "2 threads"


def _kernel_records(ours_ms: float) -> list[dict]:
    rec = {"kernel": "rmsnorm", "pass": "fwd", "tokens": 4096, "hidden": 576, "dtype": "bfloat16"}
    return [
        {**rec, "impl": "effbench", "median_ms": ours_ms},
        {**rec, "impl": "eager", "median_ms": 0.030},
        {**rec, "impl": "liger", "median_ms": 0.012},
        {**rec, "impl": "compile", "median_ms": None, "error": "no compiler"},
    ]


def test_kernel_speedups_have_a_history_with_their_step():
    """Sets with kernel records: a line per kernel case and comparator (speed-up = their time /
    ours); a kernel that got 25% slower from set 5 on is a change point there; a comparator that
    was not measured has no line."""
    sets = make_history(10)
    rng = np.random.default_rng(0)
    for i, rs in enumerate(sets):
        rs["kernels"] = _kernel_records(0.010 * (1.25 if i >= 5 else 1.0) * rng.lognormal(0, 0.01))
    got = history.lines(sets)
    eager = got[("kernel rmsnorm fwd bfloat16", "speedup_vs_eager", "Test CPU", "4096 tokens x 576", "")]
    assert len(eager) == 10 and 2.9 < eager[0][1]["value"] < 3.1  # 0.030 / 0.010
    assert ("kernel rmsnorm fwd bfloat16", "speedup_vs_liger", "Test CPU", "4096 tokens x 576", "") in got
    assert not any(k[1] == "speedup_vs_compile" for k in got)
    (cp,) = history.change_points([pt["values"] for _, pt in eager])
    assert cp["index"] == 5 and -0.25 < cp["change"] < -0.15  # speed-up / 1.25: -20%
