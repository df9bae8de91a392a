"""Built-in tasks: deterministic, answers true by construction, eval disjoint from train."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from effbench import tasks
from effbench.tasks import arith, probe, reftext


def _problem(prompt: str):
    m = re.fullmatch(r"(\d+) ([+-]) (\d+) =", prompt)
    return (int(m.group(1)), m.group(2), int(m.group(3))) if m else None


def test_arith_deterministic_and_correct():
    a = tasks.load("arith", n_train=500, n_eval=100, seed=3)
    b = tasks.load("arith", n_train=500, n_eval=100, seed=3)
    assert a.train == b.train and a.eval == b.eval
    assert tasks.data_sha256(a.train) == tasks.data_sha256(b.train)
    assert tasks.data_sha256(a.train) != tasks.data_sha256(tasks.load("arith", n_train=500, n_eval=100, seed=4).train)
    for e in a.train + a.eval:
        x, op, y = _problem(e.prompt)
        assert 10 <= x <= 99 and 10 <= y <= 99
        assert int(e.answer) == (x + y if op == "+" else x - y) >= 0
        assert e.answer.startswith(" ")


def test_eval_disjoint_from_train_even_with_noise():
    d = tasks.load("arith-noisy", n_train=1000, n_eval=200, seed=0)
    eval_problems = {_problem(e.prompt) for e in d.eval}
    train_problems = {_problem(e.prompt) for e in d.train if _problem(e.prompt)}
    assert len(eval_problems) == 200 and not (eval_problems & train_problems)
    assert all(e.kind == "clean" for e in d.eval)


def test_noise_rates_give_the_requested_counts():
    cfg = arith.ArithConfig(n_train=1000, duplicate_rate=0.1, wrong_answer_rate=0.05, junk_rate=0.02)
    counts = Counter(e.kind for e in arith.generate(cfg).train)
    assert counts["duplicate"] == 100 and counts["wrong"] == 50 and counts["junk"] == 20
    assert sum(counts.values()) == 1000
    wrong = [e for e in arith.generate(cfg).train if e.kind == "wrong"]
    for e in wrong:
        x, op, y = _problem(e.prompt)
        assert int(e.answer) != (x + y if op == "+" else x - y)


@pytest.mark.parametrize("bad", [dict(digits=0), dict(ops=("*",)), dict(junk_rate=1.5), dict(n_eval=0)])
def test_bad_task_config_raises(bad):
    with pytest.raises(ValueError):
        arith.ArithConfig(**bad)


def test_unknown_task_names_valid_ones():
    with pytest.raises(ValueError, match="arith-noisy"):
        tasks.load("arithmetic")


def test_probe_items_true_by_construction():
    items = probe.generate(seed=0)
    assert len(items) >= 500
    assert items == probe.generate(seed=0)
    for it in items:
        assert len(it.choices) == 4 and len(set(it.choices)) == 4 and 0 <= it.gold < 4
        ans = it.choices[it.gold].strip()
        if it.family == "number_seq":
            seq = [int(x) for x in it.context.rstrip(",").split(", ")]
            step = seq[1] - seq[0]
            assert all(b - a == step for a, b in zip(seq, seq[1:])) and int(ans) == seq[-1] + step
        if it.family == "weekday":
            last = it.context.rstrip(",").split(", ")[-1]
            assert probe.DAYS[(probe.DAYS.index(last) + 1) % 7] == ans
        if it.family == "antonym":
            word = it.context.split()[-2]
            assert (word, ans) in probe.ANTONYMS or (ans, word) in probe.ANTONYMS


def test_reference_text_fixed_and_calibration_disjoint(tiny):
    _, tok = tiny
    ids, meta = reftext.token_ids(tok, 1024)
    ids2, meta2 = reftext.token_ids(tok, 1024)
    assert meta["sha256"] == meta2["sha256"] and len(ids) == 1024
    cal, cmeta = reftext.calibration_ids(tok, 4, 128)
    assert cal.shape == (4, 128) and cmeta["from"] == "end"
    with pytest.raises(ValueError, match="fewer"):
        reftext.token_ids(tok, 10**8)


def test_probe_chance_level_from_the_number_of_choices():
    items = probe.generate(seed=0)
    assert probe.chance_level(items) == pytest.approx(0.25)  # four choices each
    two = probe.MCItem("x", "a", (" b", " c"), 0)
    assert probe.chance_level([two, items[0]]) == pytest.approx((1 / 2 + 1 / 4) / 2)
    with pytest.raises(ValueError):
        probe.chance_level([])


def test_accuracy_stderr_is_the_sample_standard_error():
    from effbench.tasks.lmeval import summarize

    # 0/1 scores, k = 3 of n = 4: sqrt(p(1-p)/(n-1)) = sqrt(0.1875/3) = 0.25
    assert summarize([1.0, 0.0, 1.0, 1.0]) == {"value": 0.75, "stderr": pytest.approx(0.25), "n": 4}
    # non-binary scores: std with n-1 over sqrt(n), by hand
    v = [0.2, 0.4, 0.9]
    m = sum(v) / 3
    assert summarize(v)["stderr"] == pytest.approx((sum((x - m) ** 2 for x in v) / 2 / 3) ** 0.5)
    assert summarize([1.0])["stderr"] is None and summarize([0.0, 0.0])["stderr"] == 0.0
