"""Change points over a suite's history (effbench.read.history): a 10% step at a known commit is
found at that commit and nowhere else; 20 A/A sets (one distribution) give none on any line; a
line never joins sets of another device, model or CPU thread count."""

from __future__ import annotations

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
