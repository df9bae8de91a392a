"""The command line: bad input fails fast (exit 2) with a message naming the value and the valid
choices, before any model is loaded; `list` describes everything."""

from __future__ import annotations

import time

import pytest

from effbench import cli
from effbench.cli.args import parse_technique


def run(capsys, *argv):
    t0 = time.perf_counter()
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err, time.perf_counter() - t0


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["run", "--scenario", "infer", "-t", "nf5"], ["nf5", "baseline"]),
        (["run", "--scenario", "infer", "-t", "baseline:foo=1"], ["foo", "valid"]),
        (["run", "--suite", "nope"], ["nope", "smoke", "cpu"]),
        (["run", "--scenario", "infer", "--budget", "batch_size=4"], ["batch_size", "batch_sizes"]),
        (["run", "--scenario", "finetune", "--model", "gpt5"], ["gpt5", "smollm2-135m", "tiny"]),
        (["run", "--scenario", "finetune", "--task", "mmlu"], ["mmlu", "arith"]),
        (["run", "--suite", "smoke", "--only", "no-such-run"], ["no-such-run", "finetune-full"]),
        (["show", "/nonexistent"], ["no result set"]),
    ],
)
def test_bad_input_exits_2_naming_value_and_choices(capsys, argv, needles):
    code, out, err, dt = run(capsys, *argv)
    assert code == 2
    for n in needles:
        assert n in err, (n, err)
    assert dt < 30  # raised before any model load or run


def test_bad_suite_file(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text('[suite]\nname="x"\ncolour="red"\n[[run]]\nid="a"\nscenario="infer"\n')
    code, _, err, _ = run(capsys, "run", "--suite", str(p), "--device", "cpu")
    assert code == 2 and "colour" in err
    p.write_text('[[run]]\nid="a"\nscenario="infer"\ntechniques=[{name="baseline", params={x=1}}]\n')
    code, _, err, _ = run(capsys, "run", "--suite", str(p), "--device", "cpu")
    assert code == 2 and "x" in err and "run 'a'" in err


def test_list_describes_everything(capsys):
    code, out, _, _ = run(capsys, "list")
    assert code == 0
    for needle in ("baseline", "arith", "probe", "smollm2-135m", "tiny", "smoke", "cpu"):
        assert needle in out
    assert "INVALID" not in out, "every shipped suite must validate"


def test_parse_technique():
    assert parse_technique('lora:r=16,use_dora=true,target=["q"]') == {
        "name": "lora",
        "params": {"r": 16, "use_dora": True, "target": ["q"]},
    }
