"""The technique contract and its registry.

A technique is a class registered under its exact name, with a frozen config dataclass whose
fields are its parameters. It may change the training data (`prepare_data`), the model
(`apply`, which changes the instance it is given; a wrapper such as peft's PeftModel around
that same instance is allowed, a copy is not), the optimizer (`make_optimizer`), the layout
of fine-tuning batches (`batching`) and the fine-tuning loss (`train_loss`), the KV cache, decode step and generation method of the
inference workload (`kv_cache`, `decode_call`, `generate_kwargs`), and record after the workload
(`finish`). It declares
the scenarios it applies to and what it requires; a technique that does not fit the scenario or
the device is skipped with the reason, never replaced by something else.

Parameters are checked in one place, `build` -> `check_fields`, before any work: each value's
type against the Config annotation, every number finite, and each field a Config lists in its
`ranges` class attribute (`ranges = {"r": at_least(1, 4096)}`: unannotated, so not a field)
inside its Range. `__post_init__` keeps only the checks that relate several fields.

Discovery: every public module of this package (a file in techniques/ whose name does not start
with `_`) is imported the first time the registry is asked, and so are the modules that installed
distributions name under the `effbench.techniques` entry-point group (a plugin package). Adding a
technique is one file: nothing lists the modules. Each class declares its `family` (FAMILIES); every
family list on either side (one quantizer per run, sparsity before quantization, the pruning
curves) is derived from it through `family_members`.

Techniques know nothing about suites, files or reports: they see a `Context`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import math
import pkgutil
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


# What a technique is, for the checks and figures that treat a family alike.
FAMILIES: dict[str, str] = {
    "baseline": "changes nothing (the reference run)",
    "adapter": "trains small added weights instead of the model's own (LoRA, QLoRA)",
    "optimizer": "replaces the training optimizer (8-bit Adam)",
    "activation_memory": "trades compute for activation memory (checkpointing)",
    "quantizer": "stores weights in fewer bits (one per run)",
    "sparsifier": "zeroes weights (one per run; before any quantizer)",
    "data_pruner": "keeps a subset of the training data",
    "kernels": "replaces operations by fused kernels",
    "compiler": "compiles the model's forward into fused code (torch.compile)",
    "batching": "changes how training examples are laid out in a batch (packing)",
    "attention": "chooses the attention kernel the model's layers run (SDPA backend)",
    "decoding": "changes how tokens are generated: the KV cache, assisted decoding",
    "precision": "runs the training matmuls in a narrower number format (float8)",
    "transfer": "trains a smaller student from the full model's outputs (distillation)",
}
ONE_PER_RUN = ("quantizer", "sparsifier")  # a run takes at most one technique of each of these families
ENTRY_POINT_GROUP = "effbench.techniques"


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
    family: ClassVar[str] = ""  # a key of FAMILIES
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

    def check_budget(self, scenario: str, budget: Any) -> None:
        """Raise TechniqueError where the run's budget leaves this technique nothing to act on
        (prompt_lookup without the generation measurement); runs before any model loads."""

    # -- the hooks -----------------------------------------------------------------------------
    def prepare_data(self, data: Any, ctx: Context) -> Any:
        return data

    def apply(self, model: Any, ctx: Context) -> Any:
        return model

    def make_optimizer(self, params: list, ctx: Context) -> Any | None:
        """Return an optimizer for `params`, or None to leave the harness's AdamW."""
        return None

    def batching(self, ctx: Context) -> Callable[..., dict] | None:
        """The fine-tuning workload's batch builder, `collate(pairs, pad_id, device) -> model
        kwargs` (effbench.child.workloads.common.collate's contract), or None to leave the padded
        one. A batch without `attention_mask` holds no padding: every input token counts."""
        return None

    def train_loss(self, model: Any, batch: dict, out: Any, ctx: Context) -> Any | None:
        """The loss the fine-tuning step backpropagates, from the step's model (as the workload
        holds it), its batch (the batch builder's keyword arguments: input_ids, labels (-100 off
        the answer tokens), attention_mask or, packed, position_ids) and the model's output `out`
        on that batch (out.loss: the answer tokens' cross-entropy; out.logits), computed inside
        the step's autocast and clock; or None to leave out.loss. The last technique that returns
        one wins (distillation's KL against a teacher). The workload's logged loss curve and
        final_loss stay out.loss, so runs compare on the same cross-entropy."""
        return None

    def kv_cache(self, model: Any, batch_size: int, max_cache_len: int, ctx: Context) -> Any | None:
        """The empty KV cache (a transformers Cache for `batch_size` rows of up to `max_cache_len`
        positions) the infer workload's prefill and decode loop fill, or None to leave the
        model's own dynamic cache."""
        return None

    def decode_call(self, model: Any, ctx: Context) -> Callable[..., Any] | None:
        """What the infer workload's decode loop calls for each one-token step (keyword arguments
        input_ids, past_key_values, use_cache), or None for the model itself; prefill always calls
        the model."""
        return None

    def generate_kwargs(self, model: Any, ctx: Context) -> dict[str, Any]:
        """Keyword arguments the infer workload's generation measurement adds to `model.generate`
        (the decoding method: cache implementation, assisted decoding); {} for plain greedy. A
        run whose techniques give any also generates plain greedy and checks the tokens equal."""
        return {}

    def finish(self, model: Any, ctx: Context) -> None:
        """After the workload, before the records are stored: record what only the run itself
        shows (recompilations during the workload)."""

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
_DISCOVERED = False


