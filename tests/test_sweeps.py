"""Sweeps: [[sweep]] expansion (stable ids, the sweep recorded, every value validated, a sweep
crossed with a stack), the knee of a hand-made sweep, and the schema of a sweep point."""

from __future__ import annotations

import gc
import textwrap

import pytest
from _resultsets import infer_run, make_set

from effbench import runspec
from effbench.read import results, sweep_curves
from effbench.run import suites

HEAD = """
[suite]
name = "t"
model = "tiny"
[[run]]
id = "infer-baseline"
scenario = "infer"
"""


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage():
    """suites and result sets hold reference cycles: free them here, not in a later test's memory measurement."""
    yield
    gc.collect()


def suite(tmp_path, body: str) -> suites.Suite:
    p = tmp_path / "s.toml"
    p.write_text(HEAD + textwrap.dedent(body))
    return suites.load_suite(str(p))


STACK = """
[[sweep]]
id = "infer-mag-nf4"
scenario = "infer"
techniques = [{name = "magnitude", params = {include_head = false}}, {name = "nf4"}]
axis = "magnitude.sparsity"
values = [0.3, 0.5, 0.7]
replicates = 2
"""


def test_a_sweep_crossed_with_a_stack_expands_into_one_run_per_value_with_stable_ids(tmp_path):
    s = suite(tmp_path, STACK)
    ids = [r.id for r in s.runs]
    assert ids == [
        "infer-baseline",
        "infer-mag-nf4-sparsity0.3",
        "infer-mag-nf4-sparsity0.5",
        "infer-mag-nf4-sparsity0.7",
    ]
    assert ids == [r.id for r in suite(tmp_path, STACK).runs]  # the same file gives the same ids
    for r, v in zip(s.runs[1:], (0.3, 0.5, 0.7)):
        # the swept parameter is set, the other parameters and the stacked technique stay, in order
        assert r.techniques == (
            {"name": "magnitude", "params": {"include_head": False, "sparsity": v}},
            {"name": "nf4"},
        )
        assert r.sweep == {"id": "infer-mag-nf4", "axis": "magnitude.sparsity", "value": v, "aggressive": "higher"}
        assert r.to_dict()["sweep"]["value"] == v
        assert s.plan[r.id]["replicates"] == 2  # run keys of the sweep apply to every point
    members = s.members()
    assert len(members) == 1 + 3 * 2
    assert {m.id for m in members if m.group == "infer-mag-nf4-sparsity0.5"} == {
        "infer-mag-nf4-sparsity0.5",
        "infer-mag-nf4-sparsity0.5@s0r1",
    }
    # three distinct experiments: match keys differ by the swept value
    assert len({m.match_key() for m in members}) == 4


def test_only_takes_run_ids_and_sweep_ids_and_names_the_valid_choices(tmp_path):
    s = suite(tmp_path, STACK)
    points = ["infer-mag-nf4-sparsity0.3", "infer-mag-nf4-sparsity0.5", "infer-mag-nf4-sparsity0.7"]
    assert [m.group for m in s.members(["infer-mag-nf4"])] == points * 2  # in rounds: each point once, then again
    assert {m.group for m in s.members(["infer-baseline", "infer-mag-nf4-sparsity0.5"])} == {
        "infer-baseline",
        points[1],
    }
    with pytest.raises(runspec.ConfigError) as e:
        s.members(["infer-mag", "infer-baseline"])
    assert (
        "['infer-mag']" in str(e.value) and "sweep ids ['infer-mag-nf4']" in str(e.value) and points[0] in str(e.value)
    )


def test_technique_and_budget_axes(tmp_path):
    s = suite(
        tmp_path,
        """
    [[sweep]]
    id = "infer-bits"
    scenario = "infer"
    axis = "technique"
    values = ["nf4", "fp4", "int8"]
    [[sweep]]
    id = "infer-dec"
    scenario = "infer"
    axis = "budget.decode_tokens"
    values = [8, 16]
    """,
    )
    by = {r.id: r for r in s.runs}
    assert [t["name"] for t in by["infer-bits-fp4"].techniques] == ["fp4"]
    assert by["infer-bits-int8"].sweep["aggressive"] == "lower"
    assert by["infer-dec-decode_tokens16"].budget["decode_tokens"] == 16
    assert by["infer-dec-decode_tokens8"].sweep["aggressive"] == "none"  # no knee on an axis without an aggressive end


