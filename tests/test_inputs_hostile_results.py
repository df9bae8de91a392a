"""Result files are data from an untrusted source (a pull request's own benchmark run writes the
set the gate reads). Hostile or malformed files fed to `effbench show`, `compare`, `plot` and
`report` (CLI main() in-process) must end in success or exit 2 with a message naming the file,
never a traceback, and nothing may be written outside the result set's folder, even through
symlinks planted in it.

The fuzz base is a real result set (results/cpu, three runs: fine-tuning, inference, pruning)
plus kernel records; hypothesis mutates it (any value replaced by a hostile one: NaN, infinities,
numbers beyond 64 bits or 1e30, wrong types, deep nesting, path-like strings; keys dropped or
added) and sometimes damages the JSON text itself. ~25 s in all on 2 cores.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effbench import cli
from effbench.read import results

REPO = Path(__file__).resolve().parent.parent
REAL_SET = REPO / "results" / "cpu" / "20261128T105410Z_b68c29a4" / "results.json"


def _base() -> dict:
    rs = json.loads(REAL_SET.read_text())
    rs["runs"] = [r for r in rs["runs"] if r["id"] in ("finetune-full", "infer-baseline", "prune-dedup-perplexity50")]
    rs["kernels"] = [
        {
            "kernel": "rmsnorm",
            "impl": impl,
            "pass": "fwdbwd",
            "tokens": t,
            "hidden": 576,
            "dtype": "bfloat16",
            "median_ms": ms * t / 1024,
            "samples_ms": [ms],
            "gbps": None,
            "frac_peak_bw": 0.5,
            "peak_bytes": None,
        }
        for t in (1024, 4096)
        for impl, ms in (("effbench", 1.0), ("eager", 2.0), ("liger", 1.25))
    ]
    return results.validate_set(rs, "fuzz base")


BASE = _base()


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage():
    """matplotlib figures and the fuzz's objects hold reference cycles: free them here, not in a
    later test's memory measurement."""
    yield
    gc.collect()


