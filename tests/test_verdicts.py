"""The four verdicts of compare on hand-made result sets (worse, better, same = equivalence shown,
inconclusive = neither), intervals that agree with their (Holm-adjusted) p-values, the exit codes
(0 pass, 1 regression, 2 bad input or nothing matched, 3 inconclusive), --expect-same, and both
forms of --allow-mismatch."""

from __future__ import annotations

import numpy as np
import pytest
from _resultsets import REAL_SHAPE, finetune_run, infer_run, make_set, real_finetune, real_infer, replicated, write

from effbench import cli
from effbench.cli import compare as cli_compare
from effbench.cli.main import rewrite_allow_mismatch
from effbench.read import compare, stats
from effbench.render import compare_format


def _timing_rows(res):
    """The tested timing rows whose replicates vary (replicated() moves the REAL_SHAPE metrics)."""
    return {r["metric"]: r for r in res["rows"] if r["metric"] in REAL_SHAPE and r["p"] is not None}


def _sets(n, drift, shift=1.0, seed=0):
    base = make_set(replicated(real_infer(), n, seed, drift_cv=drift, step_cv=0.002))
    head = make_set(replicated(real_infer(), n, seed + 100, drift_cv=drift, step_cv=0.002, shift=shift))
    return base, head


# -- the four verdicts ---------------------------------------------------------------------------
def test_judge_reads_the_verdict_from_the_interval_and_margin():
    assert stats.judge(0.01, 0.03, 0.05) == 1  # excludes zero: a change, however small
    assert stats.judge(-0.3, -0.01, 0.05) == -1
    assert stats.judge(-0.04, 0.04, 0.05) == 0  # inside the margin: equivalence shown
    assert stats.judge(-0.04, 0.2, 0.05) is None  # neither: inconclusive
    assert stats.judge(0.0, 0.0, 0.0) == 0


def test_a_large_slowdown_is_worse_and_a_speedup_better():
    res = compare.compare(*_sets(5, 0.01, shift=1.3))
    rows = _timing_rows(res)
    assert (
        rows["decode_tokens_per_s.b1"]["verdict"] == "worse" and rows["decode_latency_p50_ms.b1"]["verdict"] == "worse"
    )
    assert compare.exit_status(res) == compare.EXIT_REGRESSION
    res = compare.compare(*_sets(5, 0.01, shift=1 / 1.3))
    assert {r["verdict"] for r in _timing_rows(res).values()} == {"better"} and compare.exit_status(res) == 0


def test_quiet_identical_code_is_same_with_the_interval_inside_the_margin():
    res = compare.compare(*_sets(5, 0.005))
    rows = _timing_rows(res)
    assert rows and {r["verdict"] for r in rows.values()} == {"same"}
    assert all(-0.05 <= r["lo"] <= 0 <= r["hi"] <= 0.05 for r in rows.values())
    assert res["counts"]["inconclusive"] == 0 and compare.exit_status(res) == compare.EXIT_PASS
    assert res["headline"].startswith("0 worse, 0 better, ") and " same, 0 inconclusive" in res["headline"]


def test_noisy_few_replicates_are_inconclusive_not_same_and_say_what_would_decide():
    base, head = _sets(3, 0.10)
    res = compare.compare(base, head)
    rows = _timing_rows(res)
    assert rows and {r["verdict"] for r in rows.values()} == {"inconclusive"}
    assert all(r["lo"] < 0 < r["hi"] and max(-r["lo"], r["hi"]) > 0.05 for r in rows.values())
    assert all(r["n_needed"] > 3 for r in rows.values())  # power figures: more replicates would decide
    assert f"{len(rows)} inconclusive" in res["headline"] and compare.exit_status(res) == compare.EXIT_INCONCLUSIVE
    md = compare_format.markdown(res)
    for r in rows.values():
        assert f"| {r['n_needed']} replicates a side (now 3/3) |" in md
    # a kind the gate does not judge (--fail-on KIND=never) does not make the exit inconclusive
    lax = compare.Options(fail_on={**compare.DEFAULT_FAIL_ON, "timing": float("inf")})
    assert compare.exit_status(compare.compare(base, head, lax)) == compare.EXIT_PASS


def test_a_small_change_shown_by_the_interval_is_never_same():
    res = compare.compare(*_sets(6, 0.002, shift=1.02))  # 2% slower, very quiet: significant, below 5%
    rows = _timing_rows(res)
    for r in rows.values():
        assert r["hi"] < 0 or r["lo"] > 0
        assert r["verdict"] == "worse" and not r["fail"]  # below --fail-on timing=0.05: no regression
    assert compare.exit_status(res) == compare.EXIT_PASS


def _paired(lost: int, gained: int, n: int = 200):
    base_items = [1.0] * 100 + [0.0] * (n - 100)
    head_items = list(base_items)
    for i in range(lost):
        head_items[i] = 0.0
    for i in range(gained):
        head_items[100 + i] = 1.0
    base = make_set([finetune_run(items=base_items)])
    head = make_set([finetune_run(items=head_items)])
    return next(r for r in compare.compare(base, head)["rows"] if r["metric"] == "accuracy")