def discover() -> None:
    """Import every public module of this package and every entry-point module, once."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = importlib.import_module(__package__)
    for mod in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if not mod.startswith("_") and mod != "base":
            importlib.import_module(f"{__package__}.{mod}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken plugin names itself, never hides as a missing technique
            raise TechniqueError(
                f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} "
                f"failed to load: {type(e).__name__}: {e}"
            ) from e


def register(cls: type[Technique]) -> type[Technique]:
    """Class decorator: register a technique under its exact `name`; a collision raises."""
    if not cls.name:
        raise TechniqueError(f"{cls.__qualname__} has no name")
    if cls.family not in FAMILIES:
        raise TechniqueError(f"{cls.name}: family {cls.family!r} is not one of {sorted(FAMILIES)}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TechniqueError(
            f"technique name {cls.name!r} registered twice ({_REGISTRY[cls.name].__qualname__} and {cls.__qualname__})"
        )
    if not (dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen):
        raise TechniqueError(f"{cls.name}: Config must be a frozen dataclass")
    bad = set(cls.scenarios) - set(SCENARIOS)
    if bad:
        raise TechniqueError(f"{cls.name}: unknown scenarios {sorted(bad)}; valid: {SCENARIOS}")
    stray = set(getattr(cls.Config, "ranges", {})) - {f.name for f in dataclasses.fields(cls.Config)}
    if stray:
        raise TechniqueError(f"{cls.name}: Config.ranges names no field: {sorted(stray)}")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Technique]]:
    discover()
    return dict(_REGISTRY)


def family_members(family: str) -> tuple[str, ...]:
    """The registered names of one family, sorted."""
    if family not in FAMILIES:
        raise TechniqueError(f"unknown family {family!r}; valid: {sorted(FAMILIES)}")
    return tuple(sorted(n for n, c in registry().items() if c.family == family))


def get(name: str) -> type[Technique]:
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TechniqueError(f"unknown technique {name!r}; valid: {', '.join(sorted(_REGISTRY))}") from None


@dataclass(frozen=True)
class Range:
    """The valid values of a number (for a tuple field: of each element). Declared per field in a
    config's `ranges` class attribute; `None` bounds are open-ended."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: lo itself is excluded
    hi_open: bool = False

    def __contains__(self, x) -> bool:
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi))

    def __str__(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.lo_open or self.lo is None else '['}{lo}, {hi}{')' if self.hi_open or self.hi is None else ']'}"


def at_least(lo: float, hi: float | None = None) -> Range:
    return Range(lo, hi)


FRACTION = Range(0.0, 1.0, lo_open=True)  # (0, 1]: a kept fraction
PROBABILITY = Range(0.0, 1.0, hi_open=True)  # [0, 1): dropout, sparsity, betas


def _coerce(owner: str, key: str, value: Any, tp: Any) -> Any:
    """Check one value's type against a dataclass annotation (ints may stand for floats; a bool is
    not an int; lists become tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Literal:
        if value not in args or type(value) is not type(next(a for a in args if a == value)):
            raise TechniqueError(f"{owner} {key}={value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(owner, key, value, a)
            except TechniqueError:
                continue
        raise TechniqueError(f"{owner} {key}={value!r} does not fit {tp}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TechniqueError(f"{owner} {key} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(owner, key, v, inner) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (bool, int, float) and isinstance(value, bool) is not (tp is bool):
        raise TechniqueError(f"{owner} {key} must be {'true/false' if tp is bool else tp.__name__}, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TechniqueError(f"{owner} {key} must be {tp.__name__}, got {value!r}")
    return value


def check_fields(owner: str, cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Type- and range-check `values` for the dataclass `cls` before it is built: each value must fit
    its annotation, every number must be finite, and a field named in `cls.ranges` must lie in its
    Range. Errors name the owner, the key, the value and what is valid. Returns the values coerced
    (ints to floats where a float is declared, lists to tuples)."""
    hints = typing.get_type_hints(cls)
    ranges: dict[str, Range] = getattr(cls, "ranges", {})
    out = {}
    for key, value in values.items():
        v = _coerce(owner, key, value, hints.get(key, Any))
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, float) and not math.isfinite(x):
                raise TechniqueError(f"{owner} {key}={value!r} is not a finite number")
            r = ranges.get(key)
            if r is not None and isinstance(x, (int, float)) and not isinstance(x, bool) and x not in r:
                raise TechniqueError(f"{owner} {key}={value!r} is out of range; valid: {r}")
        out[key] = v
    return out


def build(name: str, params: dict[str, Any] | None = None) -> Technique:
    """Instantiate a technique from its name and parameters, validating both."""
    cls = get(name)
    if params is not None and not isinstance(params, dict):
        raise TechniqueError(f"{name}: params must be a table of parameter = value, got {params!r}")
    params = dict(params or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise TechniqueError(f"{name}: unknown parameter(s) {unknown}; valid: {sorted(fields) or 'none'}")
    checked = check_fields(f"{name}: parameter", cls.Config, params)
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
    for fam in ONE_PER_RUN:
        same = [t.name for t in techs if t.family == fam]
        if len(same) > 1:
            raise TechniqueError(
                f"{same[0]} cannot be combined with {same[1]} in one run ({names}): a run takes at most one {fam}"
            )
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
        if t.train_needs_after and not set(names[i + 1 :]) & set(t.train_needs_after):
            raise TechniqueError(
                f"{t.name} in a fine-tuning run must be followed by one of {list(t.train_needs_after)} (got {names})"
            )
