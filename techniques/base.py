"""The technique contract and its registry.

A technique is a class registered under its exact name, with a frozen config dataclass whose
fields are its parameters. It may change the training data (`prepare_data`), the model
(`apply`, which changes the instance it is given; a wrapper such as peft's PeftModel around
that same instance is allowed, a copy is not) and the optimizer (`make_optimizer`). It declares
the scenarios it applies to and what it requires; a technique that does not fit the scenario or
the device is skipped with the reason, never replaced by something else.

Techniques know nothing about suites, files or reports: they see a `Context`.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

SCENARIOS = ("train", "infer")

# What a technique may require, and how to tell whether this process has it.
REQUIREMENTS: dict[str, str] = {
    "cuda": "an NVIDIA GPU visible to torch",
    "triton": "the triton package",
    "bitsandbytes": "the bitsandbytes package",
    "torchao": "the torchao package",
    "peft": "the peft package",
    "datasketch": "the datasketch package",
}


class TechniqueError(ValueError):
    """Bad technique name, parameter or combination; raised before any expensive work."""


@dataclass
class Context:
    """What a technique may look at while it prepares data or changes a model.

    `records` collects the technique's own measurements (achieved sparsity, bytes, scores);
    they end up under `technique_records` in the run's result, keyed by technique name.
    """

    scenario: str  # "train" | "infer"
    device: str  # "cpu" | "cuda"
    dtype: Any  # torch.dtype the model computes in
    seed: int = 0
    tokenizer: Any = None
    # Returns a fresh, unmodified copy of the run's model (for reference scoring, calibration).
    load_reference_model: Callable[[], Any] | None = None
    # Returns calibration/reference text token ids, shape [n_samples, seq_len] (LongTensor).
    calibration_ids: Callable[[int, int], Any] | None = None
    # Optional knobs the harness passes through (learning rate, batch size, etc.).
    hparams: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    techniques: tuple[str, ...] = ()  # names of every technique in this run, in order

    def record(self, technique: str, key: str, value: Any) -> None:
        self.records.setdefault(technique, {})[key] = value


class Technique:
    """Base class. Subclasses set the class attributes and override what they change."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    requires: ClassVar[tuple[str, ...]] = ()
    # Techniques that must not appear in the same run (names).
    conflicts_with: ClassVar[tuple[str, ...]] = ()
    # In the train scenario, one of these must follow in the list (e.g. `nf4` then `lora`: frozen
    # 4-bit weights need adapters to train).
    train_needs_after: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    # -- checks, before any work -------------------------------------------------------------
    def skip_reason(self, scenario: str, device: str) -> str | None:
        """Why this technique cannot run here (scenario or device), or None when it can."""
        if scenario not in self.scenarios:
            return f"{self.name} applies to scenarios {list(self.scenarios)}, not {scenario!r}"
        for req in self.requires:
            missing = requirement_missing(req, device)
            if missing:
                return f"{self.name} requires {REQUIREMENTS.get(req, req)}: {missing}"
        return None

    # -- the three hooks -----------------------------------------------------------------------
    def prepare_data(self, data: Any, ctx: Context) -> Any:
        return data

    def apply(self, model: Any, ctx: Context) -> Any:
        return model

    def make_optimizer(self, params: list, ctx: Context) -> Any | None:
        """Return an optimizer for `params`, or None to leave the harness's AdamW."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dataclasses.asdict(self.config)}


def requirement_missing(req: str, device: str) -> str | None:
    if req == "cuda":
        if device != "cuda":
            return f"the run's device is {device!r}"
        import torch

        return None if torch.cuda.is_available() else "torch.cuda.is_available() is False"
    if req in REQUIREMENTS:
        return None if importlib.util.find_spec(req) is not None else f"`import {req}` fails"
    raise TechniqueError(f"unknown requirement {req!r}; valid: {sorted(REQUIREMENTS)}")


# -- registry --------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Technique]] = {}


def register(cls: type[Technique]) -> type[Technique]:
    """Class decorator: register a technique under its exact `name`; a collision raises."""
    if not cls.name:
        raise TechniqueError(f"{cls.__qualname__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TechniqueError(f"technique name {cls.name!r} registered twice "
                             f"({_REGISTRY[cls.name].__qualname__} and {cls.__qualname__})")
    if not (dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen):
        raise TechniqueError(f"{cls.name}: Config must be a frozen dataclass")
    bad = set(cls.scenarios) - set(SCENARIOS)
    if bad:
        raise TechniqueError(f"{cls.name}: unknown scenarios {sorted(bad)}; valid: {SCENARIOS}")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Technique]]:
    return dict(_REGISTRY)


def get(name: str) -> type[Technique]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TechniqueError(f"unknown technique {name!r}; valid: {', '.join(sorted(_REGISTRY))}") from None


def _coerce(name: str, fld: dataclasses.Field, value: Any, hints: dict[str, Any]) -> Any:
    """Check one parameter's type against the dataclass annotation (ints may stand for floats)."""
    tp = hints.get(fld.name, Any)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Literal:
        if value not in args:
            raise TechniqueError(f"{name}: parameter {fld.name}={value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, fld, value, {fld.name: a})
            except TechniqueError:
                continue
        raise TechniqueError(f"{name}: parameter {fld.name}={value!r} does not fit {tp}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TechniqueError(f"{name}: parameter {fld.name} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(name, fld, v, {fld.name: inner}) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise TechniqueError(f"{name}: parameter {fld.name} must be true/false, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TechniqueError(f"{name}: parameter {fld.name} must be {tp.__name__}, got {value!r}")
    return value


def build(name: str, params: dict[str, Any] | None = None) -> Technique:
    """Instantiate a technique from its name and parameters, validating both."""
    cls = get(name)
    params = dict(params or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise TechniqueError(f"{name}: unknown parameter(s) {unknown}; valid: {sorted(fields) or 'none'}")
    hints = typing.get_type_hints(cls.Config)
    checked = {k: _coerce(name, fields[k], v, hints) for k, v in params.items()}
    try:
        config = cls.Config(**checked)
    except (TypeError, ValueError) as e:
        raise TechniqueError(f"{name}: {e}") from None
    return cls(config)


def build_all(specs: list[dict[str, Any]]) -> list[Technique]:
    """Build a run's technique list and check the combination before any work starts."""
    techs = [build(s["name"], s.get("params")) for s in specs]
    names = [t.name for t in techs]
    if len(set(names)) != len(names):
        raise TechniqueError(f"technique listed twice in {names}")
    for t in techs:
        for other in t.conflicts_with:
            if other in names:
                raise TechniqueError(f"{t.name} cannot be combined with {other} in one run ({names})")
        check = getattr(t, "check_combination", None)
        if check is not None:
            check(names)
    return techs


def check_scenario(techs: list[Technique], scenario: str) -> None:
    """Checks of a run's technique list that depend on its scenario, before any work starts."""
    names = [t.name for t in techs]
    if scenario != "train":
        return
    for i, t in enumerate(techs):
        if t.train_needs_after and not set(names[i + 1:]) & set(t.train_needs_after):
            raise TechniqueError(f"{t.name} in a fine-tuning run must be followed by one of "
                                 f"{list(t.train_needs_after)} (got {names})")
