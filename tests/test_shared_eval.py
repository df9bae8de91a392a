"""The unmodified model's evaluation, measured once per result set (effbench.child.shared): a second
run with the same inputs reads it and says which run measured it; other inputs, a tampered, foreign
or linked file are measured again."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from effbench.child import main as child
from effbench.child import shared
from effbench.tasks import Example


def _call(tmp_path, monkeypatch, run_id="ft-a", eval_batch_size=16, retention_items=100, eval_items=None):
    calls = []

    def measure(model, tok, data, spec, budget):
        calls.append(spec.id)
        torch.manual_seed(1234)  # as lm-eval reseeds, then draws
        torch.rand(7)
        return {
            "metrics": {"accuracy_unmodified": {"value": 0.5, "unit": "fraction"}, "hellaswag_acc_norm_before": {"value": 0.4}},
            "items": {"sst2.acc.unmodified": [1.0, 0.0], "hellaswag.acc_norm.before": [0.0, 1.0]},
            "data": {"retention": {"hellaswag": {"n_items": 2}}},
        }  # fmt: skip

    monkeypatch.setattr(child, "_measure_unmodified", measure)
    data = SimpleNamespace(eval=eval_items or [Example("a", "b", "c"), Example("d", "e", "f")])
    spec = SimpleNamespace(id=run_id, device="cpu", task="sst2", seed=0)
    budget = SimpleNamespace(eval_batch_size=eval_batch_size, retention_items=retention_items)
    res = {"model": {"weights_sha256": "a" * 64, "dtype": "float32"}, "env": {"device_name": "CPU"},
           "items": {}, "data": {}, "setup": {}}  # fmt: skip
    metrics = child._unmodified_accuracy(None, None, data, spec, budget, res, tmp_path)
    return calls, metrics, res


def test_a_second_run_with_the_same_inputs_reads_the_first_runs_measurement(tmp_path, monkeypatch):
    calls, m1, r1 = _call(tmp_path, monkeypatch, "ft-a")
    assert calls == ["ft-a"] and "unmodified_measured_by" not in r1["setup"]
    calls, m2, r2 = _call(tmp_path, monkeypatch, "ft-b")
    assert calls == [] and r2["setup"]["unmodified_measured_by"] == "ft-a"
    assert (m2, r2["items"], r2["data"]) == (m1, r1["items"], r1["data"])


def test_training_starts_from_the_same_generator_state_whether_measured_or_read(tmp_path, monkeypatch):
    torch.manual_seed(99)
    _call(tmp_path, monkeypatch, "ft-a")
    after_measuring = torch.rand(3)
    torch.manual_seed(99)
    assert _call(tmp_path, monkeypatch, "ft-b")[0] == []
    assert torch.equal(torch.rand(3), after_measuring)


@pytest.mark.parametrize(
    "change",
    [
        {"eval_batch_size": 32},
        {"retention_items": 50},
        {"eval_items": [Example("a", "b", "c")]},
    ],
)
def test_other_inputs_are_measured_again(tmp_path, monkeypatch, change):
    _call(tmp_path, monkeypatch, "ft-a")
    calls, _, res = _call(tmp_path, monkeypatch, "ft-b", **change)
    assert calls == ["ft-b"] and "unmodified_measured_by" not in res["setup"]


def test_a_tampered_or_linked_file_is_measured_again(tmp_path, monkeypatch):
    _call(tmp_path, monkeypatch, "ft-a")
    (f,) = tmp_path.glob(f"{shared.PREFIX}*.json")
    stored = json.loads(f.read_text())
    stored["key"]["eval_batch_size"] = 99  # a file whose stored inputs are not this run's
    f.write_text(json.dumps(stored))
    assert _call(tmp_path, monkeypatch, "ft-b")[0] == ["ft-b"]
    target = tmp_path / "elsewhere.json"
    f.rename(target)
    f.symlink_to(target)
    assert _call(tmp_path, monkeypatch, "ft-c")[0] == ["ft-c"]
    f.unlink()
    f.write_text("{not json")
    assert _call(tmp_path, monkeypatch, "ft-d")[0] == ["ft-d"]


def test_without_a_folder_every_run_measures(monkeypatch):
    assert _call(None, monkeypatch, "ft-a")[0] == ["ft-a"]
    assert _call(None, monkeypatch, "ft-b")[0] == ["ft-b"]
