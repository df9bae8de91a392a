"""Every registered technique honours the contract on the `tiny` model: it builds from its name
and default parameters, rejects unknown parameters naming the valid ones, says why it cannot run
rather than running something else, never touches the eval split, and `apply` changes the
instance it was given (or wraps that same instance) and leaves a model that still computes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from effbench import tasks
from effbench.techniques import TechniqueError, build, build_all, get, registry

NAMES = sorted(registry())


@pytest.fixture(autouse=True)
def eager_compile(monkeypatch):
    """torch.compile through Dynamo's capture with the eager backend: the contract needs the
    captured graphs to run, and Inductor's C++ build takes about 40 s a graph of `tiny` on 2 cores
    (tests/test_torch_compile.py compiles a toy module for real)."""
    real = torch.compile

    def eager(fn, *args, mode=None, dynamic=None, **kwargs):
        return real(fn, backend="eager", dynamic=dynamic)

    monkeypatch.setattr(torch, "compile", eager)


def test_registry_has_baseline_and_unknown_name_lists_valid():
    assert "baseline" in NAMES
    with pytest.raises(TechniqueError) as e:
        get("lora-typo")
    assert "lora-typo" in str(e.value) and "baseline" in str(e.value)


def test_no_substring_matching():
    with pytest.raises(TechniqueError):
        get("base")


@pytest.mark.parametrize("name", NAMES)
def test_config_is_frozen_and_unknown_param_rejected(name):
    t = build(name)
    assert dataclasses.is_dataclass(t.config) and type(t.config).__dataclass_params__.frozen
    for f in dataclasses.fields(t.config):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(t.config, f.name, getattr(t.config, f.name))
    with pytest.raises(TechniqueError) as e:
        build(name, {"no_such_parameter": 1})
    assert "no_such_parameter" in str(e.value) and "valid" in str(e.value)
    assert t.to_dict()["name"] == name


@pytest.mark.parametrize("name", NAMES)
def test_ill_typed_parameter_rejected(name):
    fields = [f for f in dataclasses.fields(get(name).Config)]
    if not fields:
        pytest.skip(f"{name} has no parameters")
    with pytest.raises(TechniqueError):
        build(name, {fields[0].name: {"not": "a valid value"}})


def test_listed_twice_rejected():
    with pytest.raises(TechniqueError, match="twice"):
        build_all([{"name": "baseline"}, {"name": "baseline"}])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scenario", ["train", "infer"])
def test_apply_and_prepare_data_on_tiny(name, scenario, tiny, ctx_factory):
    t = build(name)
    why = t.skip_reason(scenario, "cpu")
    if why is not None:
        assert isinstance(why, str) and name in why  # a reason that names the technique
        return
    make, tok = tiny
    ctx = ctx_factory(scenario, (name,))
    data = tasks.load("arith-noisy", n_train=48, n_eval=8, seed=0)
    eval_before = list(data.eval)
    data2 = t.prepare_data(data, ctx)
    assert data2.eval == eval_before, "a technique must never touch the eval split"
    assert 0 < len(data2.train) <= 48
    model = make(0)
    inner_id = id(model)
    out = t.apply(model, ctx)
    base = out.get_base_model() if hasattr(out, "get_base_model") else out
    assert id(base) == inner_id, "apply must change and return the instance it was given (or wrap it)"
    ids = tok("12 + 34 =", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = out(input_ids=ids).logits
    assert logits.shape[-1] == 49152 and torch.isfinite(logits.float()).all()


def test_scenario_dependent_combination_fails_before_work():
    from effbench import runspec

    spec = runspec.RunSpec(id="x", scenario="finetune", model="tiny", techniques=({"name": "nf4"},))
    if "nf4" not in NAMES:
        pytest.skip("nf4 not registered")
    with pytest.raises(runspec.ConfigError, match="lora"):
        runspec.validate(spec)
    runspec.validate(
        runspec.RunSpec(id="y", scenario="finetune", model="tiny", techniques=({"name": "nf4"}, {"name": "lora"}))
    )
    runspec.validate(runspec.RunSpec(id="z", scenario="infer", model="tiny", techniques=({"name": "nf4"},)))