def _paths(obj, prefix=()):
    """Every place in `obj` (long lists: the list and its first two elements)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]
# Keys show/compare/plot/report read: most mutations land on these (the others are carried along).
READ = {
    "schema",
    "suite",
    "description",
    "created_utc",
    "git",
    "sha",
    "dirty",
    "env",
    "device",
    "device_name",
    "libraries",
    "torch",
    "torch_threads",
    "price_per_hour",
    "price_source",
    "target",
    "fraction",
    "reference",
    "runs",
    "kernels",
    "kernel",
    "impl",
    "pass",
    "tokens",
    "hidden",
    "dtype",
    "median_ms",
    "frac_peak_bw",
    "id",
    "spec",
    "scenario",
    "model",
    "task",
    "techniques",
    "name",
    "params",
    "budget",
    "status",
    "reason",
    "error",
    "data",
    "n_train",
    "n_train_kept",
    "kinds",
    "train_sha256",
    "eval_sha256",
    "probe_sha256",
    "reftext",
    "sha256",
    "weights_sha256",
    "setup",
    "wall_s",
    "per_technique",
    "metrics",
    "value",
    "unit",
    "higher_is_better",
    "samples",
    "stderr",
    "n",
    "curves",
    "accuracy_vs_time",
    "accuracy",
    "train_wall_s",
    "items",
    "technique_records",
    "pruning",
    "strategies",
    "kept_fraction",
    "kept_tokens",
    "scoring_tokens",
    "kinds_before",
    "removed_by_kind",
    "precision",
    "recall",
}
READ_PATHS = [
    p for p in PATHS if isinstance(p[-1], int) or p[-1] in READ or (len(p) > 1 and p[-2] in ("metrics", "items"))
]


def _nested(depth: int):
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -1, 0, 2**63, 1e308, -1e308, 1e31, 5e-324, -0.0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["../../outside", "/tmp/effbench-evil", "..", "a/b", "", "x" * 300, "decode_tokens_per_s.bX", "ok"]
    ),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=3),
    st.integers(1, 500).map(_nested),  # deeper still: the "deep" damage of the JSON text below
)


# Valid but extreme: what passes validation and must still not break a table or a plot.
EXTREME = {
    int: st.sampled_from([0, 1, 2**63 - 1]),
    float: st.sampled_from([0.0, 5e-324, 1e-300, 1.0, 1e30, -1e30]),
    str: st.sampled_from(["", "x" * 300, "a b", "ünï"]),
    list: st.just([]),
    bool: st.booleans(),
}


def _extreme(draw, old):
    return draw(EXTREME[type(old)]) if type(old) in EXTREME else old


@st.composite
def hostile_files(draw, extreme: bool = False) -> bytes:
    """A mutated real result set as JSON text; `extreme`: every mutation keeps the value's type."""
    obj = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(READ_PATHS) if draw(st.integers(0, 4)) else st.sampled_from(PATHS))
        parent = obj
        try:
            for k in path[:-1]:
                parent = parent[k]
            op = "extreme" if extreme else draw(st.sampled_from(["replace", "replace", "drop", "add"]))
            if op == "extreme":
                parent[path[-1]] = _extreme(draw, parent[path[-1]])
            elif op == "replace" or not isinstance(parent, dict):
                parent[path[-1]] = draw(HOSTILE)
            elif op == "drop":
                parent.pop(path[-1], None)
            elif isinstance(parent.get(path[-1]), dict):
                parent[path[-1]][draw(st.text(max_size=8))] = draw(HOSTILE)
        except (KeyError, IndexError, TypeError):  # an earlier mutation changed the shape: leave it
            pass
    text = json.dumps(obj, allow_nan=True).encode()
    damage = "none" if extreme else draw(st.sampled_from(["none"] * 12 + ["truncate", "bytes", "deep"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    elif damage == "deep":
        text = b'{"schema": "effbench.resultset/1", "runs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return text


def _snapshot(root: Path, skip: Path) -> dict:
    """Every file and link under `root` outside `skip`, with its content (links: their target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            if skip in p.parents:
                continue
            out[str(p)] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


def _run(data: bytes, command: str, hostile_is_head: bool = True) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good, bad = root / "good", root / "set"
        good.mkdir(), bad.mkdir()
        (good / "results.json").write_text(json.dumps(BASE))
        (bad / "results.json").write_bytes(data)
        victims = root / "outside"
        victims.mkdir()
        (victims / "victim.md").write_text("must survive")
        (victims / "victim.png").write_text("must survive")
        # Planted links where the readers write: a write must replace them, never follow them.
        os.symlink(victims / "victim.md", bad / "README.md")
        os.symlink(victims / "victim.png", bad / "pareto_infer.png")
        before = _snapshot(root, bad)
        argv = {
            "show": ["show", str(bad)],
            "compare": ["compare", str(good), str(bad)] if hostile_is_head else ["compare", str(bad), str(good)],
            "plot": ["plot", str(bad)],
            "report": ["report", str(bad), "--baseline", str(good)]
            if hostile_is_head
            else ["report", str(good), "--baseline", str(bad)],
        }[command]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(argv)  # an exception escaping here is the failure this test looks for
        message = err.getvalue()
        assert rc in ((0, 1, 2, 3) if command in ("compare", "report") else (0, 2)), (rc, message)
        if rc == 2:
            assert message.startswith("effbench: error: ") and (
                str(bad) in message or "refusing to compare" in message
            ), message
        after = _snapshot(root, bad)
        if command == "report" and not hostile_is_head:  # the README goes into the good set's folder
            after = {
                k: v for k, v in after.items() if not Path(k).is_relative_to(good) or k == str(good / "results.json")
            }
            before = {
                k: v for k, v in before.items() if not Path(k).is_relative_to(good) or k == str(good / "results.json")
            }
        assert after == before, "a file outside the hostile result set's folder changed"


FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    data=st.one_of(hostile_files(), hostile_files(extreme=True)),
    command=st.sampled_from(["show", "compare"]),
    hostile_is_head=st.booleans(),
)
def test_hostile_result_files_show_and_compare(data, command, hostile_is_head):
    _run(data, command, hostile_is_head)


@SLOW
@given(
    data=st.one_of(hostile_files(), hostile_files(extreme=True)),
    command=st.sampled_from(["plot", "report"]),
    hostile_is_head=st.booleans(),
)
def test_hostile_result_files_plot_and_report(data, command, hostile_is_head):
    _run(data, command, hostile_is_head)


def _write(tmp_path, obj_or_text) -> Path:
    d = tmp_path / "set"
    d.mkdir(exist_ok=True)
    text = obj_or_text if isinstance(obj_or_text, (str, bytes)) else json.dumps(obj_or_text, allow_nan=True)
    (d / "results.json").write_bytes(text.encode() if isinstance(text, str) else text)
    return d


def _with(path: tuple, value) -> dict:
    obj = copy.deepcopy(BASE)
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


@pytest.mark.parametrize(
    "obj,match",
    [
        (_with(("runs", 0, "metrics", "accuracy", "value"), float("nan")), "NaN is not a number"),
        (_with(("runs", 0, "metrics", "accuracy", "value"), float("inf")), "Infinity is not a number"),
        ('{"schema": "effbench.resultset/1", "runs": [], "x": 1e999}', "overflows"),
        (_with(("runs", 0, "metrics", "steps", "value"), 10**30), "beyond 64 bits"),
        (
            _with(("runs", 0, "metrics", "steps", "value"), 1e31),
            r"runs\[0\]: invalid result data:\n  metrics.steps.value: Input should be less than or equal to 10{30} \(got 1e\+31\)",
        ),
        (_with(("runs", 0, "curves"), _nested(40)), "nested deeper than the 32 levels"),
        ('{"schema": "effbench.resultset/1", "runs": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested deeper"),
        (
            _with(("runs", 1, "id"), "../../outside"),
            r"runs\[1\]: invalid result data:\n  id: String should match pattern",
        ),
        (
            _with(("runs", 0, "metrics", "accuracy", "stderr"), -0.1),
            r"stderr: Input should be greater than or equal to 0",
        ),
        (
            _with(("runs", 0, "spec", "techniques"), [{"name": 5}]),
            r"  spec.techniques\[0\].name: Input should be a valid string",
        ),
        (_with(("runs", 0, "data", "train_sha256"), 12), "train_sha256 must be a text hash"),
        (
            _with(("runs", 1, "metrics", "decode_tokens_per_s.bX"), {"value": 1.0}),
            "batch size after 'decode_tokens_per_s.b'",
        ),
        (_with(("runs", 0, "metrics", "train_wall_s", "samples"), [1.0, 0.0]), "samples in 's' must be > 0"),
        (_with(("target", "fraction"), 0), r"target.fraction: Input should be greater than 0"),
    ],
)
def test_hostile_values_get_a_clear_error(tmp_path, capsys, obj, match):
    d = _write(tmp_path, obj)
    with pytest.raises(results.ResultError, match=match) as e:
        results.load(d)
    assert str(d / "results.json") in str(e.value)
    assert cli.main(["show", str(d)]) == 2
    assert capsys.readouterr().err.startswith(f"effbench: error: {d / 'results.json'}")


def test_oversized_file_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    d = tmp_path / "set"
    d.mkdir()
    with open(d / "results.json", "wb") as f:  # sparse: no data written, the size alone is over the limit
        f.truncate(results.MAX_FILE_BYTES + 1)
    parse = results.parse
    monkeypatch.setattr(results, "parse", lambda *a: pytest.fail("an oversized file must be refused before parsing"))
    assert cli.main(["show", str(d)]) == 2
    assert (
        f"{results.MAX_FILE_BYTES + 1} bytes is over the {results.MAX_FILE_BYTES}-byte limit" in capsys.readouterr().err
    )
    with pytest.raises(results.ResultError, match="limit"):  # the same limit on bytes already read
        parse(b" " * (results.MAX_FILE_BYTES + 1), "text")


def test_symlinked_output_files_are_replaced_never_followed(tmp_path):
    good = _write(tmp_path, BASE)
    outside = tmp_path / "outside.md"
    outside.write_text("not yours\n")
    os.symlink(outside, good / "README.md")
    os.symlink(outside, good / "pareto_finetune.png")
    assert cli.main(["report", str(good), "--baseline", str(good)]) in (0, 3)
    assert outside.read_text() == "not yours\n"
    assert not (good / "README.md").is_symlink() and "# effbench result set" in (good / "README.md").read_text()
    assert not (good / "pareto_finetune.png").is_symlink()


def test_a_symlinked_output_folder_is_refused(tmp_path):
    good = _write(tmp_path, BASE)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, good / "figures")
    with pytest.raises(results.ResultError, match="outside the result folder"):
        results.output_file(good, "figures/pareto_infer.png")
    assert not list(outside.iterdir())


@pytest.mark.parametrize("name", ["../x.png", "/tmp/x.png", "a/../../x.png", ""])
def test_output_names_outside_the_folder_are_refused(tmp_path, name):
    with pytest.raises(results.ResultError, match="output"):
        results.output_file(tmp_path, name)


def test_writer_never_produces_nan(tmp_path):
    rs = copy.deepcopy(BASE)
    rs["runs"][0]["metrics"]["final_loss"]["value"] = float("nan")
    rs["runs"][0]["curves"]["loss"] = [1.0, float("inf")]
    results.write_json_atomic(tmp_path / "results.json", rs)
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    got = results.load(tmp_path)
    assert got["runs"][0]["metrics"]["final_loss"] == {
        **rs["runs"][0]["metrics"]["final_loss"],
        "value": None,
        "reason": "the measured value was nan (not finite)",
    }
    assert got["runs"][0]["curves"]["loss"] == [1.0, None]


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_text_from_a_result_file_cannot_break_a_markdown_table():
    """A failure reason or technique name holding `|` and line breaks stays inside its cell: every
    row of every table has its header's column count."""
    from effbench.render import report

    rs = copy.deepcopy(BASE)
    bad = rs["runs"][1]
    bad.update(status="failed", error="Traceback (most recent call last):\n  x | y\r\nValueError: a|b")
    bad["spec"]["techniques"] = [{"name": "evil|name\nmore", "params": {}}]
    md = report.summary_markdown(rs)
    tables = [b for b in md.split("\n\n") if b.lstrip().startswith("|")]
    assert any("Not measured" in md.split(t)[0].rsplit("##", 1)[-1] for t in tables)
    for t in tables:
        lines = t.strip().splitlines()
        assert len({_unescaped_pipes(line) for line in lines}) == 1, t
    assert "x \\| y" in md and "evil\\|name more" in md
