"""effbench compare: the statistics against known answers, verdicts/headline/exit status on
hand-built result sets with known differences, the mismatch guard and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _resultsets import finetune_run, infer_run, make_set, replicated, write

from effbench import cli
from effbench.read import compare, stats
from effbench.render import compare_format


def test_timing_aa_same_in_at_least_95_of_100_seeded_trials():
    same = sum(
        stats.timing(*np.random.default_rng(s).lognormal(0, 0.05, (2, 10)), seed=s).direction == 0 for s in range(100)
    )
    assert same >= 95


def test_timing_aa_with_two_or_three_samples_rarely_flags():
    for n in (2, 3):
        same = sum(
            stats.timing(*np.random.default_rng(s).lognormal(0, 0.1, (2, n)), seed=s).direction == 0 for s in range(100)
        )
        assert same >= 90, n  # small-sample test (Welch t on logs) keeps its nominal 5% rate


def test_timing_20pct_shift_with_small_noise_is_detected_with_its_size():
    covered = 0
    for s in range(20):
        rng = np.random.default_rng(s)
        base, head = rng.lognormal(0, 0.02, 10), 1.2 * rng.lognormal(0, 0.02, 10)
        o = stats.timing(base, head, seed=s)
        assert o.direction == 1 and abs(o.change - 0.2) < 0.05  # slower: worse for a time
        covered += o.lo < 0.2 < o.hi
    assert covered >= 16  # a 95% CI (bootstrap, 10 samples: somewhat narrow) holds the true shift


def test_timing_below_min_effect_is_same_even_if_significant():
    base, head = [1.0, 1.001, 0.999, 1.0, 1.0005], [1.03, 1.031, 1.029, 1.03, 1.0305]
    assert stats.timing(base, head).p < 0.05
    assert stats.timing(base, head, min_effect=0.05).direction == 0
    assert stats.timing(base, head, min_effect=0.02).direction == 1


def test_timing_change_follows_the_summary_the_value_is():
    base, head = [5.0, 1.0, 1.0, 1.0], [5.0, 1.2, 1.2, 1.2]  # a sum of step times with a slow first step
    assert stats.statistic_of(8.0, base) == "sum" and stats.statistic_of(1.0, base) == "median"
    assert stats.timing(base, head, statistic="sum").change == pytest.approx(8.6 / 8 - 1)
    assert stats.timing(base, head).change == pytest.approx(0.2)


def test_mcnemar_exact_known_value():
    base = [1] * 40 + [0] * 60
    head = [0] * 10 + [1] * 30 + [0] * 60  # 10 lost, none gained
    p, lost, gained = stats.mcnemar_exact(base, head)
    assert (lost, gained) == (10, 0) and math.isclose(p, 2 * 0.5**10)


def test_paired_test_sees_what_an_unpaired_z_test_misses():
    base = [1.0] * 50 + [0.0] * 50
    head = [0.0] * 8 + [1.0] * 42 + [0.0] * 50  # 8 items lost: -8 points on the same items
    paired = stats.accuracy(base, head)
    unpaired = stats.accuracy_unpaired(
        {"value": 0.5, "stderr": 0.05}, {"value": 0.42, "stderr": np.sqrt(0.42 * 0.58 / 100)}
    )
    assert paired.direction == -1 and paired.p < 0.01 and math.isclose(paired.change, -0.08)
    assert unpaired.direction == 0  # the same change, judged unpaired, is lost in the noise
    assert stats.accuracy(base, base).direction == 0


def test_tolerance_rule():
    assert stats.tolerance(100.0, 100.5, rel_tol=0.01).direction == 0
    assert stats.tolerance(100.0, 102.0, rel_tol=0.01).direction == 1
    assert stats.tolerance(0.0, 0.0).direction == 0


def _pair():
    """Base and head, 4 replicates each, with known differences: train throughput -20% (worse), b8
    decode +20% (better), peak RSS +10% (worse), 8 of 100 eval items lost (worse); else equal."""
    lost = [0.0] * 8 + [1.0] * 42 + [0.0] * 50
    rep = dict(n=4, drift_cv=0.01, step_cv=0.01)
    base = make_set(
        replicated(finetune_run(), seed=1, **rep)
        + replicated(infer_run(), seed=2, **rep)
        + [infer_run("infer-old", techniques=[{"name": "nf4", "params": {}}])]
    )
    head_infer = infer_run()
    head_infer["metrics"]["decode_tokens_per_s.b8"]["value"] *= 1.2
    head = make_set(
        replicated(finetune_run(items=lost, tps=800.0, peak=950 * 2**20, seed=5), seed=3, **rep)
        + replicated(head_infer, seed=4, **rep)
        + [infer_run("infer-new", techniques=[{"name": "int8", "params": {}}])]
    )
    return base, head


def test_known_differences_give_expected_verdicts_headline_and_exit():
    base, head = _pair()
    res = compare.compare(base, head)
    v = {(r["run"], r["metric"]): r["verdict"] for r in res["rows"]}
    assert v[("finetune-full", "train_tokens_per_s")] == "worse"
    assert v[("finetune-full", "accuracy")] == "worse"
    assert v[("finetune-full", "peak_rss_bytes")] == "worse"
    assert v[("infer-baseline", "decode_tokens_per_s.b8")] == "better"
    assert v[("finetune-full", "steps")] == "info" and v[("infer-baseline", "decode_tokens_per_s.b1")] == "same"
    assert ("finetune-full", "mfu") not in v  # null on both sides: nothing to say
    judged = [r for r in res["rows"] if r["verdict"] in ("worse", "better")]
    assert len(judged) == 4
    assert res["headline"].startswith(f"3 worse, 1 better, {res['counts']['same']} same")
    assert res["only_base"] == ["infer-old"] and res["only_head"] == ["infer-new"]
    fin = [r for r in res["rows"] if r["scenario"] == "finetune"]
    assert [r["verdict"] for r in fin[:3]] == ["worse"] * 3 and fin[0]["metric"] == "train_tokens_per_s"  # -20% first
    assert compare.exit_status(res) == 1
    lax = compare.Options(fail_on={"timing": 0.5, "accuracy": 0.5, "bytes": 0.5, "value": 0.5, "status": 0})
    assert compare.exit_status(compare.compare(base, head, lax)) == 0
    md = compare_format.markdown(res)
    assert md.splitlines()[0].startswith("**effbench compare: 3 worse, 1 better")
    assert md.index("#### finetune") < md.index("#### infer")


def test_aa_on_identical_and_resampled_sets_shows_no_change():
    a = make_set(replicated(finetune_run(), 3, seed=1) + replicated(infer_run(), 3, seed=2))
    b = make_set(replicated(finetune_run(), 3, seed=11) + replicated(infer_run(), 3, seed=12))  # new replicates
    for res in (compare.compare(a, a), compare.compare(a, b)):
        # 3% run-to-run drift and 3 replicates: no change shown, and equivalence within 5% not always either
        assert res["counts"]["worse"] == res["counts"]["better"] == 0
        assert compare.exit_status(res) == (3 if res["counts"]["inconclusive"] else 0)
    quiet = [make_set(replicated(infer_run(), 5, seed=s, drift_cv=0.003)) for s in (1, 2)]
    res = compare.compare(*quiet)
    assert res["counts"]["inconclusive"] == 0 and res["counts"]["same"] and compare.exit_status(res) == 0


def test_cpu_peak_rss_has_a_looser_tolerance_than_exact_byte_counts():
    base, head = make_set([finetune_run()]), make_set([finetune_run(peak=int(1.04 * 800 * 2**20))])
    head["runs"][0]["metrics"]["weight_bytes"]["value"] *= 1.04
    v = {r["metric"]: r["verdict"] for r in compare.compare(base, head)["rows"]}
    assert v["peak_rss_bytes"] == "same" and v["weight_bytes"] == "worse"


def test_failed_run_in_head_is_a_regression():
    base = make_set([finetune_run()])
    bad = finetune_run()
    bad.update(status="oom", error="CUDA out of memory")
    res = compare.compare(base, make_set([bad]))
    assert [(r["metric"], r["verdict"], r["fail"]) for r in res["rows"]] == [("(status)", "worse", True)]


@pytest.mark.parametrize("what", ["weights", "data", "device"])
def test_mismatch_guard(what, tmp_path, capsys):
    base = make_set([finetune_run()])
    run = finetune_run()
    if what == "weights":
        run["model"]["weights_sha256"] = "9" * 64
    if what == "data":
        run["data"]["eval_sha256"] = "9" * 64
    head = make_set([run], device_name="Other GPU" if what == "device" else "Test CPU")
    with pytest.raises(compare.MismatchError, match="--allow-mismatch"):
        compare.compare(base, head)
    res = compare.compare(base, head, compare.Options(allow_mismatch=True))
    assert res["warnings"] and "WARNING" in compare_format.markdown(res)
    pb, ph = write(base, tmp_path / "b"), write(head, tmp_path / "h")
    assert cli.main(["compare", pb, ph]) == 2
    assert "refusing to compare" in capsys.readouterr().err
    assert cli.main(["compare", pb, ph, "--allow-mismatch"]) == 0
    assert "WARNING" in capsys.readouterr().out


def test_pruned_subset_hash_is_not_a_mismatch():
    base, head = make_set([finetune_run(n_train_kept=32)]), make_set([finetune_run(n_train_kept=32)])
    head["runs"][0]["data"]["train_kept_sha256"] = "9" * 64  # a PR may change what pruning keeps
    assert not compare.compare(base, head)["warnings"]


def test_cli_formats_and_exit_status(tmp_path, capsys):
    base, head = _pair()
    pb, ph = write(base, tmp_path / "b"), write(head, tmp_path / "h")
    assert cli.main(["compare", pb, ph, "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["headline"].startswith("3 worse, 1 better")
    assert (
        cli.main(["compare", pb, ph, "--format", "csv", "--fail-on", "timing=never", "accuracy=never", "bytes=never"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("scenario,run,metric") and len(lines) == 1 + len(out["rows"])
    assert cli.main(["compare", pb, str(tmp_path / "missing")]) == 2
    assert cli.main(["compare", pb, ph, "--fail-on", "speed=1"]) == 2