@pytest.mark.parametrize(
    "values, bad", [("[1.5, 0.5, 0.7]", "1.5"), ("[0.3, 0.5, 1.0]", "1.0"), ("[0.3, -0.1]", "-0.1")]
)
def test_every_value_is_validated_by_name_before_any_work(tmp_path, values, bad):
    with pytest.raises(runspec.ConfigError) as e:
        suite(tmp_path, STACK.replace("[0.3, 0.5, 0.7]", values))
    msg = str(e.value)
    # the sweep, the axis, the bad value and the technique's valid range
    assert "sweep 'infer-mag-nf4'" in msg and f"magnitude.sparsity = {bad}" in msg and "valid: [0, 1)" in msg


@pytest.mark.parametrize(
    "body, says",
    [
        ('axis = "technique"\nvalues = ["nf4", "int3"]', "int3"),
        ('axis = "lora.r"\nvalues = [2, 4]', "'lora', which is not in the sweep's techniques"),
        ('axis = "magnitude.spars"\nvalues = [0.5]', "spars"),
        ('axis = "sparsity"\nvalues = [0.5]', 'valid: "<technique>.<parameter>"'),
        ('axis = "magnitude.sparsity"\nvalues = []', "values is empty"),
        ('axis = "magnitude.sparsity"\nvalues = [0.5, 0.5]', "repeats a value"),
        ('axis = "magnitude.sparsity"\nvalues = [0.5]\naggressive = "more"', "valid: ['higher', 'lower', 'none']"),
        ('axis = "magnitude.sparsity"\nvalues = [0.5]\nfoo = 1', "unknown key(s) ['foo']"),
        ('axis = "magnitude.sparsity"\nvalues = "0.5"', "values = '0.5' must be list"),
    ],
)
def test_bad_sweeps_are_refused_with_the_reason(tmp_path, body, says):
    with pytest.raises(runspec.ConfigError, match=None) as e:
        suite(tmp_path, f'[[sweep]]\nid = "sw"\nscenario = "infer"\ntechniques = [{{name = "magnitude"}}]\n{body}\n')
    assert says in str(e.value)


def test_a_generated_id_that_collides_with_a_run_is_refused(tmp_path):
    with pytest.raises(runspec.ConfigError, match="repeated"):
        suite(
            tmp_path,
            '[[run]]\nid = "sw-sparsity0.5"\nscenario = "infer"\n'
            '[[sweep]]\nid = "sw"\nscenario = "infer"\ntechniques = [{name = "magnitude"}]\n'
            'axis = "magnitude.sparsity"\nvalues = [0.5]\n',
        )


def test_plain_runs_keep_their_spec_and_a_sweep_point_matches_the_same_plain_run(tmp_path):
    s = suite(
        tmp_path,
        STACK + '[[run]]\nid = "plain"\nscenario = "infer"\nreplicates = 2\n'
        'techniques = [{name = "magnitude", params = {include_head = false, sparsity = 0.5}}, {name = "nf4"}]\n',
    )
    by = {r.id: r for r in s.runs}
    assert "sweep" not in by["infer-baseline"].to_dict()  # match keys of older result sets are unchanged
    assert by["plain"].match_key() == by["infer-mag-nf4-sparsity0.5"].match_key()


def _point(rid, value, probe, aggressive="higher"):
    r = infer_run(rid, [{"name": "magnitude", "params": {"sparsity": value}}], probe=probe)
    r["spec"]["sweep"] = {"id": "mag", "axis": "magnitude.sparsity", "value": value, "aggressive": aggressive}
    return r


