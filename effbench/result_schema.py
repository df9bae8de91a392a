"""The shape of a result set as the reading side uses it: types and ranges of every field that
`show`, `compare`, `plot` and `report` read, checked when a file is loaded (pydantic, strict).

A result file may come from a pull request's own benchmark run, so it is data from an untrusted
source: it is checked in full before any figure is computed from it, and a bad value is reported
with its place in the file (`runs[2].metrics.accuracy.stderr: ...`) instead of surfacing later as a
crash deep inside a table or a plot. Fields the readers do not use may hold anything (JSON), so
newer writers can add fields; results.py limits the file's size, nesting depth and numbers first.

Ranges are those of real measurements with generous headroom: every number is finite with
|x| <= MAX_ABS (1e30), so derived figures (x100, x price, ratios) stay finite; counts are integers
>= 0; fractions and accuracies lie in [0, 1]; stderr, seconds and bytes are >= 0; timing samples
(units of time or rate) are > 0, since the statistics take their logarithms and ratios.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

MAX_ABS = 1e30  # largest magnitude of any number in a result file
MAX_INT = 2**63 - 1  # largest integer (64-bit; byte counts of any real device fit many times over)
# A run id names a folder of the result set (its log, its spec): one plain path component.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,127}$"  # `@`: replicate members (<group>@s<seed>r<rep>)
RUN_ID_RE = re.compile(RUN_ID_PATTERN)
TIMING_UNITS = {"s", "ms", "us", "tokens/s", "J", "GB/s"}  # samples in these units must be > 0
BATCH_METRICS = ("decode_tokens_per_s.b", "prefill_tokens_per_s.b", "decode_latency_p50_ms.b")  # name.b<batch>

Num = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS, le=MAX_ABS)]
NonNeg = Annotated[float, Field(allow_inf_nan=False, ge=0, le=MAX_ABS)]
Positive = Annotated[float, Field(allow_inf_nan=False, gt=0, le=MAX_ABS)]
Fraction = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Text = Annotated[str, StringConstraints(max_length=100_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]
Sha = Annotated[str, StringConstraints(max_length=128)]


class _Obj(BaseModel):
    """Strict: no coercion ("1" is not 1, true is not 1); unknown fields are kept unchecked."""
    model_config = ConfigDict(strict=True, extra="allow")


class Metric(_Obj):
    value: Num | None
    reason: Text | None = None
    unit: Name | None = None
    higher_is_better: bool | None = None
    samples: list[Num] | None = None
    stderr: NonNeg | None = None
    n: Count | None = None
    method: Text | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.value is None and not self.reason:
            raise ValueError("a missing value (null) needs a reason")
        if self.samples is not None and self.unit in TIMING_UNITS and any(s <= 0 for s in self.samples):
            raise ValueError(f"samples in {self.unit!r} must be > 0")
        return self


class TechniqueSpec(_Obj):
    name: Name
    params: dict[str, Any] = {}


class Spec(_Obj):
    id: RunId | None = None
    scenario: Literal["finetune", "infer"]
    model: Name | None = None
    task: Name | None = None
    techniques: list[TechniqueSpec] = []
    budget: dict[str, Any] = {}
    seed: int | None = None
    device: Name | None = None
    group: RunId | None = None  # version 2: the suite run this member belongs to
    replicate: Count | None = None
    threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    timing_only: bool | None = None


class ModelRecord(_Obj):
    name: Name | None = None
    weights_sha256: Sha | None = None


class Data(_Obj):
    n_train: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None
    n_train_kept: Count | None = None
    kinds: dict[str, Count] = {}

    @model_validator(mode="after")
    def _hashes_are_text(self):
        """compare reads every *sha256 field, one level of nesting deep, as text."""
        for k, v in (self.model_extra or {}).items():
            inner = v.items() if isinstance(v, dict) else [(k, v)]
            for kk, vv in inner:
                if kk.endswith("sha256") and not isinstance(vv, str):
                    raise ValueError(f"{k}{'.' + kk if kk != k else ''} must be a text hash, got {type(vv).__name__}")
        return self


class Setup(_Obj):
    wall_s: NonNeg = 0.0
    per_technique: dict[str, NonNeg] = {}


class CurvePoint(_Obj):
    train_wall_s: NonNeg
    accuracy: Fraction
    stderr: NonNeg | None = None
    step: Count | None = None


class Curves(_Obj):
    accuracy_vs_time: list[CurvePoint] = []


class Pruning(_Obj):
    strategies: list[Name] = []
    kept_fraction: Fraction | None = None
    kept_tokens: Count | None = None
    scoring_tokens: Count | None = None
    kinds_before: dict[str, Count] = {}
    removed_by_kind: dict[str, Count] = {}
    precision: Fraction | None = None
    recall: Fraction | None = None


class TechniqueRecords(_Obj):
    pruning: Pruning | None = None


class Run(_Obj):
    id: RunId
    spec: Spec
    status: Literal["ok", "skipped", "failed", "oom", "timeout"]
    reason: Text | None = None
    error: Text | None = None
    env: dict[str, Any] = {}
    model: ModelRecord = ModelRecord()
    data: Data = Data()
    setup: Setup = Setup()
    wall_s: NonNeg | None = None
    metrics: dict[Name, Metric] = {}
    curves: Curves = Curves()
    items: dict[Name, list[Num]] = {}
    technique_records: TechniqueRecords = TechniqueRecords()

    @model_validator(mode="after")
    def _batch_names(self):
        for name in self.metrics:
            for prefix in BATCH_METRICS:
                if name.startswith(prefix) and not name[len(prefix):].isdigit():
                    raise ValueError(f"metric {name!r}: the batch size after {prefix!r} must be an integer")
        return self


class Git(_Obj):
    sha: Sha | None = None
    dirty: bool | None = None


class Env(_Obj):
    device: Name | None = None
    device_name: Text | None = None
    torch_threads: Count | None = None
    libraries: dict[str, Text | None] = {}


class Target(_Obj):
    fraction: Annotated[float, Field(allow_inf_nan=False, gt=0, le=1)] = 0.9
    reference: Text | None = None


class KernelRecord(_Obj):
    kernel: Name
    impl: Name
    pass_: Name = Field(alias="pass")
    tokens: Annotated[int, Field(ge=1, le=MAX_INT)]
    dtype: Name | None = None
    hidden: Count | None = None
    median_ms: Positive | None = None
    frac_peak_bw: NonNeg | None = None


class ResultSet(_Obj):
    suite: Text | None = None
    description: Text = ""
    created_utc: Text | None = None
    git: Git = Git()
    env: Env = Env()
    price_per_hour: NonNeg | None = None
    price_source: Text = ""
    target: Target = Target()
    runs: list[Run]
    kernels: list[KernelRecord] | None = None
    kernels_missing: Text | None = None


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after", "list", "dict", "int", "float", "str", "bool", "none") and "[" not in str(part):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problems(obj: Any, model: type[BaseModel] = ResultSet, limit: int = 5) -> list[str]:
    """The first `limit` problems of `obj` as '<place in the file>: <what is wrong> (got <value>)'."""
    try:
        model.model_validate(obj)
    except ValidationError as e:
        out = []
        for err in e.errors(include_url=False)[:limit]:
            got = repr(err.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            out.append(f"{_where(err['loc'])}: {err['msg']} (got {got})")
        n = e.error_count()
        return out + ([f"... and {n - limit} more"] if n > limit else [])
    return []