@pytest.mark.parametrize(
    "lost,gained,verdict",
    [(0, 0, "same"), (1, 1, "same"), (2, 2, "inconclusive"), (20, 2, "worse"), (1, 12, "better")],
)
def test_accuracy_verdicts_on_paired_items(lost, gained, verdict):
    row = _paired(lost, gained)
    assert row["verdict"] == verdict and row["margin"] == 0.01  # the set's noninferiority_margin
    assert (row["p"] < 0.05) == (row["lo"] > 0 or row["hi"] < 0)  # McNemar and its exact interval agree
    if verdict == "inconclusive":
        assert row["items_needed"] > 200


# -- intervals agree with the p-values -----------------------------------------------------------
def test_holm_adjusted_intervals_agree_with_adjusted_p_on_every_row():
    """Many timing rows, some shifted: wherever raw p < alpha but Holm's adjusted p is not, the
    unadjusted interval excluded zero (the `+8.1% [+0.2%, +16.7%] p=0.804 same` of before); the
    interval shown now includes zero and the row is not `same` unless inside the margin."""
    seen = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        shifts = 1 + rng.uniform(-0.12, 0.12)
        base, head = _sets(3, 0.04, shift=shifts, seed=seed)
        res = compare.compare(base, head)
        for r in _timing_rows(res).values():
            excludes = r["lo"] > 0 or r["hi"] < 0
            assert excludes == (r["p"] < 0.05), r
            assert not (excludes and r["verdict"] == "same"), r
            m = sum(x["kind"] == "timing" and x["p"] is not None for x in res["rows"])  # Holm's family
            assert 0.95 - 1e-12 <= r["ci_level"] <= 1 - 0.05 / m + 1e-12  # between plain and Bonferroni
            if r["p_raw"] < 0.05 <= r["p"]:
                seen += 1
                raw = stats.replicate_timing(
                    [run["metrics"][r["metric"]]["value"] for run in base["runs"]],
                    [run["metrics"][r["metric"]]["value"] for run in head["runs"]],
                )
                assert raw.lo > 0 or raw.hi < 0  # the unadjusted interval excluded zero
                assert r["lo"] <= 0 <= r["hi"]  # the adjusted one does not
                assert r["verdict"] == ("same" if -0.05 <= r["lo"] and r["hi"] <= 0.05 else "inconclusive")
    assert seen  # the case the adjustment is for did occur


def test_one_timing_row_is_not_adjusted_and_its_ci_is_welchs():
    from scipy import stats as sps

    b, h = [1.0, 1.1, 0.9], [1.2, 1.3, 1.25]
    o = stats.replicate_timing(b, h)
    ci = sps.ttest_ind(np.log(h), np.log(b), equal_var=False).confidence_interval(0.95)
    assert np.log1p(o.lo) == pytest.approx(ci.low) and np.log1p(o.hi) == pytest.approx(ci.high)
    assert o.p == pytest.approx(sps.ttest_ind(np.log(h), np.log(b), equal_var=False).pvalue)


# -- nothing matched, the same set twice ---------------------------------------------------------
def test_nothing_matched_exits_2_with_a_message(tmp_path, capsys):
    base = make_set([finetune_run()])
    head = make_set([infer_run()])
    with pytest.raises(compare.NothingMatched, match="no run matched"):
        compare.compare(base, head)
    pb, ph = write(base, tmp_path / "b"), write(head, tmp_path / "h")
    assert cli.main(["compare", pb, ph]) == 2
    err = capsys.readouterr().err
    assert "nothing to compare: no run matched" in err and "finetune-full" in err and "infer-baseline" in err


def test_too_few_matched_is_refused_unless_the_share_is_lowered(tmp_path, capsys):
    others = [infer_run(f"infer-{k}", techniques=[{"name": k, "params": {}}]) for k in ("nf4", "int8", "fp4")]
    base = make_set([finetune_run()] + others)
    head = make_set(
        [finetune_run()]
        + [infer_run(f"infer-{k}", [{"name": k, "params": {}}]) for k in ("wanda", "fused", "magnitude")]
    )
    pb, ph = write(base, tmp_path / "b"), write(head, tmp_path / "h")
    assert cli.main(["compare", pb, ph]) == 0  # compare: partial overlaps are a use (a sweep suite against cpu-full)
    assert "3 run(s) only in base, 3 run(s) only in head" in capsys.readouterr().out
    assert cli.main(["compare", pb, ph, "--min-matched", "0.5"]) == 2
    assert "only 1 run(s) matched, under the 50% of the 4 runs" in capsys.readouterr().err
    assert cli.main(["compare", pb, ph, "--min-matched", "0.25"]) == 0
    with pytest.raises(compare.NothingMatched):  # ab and the gate's pr_report: every run must match
        compare.compare(base, head, compare.Options(min_matched=1.0))