def test_sweep_points_and_the_knee_from_the_noninferiority_test():
    base = [1.0] * 30 + [0.0] * 10
    worse = [0.0] * 30 + [1.0] * 0 + [0.0] * 10  # 75 points lower: clearly inferior
    runs = [
        infer_run(probe=base),
        _point("mag-0.7", 0.7, worse),
        _point("mag-0.3", 0.3, base),
        _point("mag-0.5", 0.5, base),
    ]
    (sw,) = sweep_curves.sweeps(make_set(runs))
    assert [p["x"] for p in sw["points"]] == [0.3, 0.5, 0.7]  # sorted along the axis
    assert [p["noninferior"] for p in sw["points"]] == [True, True, False]
    assert sw["knee"]["id"] == "mag-0.5" and sw["base"]["id"] == "infer-baseline"
    # with the cheap end reversed, the knee is the lowest non-inferior value
    runs_low = [infer_run(probe=base)] + [
        _point(r["id"], r["spec"]["sweep"]["value"], r["items"]["probe.acc"], "lower") for r in runs[1:]
    ]
    assert sweep_curves.sweeps(make_set(runs_low))[0]["knee"]["id"] == "mag-0.3"
    # no point non-inferior: no knee
    runs_bad = [infer_run(probe=base), _point("mag-0.3", 0.3, worse)]
    assert sweep_curves.sweeps(make_set(runs_bad))[0]["knee"] is None


def test_a_sweep_point_must_be_well_formed_in_a_result_file():
    r = _point("mag-0.5", 0.5, None)
    make_set([infer_run(), r])  # valid
    bad = dict(r, spec=dict(r["spec"], sweep={"id": "mag", "axis": "magnitude.sparsity", "value": {"x": 1}}))
    with pytest.raises(results.ResultError, match="sweep"):
        make_set([infer_run(), bad])


@pytest.mark.parametrize("name", suites.suite_names())
def test_every_committed_suite_loads_with_its_sweeps_validated(name):
    s = suites.load_suite(name)
    points: dict[str, list] = {}
    for r in s.runs:
        if r.sweep:
            points.setdefault(r.sweep["id"], []).append(r.sweep["value"])
    if name == "cpu":  # `make bench` draws at least one curve: two points beside the baseline's line
        assert max(map(len, points.values())) >= 2
    # the sparsity, bits, LoRA-rank and pruning-fraction curves: on CPU from the two sweep suites
    # (one did not fit 90 minutes on 2 cores), on a GPU from `gpu`
    carriers = {"cpu-sweeps": ("cpu-sweeps", "cpu-sweeps-train"), "gpu": ("gpu",)}.get(name, ())
    axes = {r.sweep["axis"].rpartition(".")[2] for n in carriers for r in suites.load_suite(n).runs if r.sweep}
    assert not carriers or {"sparsity", "technique", "r", "fraction"} <= axes


def test_a_command_line_budget_may_not_replace_a_swept_budget_key(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(HEAD + '[[sweep]]\nid = "dec"\nscenario = "infer"\naxis = "budget.decode_tokens"\nvalues = [8, 16]\n')
    assert [
        r.budget["decode_tokens"] for r in suites.load_suite(str(p), {"budget": {"infer": {"repeats": 2}}}).runs[1:]
    ] == [8, 16]
    with pytest.raises(runspec.ConfigError, match="sweeps budget key 'decode_tokens'"):
        suites.load_suite(str(p), {"budget": {"infer": {"decode_tokens": 4}}})


def test_the_cpu_suites_plain_runs_are_cpu_full_runs_with_the_same_spec():
    """cpu and cpu-full compare run for run (the verdicts issue's check of committed sets): each plain
    run of cpu is in cpu-full under its id with the same spec, seeds aside (cpu-full may add seeds)."""
    cpu, full = suites.load_suite("cpu"), suites.load_suite("cpu-full")
    by_id = {r.id: r for r in full.runs}
    plain = [r for r in cpu.runs if not r.sweep]
    assert len(plain) >= 4
    for r in plain:
        assert r.id in by_id, f"cpu run {r.id} is not in cpu-full"
        assert r.match_key() == by_id[r.id].match_key(), f"cpu run {r.id} differs from cpu-full's"
        mine = cpu.plan.get(r.id) or {"seeds": [r.seed], "replicates": 1}
        theirs = full.plan.get(r.id) or {"seeds": [r.seed], "replicates": 1}
        assert mine["seeds"][0] in theirs["seeds"] and theirs["replicates"] >= mine["replicates"]
