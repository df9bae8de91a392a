"""Data pruning: each strategy is deterministic, keeps what it promises, never touches the eval
split; dedup finds the injected copies without losing clean problems; the noise accounting follows
its definition; scoring strategies run end to end on `tiny` and record their cost; the report
shows a pruning table. Everything on CPU, `tiny` model, small splits."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from effbench import tasks
from effbench.tasks.arith import Example
from effbench.techniques import TechniqueError, build
from effbench.techniques import _data_pruning as _pruning

FRACTION_STRATEGIES = [
    ("random", {}),
    ("perplexity", {"band": "middle"}),
    ("perplexity", {"band": "high"}),
    ("el2n", {"warmup_steps": 2, "batch_size": 8}),
]


def _noisy(n=60, seed=0):
    return tasks.load("arith-noisy", n_train=n, n_eval=12, seed=seed)


@pytest.mark.parametrize("name,params", FRACTION_STRATEGIES)
def test_fraction_strategies_keep_fraction_deterministically_and_leave_eval(name, params, ctx_factory):
    data = _noisy()
    before_train, before_eval = list(data.train), list(data.eval)
    outs = [build(name, {**params, "fraction": 0.3}).prepare_data(data, ctx_factory("train")) for _ in range(2)]
    assert outs[0].train == outs[1].train  # same seed, same kept examples in the same order
    assert abs(len(outs[0].train) - 0.3 * len(before_train)) <= 1
    assert outs[0].eval == before_eval and data.train == before_train  # eval untouched, input not mutated
    assert Counter(map(repr, outs[0].train)) <= Counter(map(repr, before_train))  # a subset, nothing new


@pytest.mark.parametrize("name", ["dedup", "heuristic"])
def test_filters_deterministic_and_leave_eval(name, ctx_factory):
    data = _noisy(200)
    a, b = (build(name).prepare_data(data, ctx_factory("train")) for _ in range(2))
    assert a.train == b.train and a.eval == data.eval and 0 < len(a.train) < len(data.train)


@pytest.mark.parametrize("seed", [0, 1])
def test_dedup_removes_copies_and_keeps_clean(seed, ctx_factory):
    data = tasks.load("arith-noisy", n_train=2000, n_eval=200, seed=seed)
    ctx = ctx_factory("train")
    out = build("dedup").prepare_data(data, ctx)
    rec = ctx.records["pruning"]
    assert rec["recall_duplicate"] == 1.0 and rec["recall_near_duplicate"] >= 0.9
    n_clean = Counter(e.kind for e in data.train)["clean"]
    assert rec["removed_by_kind"]["clean"] <= 0.02 * n_clean
    # Directly: copies of a problem share a uid; at most one survives, and every clean problem survives.
    kept_per_problem = Counter(e.uid for e in out.train if e.kind in ("clean", "duplicate", "near_duplicate"))
    clean_uids = {e.uid for e in data.train if e.kind == "clean"}
    assert sum(1 for u in clean_uids if kept_per_problem[u] == 0) <= 0.02 * n_clean
    extra_copies = sum(c - 1 for c in kept_per_problem.values() if c > 1)
    assert extra_copies <= 0.1 * Counter(e.kind for e in data.train)["near_duplicate"]


def test_heuristic_drops_exactly_the_junk(ctx_factory):
    data = tasks.load("arith-noisy", n_train=1000, n_eval=100, seed=2)
    out = build("heuristic").prepare_data(data, ctx_factory("train"))
    assert all(e.kind != "junk" for e in out.train)
    assert len(out.train) == sum(1 for e in data.train if e.kind != "junk")


def test_noise_accounting_follows_its_definition():
    c = Example("1 + 2 =", " 3", "clean", 7)
    d = Example("1 + 2 =", " 3", "duplicate", 7)
    n = Example("1+2 =", " 3", "near_duplicate", 7)
    w = Example("4 + 4 =", " 9", "wrong", 8)
    j = Example("###", " null", "junk", -1)
    before = [c, d, n, w, j]
    # Keeping the near copy instead of the clean one: it stands in, so the clean counts as kept.
    s = _pruning.noise_scores(before, [n, w])
    assert s["removed_by_kind"] == {"clean": 0, "duplicate": 1, "near_duplicate": 1, "wrong": 0, "junk": 1}
    assert s["precision"] == 1.0 and s["recall"] == 0.75 and s["recall_wrong"] == 0.0
    s = _pruning.noise_scores(before, [w])  # the problem is lost entirely
    assert s["removed_by_kind"]["clean"] == 1 and s["precision"] == 0.75 and s["recall"] == 0.75


def test_generator_problems_unique_up_to_operand_order():
    d = tasks.load("arith-noisy", n_train=2000, n_eval=200, seed=0)

    def canon(prompt):
        m = re.fullmatch(r"(\d+) ([+-]) (\d+) =", prompt)
        if not m:
            return None
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return (min(a, b), op, max(a, b)) if op == "+" else (a, op, b)

    clean = [canon(e.prompt) for e in d.train if e.kind in ("clean", "wrong")]
    assert len(set(clean)) == len(clean)
    assert not set(clean) & {canon(e.prompt) for e in d.eval}
    assert (
        sum(
            1
            for e in d.train
            if e.kind == "near_duplicate"
            and (e.prompt, e.answer) in {(c.prompt, c.answer) for c in d.train if c.kind == "clean"}
        )
        == 0
    )  # near copies differ in text


@pytest.mark.parametrize(
    "name,params",
    [
        ("random", {"fraction": 0.0}),
        ("perplexity", {"band": "top"}),
        ("el2n", {"fraction": 0.6, "drop_top": 0.5}),
        ("dedup", {"threshold": 1.5}),
    ],
)
def test_bad_parameters_fail_before_work(name, params):
    with pytest.raises(TechniqueError):
        build(name, params)


def test_scoring_strategies_end_to_end_record_cost(tmp_path):
    from effbench.child import main as child
    from effbench.render import report

    budget = dict(max_steps=2, batch_size=4, n_train=48, n_eval=4, eval_every=10, eval_limit=4, eval_batch_size=4)
    techs = [
        {"name": "dedup"},
        {"name": "el2n", "params": {"fraction": 0.6, "warmup_steps": 2, "batch_size": 8}},
        {"name": "perplexity", "params": {"fraction": 0.5}},
    ]
    spec = dict(
        id="pruned", scenario="finetune", model="tiny", task="arith-noisy", techniques=techs, budget=budget, seed=0
    )
    r = child.run_spec(spec)
    assert r["status"] == "ok", r.get("error")
    rec = r["technique_records"]
    for name in ("el2n", "perplexity"):
        assert rec[name]["scoring_tokens"] > 0 and rec[name]["scoring_s"] > 0
        assert r["setup"]["per_technique"][name] >= rec[name]["scoring_s"]
    assert rec["el2n"]["warmup_tokens"] > 0
    p = rec["pruning"]
    assert p["strategies"] == ["dedup", "el2n", "perplexity"]
    assert p["n_kept"] == r["data"]["n_train_kept"] == rec["perplexity"]["n_kept"]
    assert p["scoring_tokens"] == rec["el2n"]["scoring_tokens"] + rec["perplexity"]["scoring_tokens"]
    assert abs(rec["perplexity"]["n_kept"] - 0.5 * rec["perplexity"]["n_in"]) <= 1
    # The report's pruning table: one row for the pruned run, compared with its unpruned twin.
    twin = {**r, "id": "unpruned", "technique_records": {}, "spec": {**r["spec"], "id": "unpruned", "techniques": []}}
    rs = {"runs": [twin, r], "env": r.get("env", {}), "suite": "t", "target": {}}
    head, rows = report.pruning_rows(rs, rs["runs"])
    assert [row[0] for row in rows] == ["unpruned", "pruned"]
    assert rows[1][head.index("Δ acc pts vs unpruned")].endswith("vs unpruned")
    assert "## Data pruning" in report.summary_markdown({**rs, "price_per_hour": 1.0})
