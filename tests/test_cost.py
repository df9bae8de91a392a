"""Derived cost figures against hand-computed answers."""
from __future__ import annotations

import pytest

from effbench import cost


def _ft(acc, base, train_s, setup_s, curve):
    return {"id": "ft", "status": "ok", "spec": {"scenario": "finetune"}, "setup": {"wall_s": setup_s},
            "metrics": {"accuracy": {"value": acc}, "accuracy_unmodified": {"value": base}, "train_wall_s": {"value": train_s}},
            "curves": {"accuracy_vs_time": curve}}


def test_finetune_cost_and_per_point():
    r = _ft(0.30, 0.10, 3000.0, 600.0, [])
    d = cost.derived(r, price=2.0, target=None)
    assert d["cost_usd"] == pytest.approx(2.0 * 3600 / 3600)
    assert d["gain_points"] == pytest.approx(20.0)
    assert d["usd_per_point"] == pytest.approx(2.0 / 20)


def test_time_to_target_interpolates_linearly():
    curve = [{"train_wall_s": 0, "accuracy": 0.0}, {"train_wall_s": 100, "accuracy": 0.2}, {"train_wall_s": 200, "accuracy": 0.6}]
    r = _ft(0.6, 0.0, 200, 10, curve)
    assert cost.time_to_target(r, 0.4) == pytest.approx(150.0)
    assert cost.time_to_target(r, 0.7) is None  # not reached
    d = cost.derived(r, price=3.6, target=0.4)
    assert d["time_to_target_s"] == pytest.approx(160.0) and d["cost_to_target_usd"] == pytest.approx(0.16)


def test_infer_usd_per_mtok():
    r = {"spec": {"scenario": "infer"}, "setup": {"wall_s": 0},
         "metrics": {"decode_tokens_per_s.b1": {"value": 10.0}, "decode_tokens_per_s.b8": {"value": 100.0},
                     "speed_wall_s": {"value": 5.0}, "probe_acc": {"value": 0.5}}}
    d = cost.derived(r, price=3.6, target=None)
    assert d["usd_per_mtok_basis"] == "decode_tokens_per_s.b8"
    assert d["usd_per_mtok"] == pytest.approx(3.6 / 3600 / 100 * 1e6)
    assert d["usd_per_mtok_per_point"] == pytest.approx(d["usd_per_mtok"] / 50)


def test_price_lookup():
    assert cost.price_for({"device": "cuda", "device_name": "NVIDIA H200"})[0] == 3.80
    assert cost.price_for({"device": "cuda", "device_name": "Mystery GPU"})[0] is None
    assert cost.price_for({"device": "cpu"}, 1.5, "flag") == (1.5, "flag")
