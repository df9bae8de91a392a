"""Suites are checked when they load: every budget and technique value for type and range, the file's
tables and keys for their types. Bad values fail with the key, the value and the valid range
(ConfigError), before any model loads; generated suites (hypothesis, TOML text) either load, with
every value inside its declared range, or raise ConfigError, never another exception."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import types
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from effbench import runspec
from effbench.run import suites
from effbench.techniques import TechniqueError, build, registry


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage():
    """hypothesis leaves reference cycles: free them here, not in a later test's memory measurement."""
    yield
    gc.collect()


@pytest.mark.parametrize(
    "scenario,budget,words",
    [
        ("finetune", {"max_steps": -5}, ["max_steps=-5", "[1, 1e+07]"]),
        ("finetune", {"batch_size": 0}, ["batch_size=0", "[1, 4096]"]),
        ("finetune", {"lr": "fast"}, ["lr", "'fast'", "float"]),
        ("finetune", {"lr": float("nan")}, ["lr=nan", "finite"]),
        ("finetune", {"epochs": 0}, ["epochs=0", "(0, 10000]"]),
        ("finetune", {"eval_every": True}, ["eval_every", "True", "int"]),
        ("finetune", {"n_train": 2.5}, ["n_train", "2.5", "int"]),
        ("infer", {"batch_sizes": [0]}, ["batch_sizes=[0]", "[1, 4096]"]),
        ("infer", {"batch_sizes": [], "quality": False}, ["batch_sizes is empty", "measure nothing"]),
        ("infer", {"batch_sizes": 8}, ["batch_sizes", "must be a list"]),
        ("infer", {"prompt_len": 8000, "decode_tokens": 500}, ["8500", "8192"]),
        ("infer", {"ppl_window": 600, "ppl_tokens": 512}, ["ppl_window=600", "ppl_tokens=512"]),
        ("infer", {"extra_tasks": ["hellaswag", 3]}, ["extra_tasks", "str"]),
    ],
)
def test_bad_budget_values_name_key_value_and_range(scenario, budget, words):
    with pytest.raises(runspec.ConfigError) as e:
        runspec.make_budget(scenario, budget)
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize(
    "name,params,words",
    [
        ("random", {"fraction": 1.5}, ["fraction=1.5", "(0, 1]"]),
        ("random", {"fraction": 0}, ["fraction=0", "(0, 1]"]),
        ("lora", {"r": 0}, ["r=0", "[1, 4096]"]),
        ("lora", {"alpha": float("inf")}, ["alpha=inf", "finite"]),
        ("lora", {"dropout": 1.0}, ["dropout=1.0", "[0, 1)"]),
        ("adam8bit", {"beta2": 1.0}, ["beta2=1.0", "[0, 1)"]),
        ("magnitude", {"sparsity": -0.1}, ["sparsity=-0.1", "[0, 1)"]),
        ("wanda", {"seq_len": 1}, ["seq_len=1", "[2, 8192]"]),
        ("el2n", {"fraction": 0.95, "drop_top": 0.1}, ["fraction=0.95", "drop_top=0.1"]),
        ("nf4", {"blocksize": 64.0}, ["blocksize", "int"]),
        ("grad_ckpt", {"every_n_layers": False}, ["every_n_layers", "int"]),
    ],
)
def test_bad_technique_values_name_key_value_and_range(name, params, words):
    with pytest.raises(TechniqueError) as e:
        build(name, params)
    assert e.value.args[0].startswith(name) and all(w in str(e.value) for w in words), str(e.value)


def test_every_declared_range_names_a_field_and_contains_the_default():
    owners = [c.Config for c in registry().values()] + list(runspec.BUDGETS.values())
    for cls in owners:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, r in getattr(cls, "ranges", {}).items():
            default = fields[key].default
            for v in default if isinstance(default, tuple) else (default,):
                assert v is None or v in r, (cls, key, v, r)


# -- generated suites ---------------------------------------------------------------------------
def toml_value(v) -> str:
    """Python value -> TOML (inline tables and arrays; JSON string escapes are TOML's)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(x)}" for k, x in v.items()) + "}"


SCALARS = st.one_of(
    st.booleans(),  # TOML has no null st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 1, -5, 4096, 4097, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.0, 1e-9, 1.5, -0.1]),
    st.text(max_size=8),
    st.sampled_from(["fast", "", "2:4", "nf4", "../x", "float32"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2))
BUDGET_KEYS = {s: [f.name for f in dataclasses.fields(c)] for s, c in runspec.BUDGETS.items()}  # scenario -> keys
TECHNIQUES = sorted(registry())


def typed(tp) -> st.SearchStrategy:
    """Plausible values of an annotated type, straddling the usual bounds (0, 1, 4096, 8192)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([typed(a) for a in args if a is not type(None)])
    if origin in (tuple, list):
        return st.lists(typed(args[0]), max_size=3)
    return {
        bool: st.booleans(),
        int: st.integers(-2, 10_000) | st.sampled_from([0, 1, 4096, 4097, 8192]),
        float: st.floats(-0.5, 2.0) | st.sampled_from([0.0, 1e-4, 0.5, 1.0]),
        str: st.sampled_from(["unstructured", "2:4", "1:3", "q_proj", "hellaswag", "x"]),
    }.get(tp, VALUES)


def field_value(draw, cls, key):
    """Mostly a plausible value of the field's type, sometimes anything."""
    hint = typing.get_type_hints(cls).get(key)
    return draw(typed(hint)) if hint is not None and draw(st.integers(0, 4)) else draw(VALUES)


