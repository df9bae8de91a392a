"""Interactions of stacked techniques on a hand-made result set with known figures: measured and
predicted ratios (multiplicative) and quality losses (additive), and which stacks are flagged."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from _resultsets import infer_run, make_set

from effbench.read import interactions
from effbench.render import report

MAG, NF4, INT8, WANDA = ({"name": n, "params": {}} for n in ("magnitude", "nf4", "int8", "wanda"))


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage():
    """result sets validated through pydantic hold reference cycles: free them here, not in a later test's memory measurement."""
    yield
    gc.collect()


def probe(acc_pct: int) -> list[float]:
    return [1.0] * acc_pct + [0.0] * (100 - acc_pct)


def group(rid, techniques, decs, weight_bytes, acc_pct, peaks=None) -> list[dict]:
    """One suite run as replicate members: decode tokens/s at b8 = decs[i] in replicate i."""
    out = []
    for i, d in enumerate(decs):
        r = infer_run(rid, techniques, probe=probe(acc_pct))
        if i:
            r["id"] = f"{rid}@s0r{i}"
            r["spec"].update(replicate=i, timing_only=True)
            r["items"] = {}
            r["metrics"]["probe_acc"] = {"value": None, "reason": "timing-only replicate"}
        r["metrics"]["decode_tokens_per_s.b8"] = {
            "value": d,
            "unit": "tokens/s",
            "higher_is_better": True,
            "samples": [d],
        }
        r["metrics"]["weight_bytes"] = {"value": weight_bytes, "unit": "B", "higher_is_better": False}
        r["metrics"]["peak_rss_bytes"]["value"] = (peaks or [700 * 2**20] * len(decs))[i]
        out.append(r)
    return out


def gm(xs):
    return math.exp(np.mean(np.log(xs)))


BASE, A, B, C = [100.0, 101.0, 99.0], [100.0, 99.0, 101.0], [80.0, 81.0, 79.0], [50.0, 50.5, 49.5]
ADDS_UP = [80.0, 80.5, 79.5]  # magnitude (x1 time) + nf4 (x1.25): as predicted
SLOWER = [25.0, 25.2, 24.8]  # magnitude + int8 (x2 predicted): x4 measured


@pytest.fixture(scope="module")
def recs():
    runs = (
        group("infer-baseline", [], BASE, 500e6, 80)
        + group("infer-mag", [MAG], A, 500e6, 70)
        + group("infer-nf4", [NF4], B, 160e6, 75)
        + group("infer-int8", [INT8], C, 210e6, 80)
        + group("infer-mag-nf4", [MAG, NF4], ADDS_UP, 160e6, 65)
        + group("infer-mag-int8", [MAG, INT8], SLOWER, 210e6, 40)
        + group("infer-wanda-nf4", [WANDA, NF4], ADDS_UP, 160e6, 60)
    )
    rs = make_set(runs)
    out = {}
    for r in interactions.interactions(rs):
        out[(r["stack"], r["quantity"].split(" (")[0])] = r
    return rs, out


def test_time_ratios_multiply(recs):
    _, out = recs
    r = out[("infer-mag-nf4", "time per token")]
    # time = 1 / throughput: ratio to the baseline = geomean(baseline) / geomean(stack)
    assert r["measured"] == pytest.approx(gm(BASE) / gm(ADDS_UP))
    assert r["predicted"] == pytest.approx(gm(BASE) / gm(A) * gm(BASE) / gm(B))
    assert r["interaction"] == pytest.approx(r["measured"] / r["predicted"])
    assert r["pred_lo"] < r["predicted"] < r["pred_hi"] and r["d_lo"] < r["interaction"] < r["d_hi"]
    assert r["verdict"] == "as predicted"
    slow = out[("infer-mag-int8", "time per token")]
    assert slow["measured"] == pytest.approx(4.0, rel=0.01) and slow["predicted"] == pytest.approx(2.0, rel=0.01)
    assert slow["verdict"] == "worse" and slow["d_lo"] > 1


def test_bytes_multiply_exactly(recs):
    _, out = recs
    r = out[("infer-mag-nf4", "weight bytes")]
    assert r["measured"] == pytest.approx(160e6 / 500e6) and r["predicted"] == pytest.approx(1.0 * 160e6 / 500e6)
    assert r["verdict"] == "as predicted" and "exact" in r["note"]


def test_quality_losses_add_in_points(recs):
    _, out = recs
    r = out[("infer-mag-nf4", "probe accuracy loss")]
    assert r["measured"] == pytest.approx(80 - 65) and r["predicted"] == pytest.approx((80 - 70) + (80 - 75))
    assert r["verdict"] == "as predicted"
    bad = out[("infer-mag-int8", "probe accuracy loss")]
    assert bad["measured"] == pytest.approx(40) and bad["predicted"] == pytest.approx(10)
    assert bad["interaction"] == pytest.approx(30) and bad["d_lo"] > 0 and bad["verdict"] == "worse"
    # 95% CI from the four runs' per-item stderrs, 100 sqrt(p (1 - p) / n) points each: stack, two singles, baseline once
    se = [100 * math.sqrt(p * (1 - p) / 100) for p in (0.40, 0.70, 0.80, 0.80)]
    assert bad["d_hi"] - bad["d_lo"] == pytest.approx(2 * 1.959964 * math.sqrt(sum(x * x for x in se)), rel=1e-5)
    # the prediction's CI counts the baseline once per single (k = 2): 2^2 se_b^2
    assert bad["pred_hi"] - bad["pred_lo"] == pytest.approx(
        2 * 1.959964 * math.sqrt(se[1] ** 2 + se[2] ** 2 + 4 * se[3] ** 2), rel=1e-5
    )


def test_a_stack_without_its_single_runs_says_which_is_missing(recs):
    _, out = recs
    r = out[("infer-wanda-nf4", "all")]
    assert "wanda" in r["reason"] and "nf4" not in r["reason"]


def test_report_shows_the_table_and_flags(recs):
    rs, _ = recs
    md = report.summary_markdown(rs)
    assert "## Interactions of stacked techniques" in md
    table = md.split("## Interactions of stacked techniques")[1]
    assert table.count("**worse than predicted**") == 2  # mag-int8: time and quality
    assert "no single run of wanda" in table


def test_exact_bytes_are_flagged_beyond_one_percent():
    def stack(nbytes):
        runs = (
            group("infer-baseline", [], BASE, 500e6, 80)
            + group("infer-mag", [MAG], A, 500e6, 70)
            + group("infer-nf4", [NF4], B, 160e6, 75)
            + group("infer-mag-nf4", [MAG, NF4], ADDS_UP, nbytes, 65)
        )
        (r,) = [r for r in interactions.interactions(make_set(runs)) if r["quantity"].startswith("weight bytes")]
        return r["verdict"]

    assert stack(160e6 * 1.009) == "as predicted"
    assert stack(160e6 * 1.02) == "worse" and stack(160e6 * 0.98) == "better"
