"""Derived cost figures against hand-computed answers."""

from __future__ import annotations

import pytest

from effbench.read import cost


def _ft(acc, base, train_s, setup_s, curve):
    return {
        "id": "ft",
        "status": "ok",
        "spec": {"scenario": "finetune"},
        "setup": {"wall_s": setup_s},
        "metrics": {
            "accuracy": {"value": acc},
            "accuracy_unmodified": {"value": base},
            "train_wall_s": {"value": train_s},
        },
        "curves": {"accuracy_vs_time": curve},
    }


def test_finetune_cost_and_per_point():
    r = _ft(0.30, 0.10, 3000.0, 600.0, [])
    d = cost.derived(r, price=2.0, target=None)
    assert d["cost_usd"] == pytest.approx(2.0 * 3600 / 3600)
    assert d["gain_points"] == pytest.approx(20.0)
    assert d["usd_per_point"] == pytest.approx(2.0 / 20)


def test_time_to_target_interpolates_linearly():
    curve = [
        {"train_wall_s": 0, "accuracy": 0.0},
        {"train_wall_s": 100, "accuracy": 0.2},
        {"train_wall_s": 200, "accuracy": 0.6},
    ]
    r = _ft(0.6, 0.0, 200, 10, curve)
    assert cost.time_to_target(r, 0.4) == pytest.approx(150.0)
    assert cost.time_to_target(r, 0.7) is None  # not reached
    d = cost.derived(r, price=3.6, target=0.4)
    assert d["time_to_target_s"] == pytest.approx(160.0) and d["cost_to_target_usd"] == pytest.approx(0.16)


def _infer(probe_acc, chance=0.25, norm=None):
    m = {
        "decode_tokens_per_s.b1": {"value": 10.0},
        "decode_tokens_per_s.b8": {"value": 100.0},
        "speed_wall_s": {"value": 5.0},
        "probe_acc": {"value": probe_acc, "chance": chance},
    }
    if norm is not None:
        m["probe_acc_norm"] = {"value": norm, "chance": chance}
    return {"spec": {"scenario": "infer"}, "setup": {"wall_s": 0}, "metrics": m}


def test_infer_usd_per_mtok_counts_points_above_chance():
    d = cost.derived(_infer(0.5, norm=0.85), price=3.6, target=None)
    assert d["usd_per_mtok_basis"] == "decode_tokens_per_s.b8"
    assert d["usd_per_mtok"] == pytest.approx(3.6 / 3600 / 100 * 1e6)
    # 50% on a 4-way probe is 25 points above the 25% chance floor, not 50 points
    assert d["probe_points"] == pytest.approx(25.0) and d["probe_norm_points"] == pytest.approx(60.0)
    assert d["usd_per_mtok_per_point"] == pytest.approx(d["usd_per_mtok"] / 25)
    # the chance level is the one recorded with the metric (e.g. a 2-way task: 50%)
    assert cost.derived(_infer(0.75, chance=0.5), price=3.6, target=None)["probe_points"] == pytest.approx(25.0)


@pytest.mark.parametrize(
    "acc,chance,why",
    [
        (0.25, 0.25, "no quality points"),
        (0.20, 0.25, "no quality points"),
        (0.5, None, "no recorded chance level"),
        (None, 0.25, "not measured"),
    ],
)
def test_no_points_no_cost_per_point(acc, chance, why):
    d = cost.derived(_infer(acc, chance=chance), price=3.6, target=None)
    assert d["usd_per_mtok_per_point"] is None and why in d["usd_per_mtok_per_point_reason"]
    assert d["usd_per_mtok"] is not None


def test_finetune_without_gain_has_no_cost_per_point():
    d = cost.derived(_ft(0.10, 0.10, 100.0, 0.0, []), price=2.0, target=None)
    assert d["gain_points"] == 0 and d["usd_per_point"] is None and "no quality points" in d["usd_per_point_reason"]