@st.composite
def params_of(draw, cls) -> dict:
    keys = [f.name for f in dataclasses.fields(cls)]
    chosen = draw(st.sets(st.sampled_from(keys), max_size=3)) if keys else set()
    out = {k: field_value(draw, cls, k) for k in chosen}
    if not draw(st.integers(0, 9)):  # an unknown key now and then
        out[draw(st.text(max_size=4))] = draw(VALUES)
    return out


@st.composite
def technique(draw):
    name = draw(st.sampled_from(TECHNIQUES)) if draw(st.integers(0, 9)) else draw(st.text(max_size=6))
    t = {"name": name}
    if name in registry() and draw(st.booleans()):
        t["params"] = draw(params_of(registry()[name].Config))
    return t if draw(st.integers(0, 19)) else draw(VALUES)  # rarely not a table at all


def budget(scenario: str):
    return params_of(runspec.BUDGETS[scenario])


@st.composite
def suite_tables(draw) -> dict:
    runs = []
    for i in range(draw(st.integers(1, 3))):
        scenario = (
            draw(st.sampled_from(["finetune", "infer"])) if draw(st.integers(0, 9)) else draw(st.text(max_size=4))
        )
        rid = (
            f"run-{i}"
            if draw(st.integers(0, 9))
            else draw(st.sampled_from(["../up", "a b", "", "-x"]) | st.text(max_size=6))
        )
        r = {"id": rid, "scenario": scenario, "techniques": draw(st.lists(technique(), max_size=2))}
        if scenario in BUDGET_KEYS and draw(st.booleans()):
            r["budget"] = draw(budget(scenario))
        if not draw(st.integers(0, 4)):
            for key in draw(st.sets(st.sampled_from(sorted(suites.RUN_KEYS - {"id", "scenario"})), max_size=2)):
                r[key] = draw(VALUES)
        runs.append(r if draw(st.integers(0, 19)) else draw(VALUES))
    head = {"name": "fuzz", "model": "tiny", "device": "cpu"}
    if not draw(st.integers(0, 3)):
        for key in draw(st.sets(st.sampled_from(sorted(suites.SUITE_KEYS)), max_size=2)):
            head[key] = draw(VALUES)
    suite = {
        "suite": head,
        "defaults": {s: draw(budget(s)) for s in draw(st.sets(st.sampled_from(sorted(BUDGET_KEYS)), max_size=2))},
        "run": runs,
    }
    if not draw(st.integers(0, 9)):  # a whole section replaced
        suite[draw(st.sampled_from(["suite", "defaults", "run"]))] = draw(VALUES)
    return suite


def _in_declared_ranges(obj) -> None:
    """Independent of the loader's code path: each accepted value has its declared type and range."""
    hints = {f.name: f.type for f in dataclasses.fields(obj)}
    for key, r in getattr(type(obj), "ranges", {}).items():
        value = getattr(obj, key)
        for v in value if isinstance(value, tuple) else (value,):
            if v is None:
                continue
            assert not isinstance(v, bool) and isinstance(v, (int, float)), (key, v)
            assert math.isfinite(v) and v in r, (key, v, r)
            assert not (hints[key].startswith("int") or hints[key].startswith("tuple[int")) or isinstance(v, int), (
                key,
                v,
            )


def test_timing_replicates_of_a_run_that_times_nothing_are_refused_and_quality_only_loads(tmp_path):
    """batch_sizes = [] is a quality-only run; replicates past quality_replicates only time, so they
    would measure nothing: refused at load, naming the run and the counts."""
    body = 'name = "q"\n[defaults.infer]\nbatch_sizes = []\n[[run]]\nid = "infer-a"\nscenario = "infer"\n'
    path = tmp_path / "q.toml"
    path.write_text(f"[suite]\nreplicates = 1\n{body}")
    assert suites.load_suite(str(path)).runs[0].budget_obj().batch_sizes == ()
    path.write_text(f"[suite]\nreplicates = 3\n{body}")
    with pytest.raises(runspec.ConfigError, match=r"'infer-a'.*replicates = 3.*2 timing-only.*time\s+nothing"):
        suites.load_suite(str(path))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(suite=suite_tables())
def test_generated_suites_load_or_raise_config_error(tmp_path_factory, suite):
    path = tmp_path_factory.mktemp("suite") / "fuzz.toml"
    path.write_text("\n".join(f"{k} = {toml_value(v)}" for k, v in suite.items()) + "\n")
    try:
        loaded = suites.load_suite(str(path))
    except runspec.ConfigError as e:
        assert str(e), "a ConfigError carries its message"
        return
    for spec in loaded.runs:
        _in_declared_ranges(spec.budget_obj())
        for t in spec.techniques:
            _in_declared_ranges(build(t["name"], t.get("params")).config)
        assert runspec.RUN_ID_RE.match(spec.id) and isinstance(spec.seed, int) and spec.seed >= 0


@settings(max_examples=150, deadline=None, database=None)
@given(scenario=st.sampled_from(sorted(BUDGET_KEYS)), data=st.data())
def test_generated_budgets_are_accepted_only_inside_their_ranges(scenario, data):
    overrides = data.draw(budget(scenario))
    try:
        b = runspec.make_budget(scenario, overrides)
    except runspec.ConfigError:
        return
    _in_declared_ranges(b)