def test_a_set_compared_with_itself_says_so(tmp_path, capsys):
    rs = make_set(replicated(finetune_run(), 3, seed=1))
    p = write(rs, tmp_path / "s")
    assert cli.main(["compare", p, p]) in (0, 3)
    assert "BASE and HEAD are the same result set" in capsys.readouterr().out.splitlines()[0]
    other = make_set(replicated(finetune_run(), 3, seed=2))
    assert "same result set" not in compare.compare(rs, other)["headline"]


# -- --expect-same -------------------------------------------------------------------------------
def test_expect_same_passes_only_when_every_judged_row_is_same(capsys):
    assert cli_compare.expect_same(compare.compare(*_sets(5, 0.005))) == 0
    assert cli_compare.expect_same(compare.compare(*_sets(3, 0.10))) == compare.EXIT_INCONCLUSIVE
    assert "FAIL" in capsys.readouterr().out
    assert cli_compare.expect_same(compare.compare(*_sets(5, 0.01, shift=1.3))) == compare.EXIT_REGRESSION


def test_expect_same_never_passes_on_one_replicate_a_side(capsys):
    """One replicate a side leaves every timing untested (`info`): the bytes and accuracies alone are
    `same`, and the A/A check must still not pass."""
    base, head = _sets(1, 0.005)
    res = compare.compare(base, head)
    timing = [r for r in res["rows"] if r["kind"] == "timing"]
    assert timing and all(r["verdict"] == "info" for r in timing)
    assert not [r for r in res["rows"] if r["verdict"] not in ("same", "info")]
    assert cli_compare.expect_same(res) == compare.EXIT_INCONCLUSIVE
    assert "timings (untested: one replicate a side)" in capsys.readouterr().out


# -- --allow-mismatch in both forms --------------------------------------------------------------
def _mismatched(tmp_path):
    base = make_set([real_finetune()])
    run = real_finetune()
    run["model"]["weights_sha256"] = "9" * 64
    head = make_set([run], device_name="Other CPU")
    return write(base, tmp_path / "b"), write(head, tmp_path / "h")


@pytest.mark.parametrize(
    "flags",
    [["device,weights"], ["device", "weights"], ["weights,device", "threads"], []],
    ids=["comma", "words", "mixed", "bare"],
)
def test_allow_mismatch_accepts_commas_words_and_nothing(flags, tmp_path, capsys):
    pb, ph = _mismatched(tmp_path)
    for argv in (["compare", "--allow-mismatch", *flags, pb, ph], ["compare", pb, ph, "--allow-mismatch", *flags]):
        assert cli.main(argv) == 0, argv
        out = capsys.readouterr().out
        assert "device differs" in out and "model weights" in out
    assert cli.main(["compare", pb, ph, "--allow-mismatch", "device"]) == 2  # weights still refused
    assert "--allow-mismatch weights" in capsys.readouterr().err


def test_allow_mismatch_rewrite_and_unknown_kinds(capsys):
    assert rewrite_allow_mismatch(["compare", "--allow-mismatch", "device,weights", "a", "b"]) == [
        "compare",
        "--allow-mismatch=device,weights",
        "a",
        "b",
    ]
    assert rewrite_allow_mismatch(["compare", "a", "b", "--allow-mismatch", "device", "weights"])[-1] == (
        "--allow-mismatch=device,weights"
    )
    assert rewrite_allow_mismatch(["compare", "--allow-mismatch", "a/b", "c"])[1] == "--allow-mismatch=all"
    assert cli.main(["compare", "x", "y", "--allow-mismatch", "device,wieghts"]) == 2  # named, not a path
    assert "wieghts" in capsys.readouterr().err


# -- the PR comment ------------------------------------------------------------------------------
def test_pr_report_exits_3_and_says_what_would_decide_each_inconclusive_row(tmp_path):
    from effbench.render import pr_report

    base, head = _sets(3, 0.10)
    write(base, tmp_path / "base")
    write(head, tmp_path / "head")
    comment = tmp_path / "comment.md"
    assert pr_report.main([str(tmp_path / "base"), str(tmp_path / "head"), "--comment", str(comment)]) == 3
    text = comment.read_text()
    rows = _timing_rows(compare.compare(base, head))
    assert " inconclusive" in text.splitlines()[1] and "needed to decide" in text
    assert all(f"| {r['n_needed']} replicates a side (now 3/3) |" in text for r in rows.values())
    # a head whose runs match none of the base's (other specs) leaves nothing to judge: bad input, not a pass
    write(make_set([infer_run("infer-other", [{"name": "nf4", "params": {}}])]), tmp_path / "other")
    assert pr_report.main([str(tmp_path / "base"), str(tmp_path / "other"), "--comment", str(comment)]) == 2
    assert "nothing to compare" in comment.read_text()