def test_price_lookup():
    assert cost.price_for({"device": "cuda", "device_name": "NVIDIA H200"})[0] == 3.80
    assert cost.price_for({"device": "cuda", "device_name": "Mystery GPU"})[0] is None
    assert cost.price_for({"device": "cpu"}, 1.5, "flag") == (1.5, "flag")


def test_report_shows_cost_per_point_above_chance():
    from effbench.render import report

    def run(i, acc):
        return {**_infer(acc), "id": f"r{i}", "status": "ok", "spec": {"scenario": "infer", "techniques": []}}

    rs = {"suite": "s", "env": {"device": "cpu"}, "price_per_hour": 3.6, "runs": [run(0, 0.5), run(1, 0.25)]}
    head, rows = report.infer_rows(rs, rs["runs"])
    col = {h: i for i, h in enumerate(head)}
    usd_per_mtok = 3.6 / 3600 / 100 * 1e6
    assert rows[0][col["probe pts > chance"]] == "25.0"
    assert rows[0][col["$/Mtok/pt"]] == format(usd_per_mtok / 25, ".4f")
    assert rows[1][col["probe pts > chance"]] == "0.0" and rows[1][col["$/Mtok/pt"]] == "–"
    assert "above chance" in report.summary_markdown(rs)


def test_time_to_target_over_seeds_counts_each_seed_against_the_mean_target():
    """Three seeds of the reference: the target is 0.9 x their mean final accuracy (not seed 0's),
    and each seed's own curve and set-up give its time; the table says how many reached it."""
    from _resultsets import finetune_run, make_set

    from effbench.read import replicates
    from effbench.render import report

    runs = []
    for s, (a, curve) in enumerate([(30, (0.1, 0.2, 0.3)), (40, (0.1, 0.3, 0.4)), (50, (0.1, 0.4, 0.5))]):
        r = finetune_run(items=[1.0] * a + [0.0] * (100 - a), curve_acc=curve)  # curve points 5 s apart, setup 1 s
        r["spec"]["seed"] = s
        r["id"] = "finetune-full" if s == 0 else f"finetune-full@s{s}r0"
        runs.append(r)
    rs = make_set(runs)
    target = cost.target_accuracy(rs)
    assert target == pytest.approx(0.9 * 0.40)  # seed 0 alone would give 0.27
    rep = replicates.representatives(rs)[0]
    t = cost.to_target(report.members_of(rs, rep), 3.6, target)
    s1, s2 = 1 + 5 + 5 * (0.36 - 0.3) / 0.1, 1 + 5 * (0.36 - 0.1) / 0.3
    assert t["seeds"] == 3 and t["times_s"][0] is None  # seed 0 ends at 0.30 < 0.36
    assert t["times_s"][1:] == [pytest.approx(s1), pytest.approx(s2)]
    assert t["median_s"] == pytest.approx((s1 + s2) / 2) and t["median_usd"] == pytest.approx((s1 + s2) / 2 / 1000)
    assert report.target_cells(rs, rep, 3.6, target) == ("7 (2/3 seeds, 5–9)", "0.0072 (2/3 seeds)")
    one = make_set(runs[:1])  # one seed: its own figure, as before
    assert report.target_cells(one, replicates.representatives(one)[0], 3.6, 0.25) == (
        f"{1 + 5 + 5 * 0.05 / 0.1:.0f}",
        f"{(1 + 5 + 5 * 0.05 / 0.1) / 1000:.4f}",
    )
    assert report.target_cells(rs, rep, 3.6, 0.99)[0] == "not reached (0/3 seeds)"
    md = report.summary_markdown(rs)
    assert "36.0% = 0.9 x final accuracy of `finetune-full` (mean over 3 seeds)" in md and "7 (2/3 seeds, 5–9)" in md
    # the curves figure draws the first seed's curve and says so
    from effbench.render import plot_curves

    fig = plot_curves.finetune_figure([{**rs, "runs": replicates.representatives(rs)}])
    assert any("(seed 0's curve of 3 seeds)" in t.get_text() for t in fig.legends[0].get_texts())
    import matplotlib.pyplot as plt

    plt.close(fig)
