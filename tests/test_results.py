"""Result files: written atomically, validated on load, corrupt or foreign files rejected clearly."""

from __future__ import annotations

import json

import pytest

from effbench.read import results


def _set(runs):
    return {"schema": results.SET_SCHEMA, "suite": "t", "runs": runs}


def _run(**metrics):
    r = results.new_run("r1", {"scenario": "infer"})
    r["metrics"] = metrics
    return r


def test_round_trip(tmp_path):
    rs = _set([_run(x={"value": 1.0, "unit": "s"}, y={"value": None, "reason": "needs CUDA"})])
    results.write_json_atomic(tmp_path / "results.json", rs)
    got = results.load(tmp_path)
    assert got["runs"][0]["metrics"]["y"]["reason"] == "needs CUDA"
    assert not list(tmp_path.glob("*.tmp")), "no temporary file may be left behind"


def test_corrupt_file_rejected_with_its_path(tmp_path):
    p = tmp_path / "results.json"
    p.write_text('{"schema": "effbench.resultset/1", "runs": [')
    with pytest.raises(results.ResultError, match="corrupt") as e:
        results.load(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize(
    "obj,match",
    [
        ({"schema": "other/1", "runs": []}, "not an effbench result set"),
        ([1, 2], "not an effbench result set"),
        ({"schema": results.SET_SCHEMA, "runs": [{"schema": results.RUN_SCHEMA}]}, "field 'id'"),
        (_set([_run(x={"value": None})]), "without a reason"),
        (_set([dict(_run(), status="great")]), "status"),
    ],
)
def test_invalid_content_rejected(tmp_path, obj, match):
    (tmp_path / "results.json").write_text(json.dumps(obj))
    with pytest.raises(results.ResultError, match=match):
        results.load(tmp_path)


def test_missing_path():
    with pytest.raises(results.ResultError, match="no result set"):
        results.load("/nonexistent/results")


def test_written_sets_keep_scalar_lists_on_one_line_and_read_back_equal(tmp_path):
    rs = {"schema": results.SET_SCHEMA, "runs": [{"items": {"a.acc": [0.0, 1.0, 1.0]}, "e": {}, "l": []}], "n": None}
    results.write_json_atomic(tmp_path / "results.json", rs)
    text = (tmp_path / "results.json").read_text()
    assert json.loads(text) == rs
    assert '"a.acc": [0.0, 1.0, 1.0]' in text  # per-item scores: one line, not one line per number
    assert text.startswith('{\n "schema": ') and text.endswith("}\n")  # keys still one per line
    assert results.dumps(json.loads(text)) + "\n" == text  # the committed sets are written this way


def test_readers_outputs_are_readable_by_others(tmp_path):
    out = results.output_file(tmp_path, "README.md")
    results.replace_file(out, lambda tmp: tmp.write_text("x"))
    results.write_json_atomic(tmp_path / "results.json", {"runs": []})
    assert out.stat().st_mode & 0o777 == 0o644 and (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644
