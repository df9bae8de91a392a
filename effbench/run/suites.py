"""Suites: a suite file (benchmarks/<name>.toml) read, checked and expanded into RunSpecs.

A suite lists runs (effbench.runspec.RunSpec); the suite file's tables and keys are checked for
their types here, and each run through runspec.validate, so a bad value fails with the key, the
value and what is valid before any model loads.

Replication: the run (one child process) is the unit of replication. A suite run with
`seeds = [0, 1, 2]` and `replicates = 3` expands (Suite.members) into 9 RunSpecs sharing a `group`
(the suite run's id); each is executed by its own child and recorded as its own RunResult. The
first `quality_replicates` replicates of each seed evaluate quality; the others measure timings
only (`timing_only`: no evaluations), which keeps the suites inside their time budgets.

Sweeps: a `[[sweep]]` table is a run template (the keys of a [[run]]) plus `axis` and `values`;
it expands (effbench.run.sweeps) into one run per value, each validated like any run before any work.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from effbench import models
from effbench.run import sweeps
from effbench.runspec import BUDGETS, ConfigError, RunSpec, member_id, validate
from effbench.techniques import Range

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@dataclass
class Suite:
    name: str
    description: str
    runs: list[RunSpec]
    price_per_hour: float | None = None
    price_source: str = ""
    target_fraction: float = 0.9  # time-to-target: this fraction of the reference run's final accuracy
    target_reference: str = "finetune-full"  # run id whose final accuracy sets the target
    path: str = ""
    kernel_bench: str = "none"  # also run the kernel micro-benchmark (CUDA): none | quick | full
    ceiling: str = "full"  # measure the device's roofline ceiling before the runs: full | quick | none
    plan: dict = field(default_factory=dict)  # run id -> {"seeds": [...], "replicates": n}
    quality_replicates: int = 1  # replicates per seed that evaluate quality; the rest time only
    noninferiority_margin: float = 0.01  # quality-and-speed lines: "not worse than -margin" (fraction)
    timing_margin: float = 0.05  # compare: timings are `same` when their CI lies inside +-this (relative)
    threads: int | None = None

    def sweep_ids(self) -> dict[str, list[str]]:
        """Each sweep's id -> the ids of the runs it expanded into, in suite order."""
        out: dict[str, list[str]] = {}
        for r in self.runs:
            if r.sweep:
                out.setdefault(r.sweep["id"], []).append(r.id)
        return out

    def select(self, only: list[str] | None) -> set[str] | None:
        """The run ids `--only` names: run ids, or sweep ids (all of a sweep's points). Raises
        ConfigError naming every unknown name and the valid choices."""
        if not only:
            return None
        ids, sw = [r.id for r in self.runs], self.sweep_ids()
        unknown = [x for x in dict.fromkeys(only) if x not in ids and x not in sw]
        if unknown:
            raise ConfigError(
                f"unknown run id(s) {unknown}; valid: run ids {ids}" + (f", sweep ids {sorted(sw)}" if sw else "")
            )
        return {i for x in only for i in (sw[x] if x in sw and x not in ids else [x])}

    def members(self, only: list[str] | None = None) -> list[RunSpec]:
        """Every (run, seed, replicate) of the suite as its own RunSpec, in rounds: each run's first
        member in suite order, then each run's second, and so on. A run's replicates and seeds are
        thus spread over the suite's whole duration, so slow drift of a shared machine enters their
        spread (and the test's noise) instead of landing as a difference between two runs measured
        minutes apart, or between two sets measured one after the other. `only`: run ids or sweep
        ids (see select)."""
        chosen = self.select(only)
        per_run = []
        for r in self.runs:
            if chosen is not None and r.id not in chosen:
                continue
            p = self.plan.get(r.id) or {"seeds": [r.seed], "replicates": 1}
            per_run.append(
                [
                    dataclasses.replace(
                        r,
                        id=member_id(r.id, seed, rep, p["seeds"][0]),
                        group=r.id,
                        seed=seed,
                        replicate=rep,
                        timing_only=rep >= self.quality_replicates,
                    )
                    for seed in p["seeds"]
                    for rep in range(p["replicates"])
                ]
            )
        return [m for rnd in itertools.zip_longest(*per_run) for m in rnd if m is not None]


def suite_names() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.toml"))


def suite_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    q = BENCH_DIR / f"{name_or_path}.toml"
    if q.is_file():
        return q
    raise ConfigError(f"unknown suite {name_or_path!r}; valid: {', '.join(suite_names())} (or a path to a .toml file)")


KERNEL_BENCH = ("none", "quick", "full")
CEILING = ("full", "quick", "none")  # the roofline ceiling (effbench.child.ceiling): quick is for tests


def check_count(where: str, key: str, v, lo: int = 1, none_ok: bool = False):
    """An integer >= lo (replicates, threads, quality_replicates)."""
    if v is None and none_ok:
        return v
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{where}: {key}={v!r} must be an integer >= {lo}")
    return v


def check_seeds(where: str, v) -> list[int]:
    if not isinstance(v, (list, tuple)) or not v or any(isinstance(s, bool) or not isinstance(s, int) for s in v):
        raise ConfigError(f"{where}: seeds={v!r} must be a non-empty list of integers, e.g. [0, 1, 2]")
    if len(set(v)) != len(v):
        raise ConfigError(f"{where}: seeds={v!r} repeats a seed")
    return list(v)


# The type of every value a suite file may hold, checked before anything is built from it.
TEXT, NUMBER = (str,), (int, float)
SUITE_TYPES = {
    "name": TEXT,
    "description": TEXT,
    "device": TEXT,
    "model": TEXT,
    "seed": (int,),
    "price_per_hour": NUMBER,
    "price_source": TEXT,
    "target_fraction": NUMBER,
    "target_reference": TEXT,
    "timeout_s": NUMBER,
    "kernel_bench": TEXT,
    "ceiling": TEXT,
    "replicates": (int,),
    "seeds": (list,),
    "threads": (int,),
    "quality_replicates": (int,),
    "noninferiority_margin": NUMBER,
    "timing_margin": NUMBER,
}
SUITE_RANGES = {
    "price_per_hour": Range(0.0, 1e6),
    "target_fraction": Range(0.0, 1.0, lo_open=True),
    "seed": Range(0, 2**32 - 1),
    "timeout_s": Range(1, 10**7),
    "replicates": Range(1, 1000),
    "threads": Range(1, 4096),
    "quality_replicates": Range(0, 1000),
    "noninferiority_margin": Range(0.0, 1.0, hi_open=True),
    "timing_margin": Range(0.0, 1.0, lo_open=True, hi_open=True),
}
RUN_TYPES = {
    "id": TEXT,
    "scenario": TEXT,
    "model": TEXT,
    "task": TEXT,
    "techniques": (list,),
    "budget": (dict,),
    "seed": (int,),
    "device": TEXT,
    "dtype": TEXT,
    "text": TEXT,
    "timeout_s": NUMBER,
    "replicates": (int,),
    "seeds": (list,),
    "threads": (int,),
}
# The keys a [suite] table, a [[run]] and a [[sweep]] may hold: those whose type is declared above.
SUITE_KEYS = set(SUITE_TYPES)
RUN_KEYS = set(RUN_TYPES)
SWEEP_KEYS = RUN_KEYS | {"axis", "values", "aggressive"}


def _check_types(where: str, table: Any, types: dict, ranges: dict | None = None) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    for key, value in table.items():
        want = types.get(key)
        if want and (not isinstance(value, want) or isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} = {value!r} must be {' or '.join(t.__name__ for t in want)}")
        r = (ranges or {}).get(key)
        if r is not None and (value != value or value not in r):
            raise ConfigError(f"{where}: {key} = {value!r} is out of range; valid: {r}")


def check_suite_file(raw: dict, path: Path) -> None:
    """The shape of a parsed suite file: tables where tables belong, and each key's type."""
    _check_types(f"{path}: [suite]", raw.get("suite", {}), SUITE_TYPES, SUITE_RANGES)
    defaults = raw.get("defaults", {})
    _check_types(f"{path}: [defaults]", defaults, {k: (dict,) for k in BUDGETS})
    bad = sorted(set(defaults) - set(BUDGETS))
    if bad:
        raise ConfigError(f"{path}: unknown [defaults.*] scenario(s) {bad}; valid: {sorted(BUDGETS)}")
    for kind in ("run", "sweep"):
        if not isinstance(raw.get(kind, []), list):
            raise ConfigError(f"{path}: `{kind}` must be an array of tables ([[{kind}]]), got {raw[kind]!r}")
    for i, sw in enumerate(raw.get("sweep", [])):
        _check_types(f"{path}: sweep #{i}", sw, {**RUN_TYPES, "axis": TEXT, "values": (list,), "aggressive": TEXT})
    for i, r in enumerate(raw.get("run", []) + raw.get("sweep", [])):
        _check_types(f"{path}: run #{i}", r, RUN_TYPES)
        for t in r.get("techniques", []):
            if (
                not isinstance(t, dict)
                or not isinstance(t.get("name"), str)
                or not isinstance(t.get("params", {}), dict)
            ):
                raise ConfigError(
                    f'{path}: run #{i}: a technique must be {{name = "...", params = {{...}}}}, got {t!r}'
                )


def _read(path: Path) -> dict:
    """The suite file's TOML, its tables and keys type-checked."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text: {e}") from None
    check_suite_file(raw, path)
    bad = sorted(set(raw.get("suite", {})) - SUITE_KEYS)
    if bad:
        raise ConfigError(f"{path}: unknown [suite] key(s) {bad}; valid: {sorted(SUITE_KEYS)}")
    return raw


def _entries(raw: dict, path: Path) -> list[tuple[dict, dict | None]]:
    """(run table, sweep point or None) for every [[run]] and every point of every [[sweep]]."""
    try:
        entries = [(r, None) for r in raw.get("run", [])] + [
            x for i, sw in enumerate(raw.get("sweep", [])) for x in sweeps.expand(sw, f"{path}: sweep #{i}", SWEEP_KEYS)
        ]
    except sweeps.SweepError as e:
        raise ConfigError(str(e)) from None
    for i, (r, _) in enumerate(entries):
        bad = sorted(set(r) - RUN_KEYS)
        if bad:
            raise ConfigError(f"{path}: run #{i}: unknown key(s) {bad}; valid: {sorted(RUN_KEYS)}")
        if "id" not in r or "scenario" not in r:
            raise ConfigError(f"{path}: run #{i} needs an id and a scenario")
    return entries


def _run_spec(r: dict, sweep: dict | None, head: dict, defaults: dict, ov: dict, path: Path, threads) -> RunSpec:
    """One run's spec: its table over the suite's defaults, the command line over both; validated."""
    budget = {**defaults.get(r["scenario"], {}), **r.get("budget", {}), **ov.get("budget", {}).get(r["scenario"], {})}
    swept = sweep["axis"].partition(".")[2] if sweep and sweep["axis"].startswith("budget.") else None
    if swept and swept in ov.get("budget", {}).get(r["scenario"], {}):
        raise ConfigError(
            f"{path}: sweep {sweep['id']!r} sweeps budget key {swept!r}; a command-line --budget "
            f"{swept}=... would replace every point's value: leave it out"
        )
    spec = RunSpec(
        id=r["id"],
        scenario=r["scenario"],
        model=ov.get("model") or r.get("model", head.get("model", models.DEFAULT_MODEL)),
        task=r.get("task", "arith"),
        techniques=tuple(r.get("techniques", ())),
        budget=budget,
        seed=ov.get("seed", r.get("seed", head.get("seed", 0))),
        device=ov.get("device") or r.get("device", head.get("device", "cpu")),
        dtype=r.get("dtype"),
        text=ov.get("text") or r.get("text"),
        timeout_s=r.get("timeout_s", head.get("timeout_s", 3600)),
        threads=ov["threads"]
        if "threads" in ov
        else check_count(f"{path}: run {r['id']!r}", "threads", r.get("threads", threads), none_ok=True),
        sweep=sweep,
    )
    spec = dataclasses.replace(spec, group=spec.id)
    try:
        validate(spec)
    except ConfigError as e:  # a sweep point's error names the sweep, the axis and the value
        raise ConfigError(
            f"{path}: sweep {sweep['id']!r}, {sweep['axis']} = {sweep['value']!r}: {e}" if sweep else str(e)
        ) from None
    return spec


def _members_plan(r: dict, spec: RunSpec, ov: dict, path: Path, seeds, reps: int) -> dict:
    """A run's seeds and replicates: the command line's, else the run's, else the suite's."""
    rw = f"{path}: run {r['id']!r}"
    seeds = ov.get("seeds") or (check_seeds(rw, r["seeds"]) if "seeds" in r else seeds) or [spec.seed]
    if "seed" in ov and "seeds" not in ov:
        seeds = [ov["seed"]]
    reps = ov["replicates"] if "replicates" in ov else check_count(rw, "replicates", r.get("replicates", reps))
    return {"seeds": list(seeds), "replicates": reps}


def _check_timing_replicates(spec: RunSpec, reps: int, q_reps: int, path: Path) -> None:
    """A replicate past quality_replicates only times; an inference run that times nothing
    (batch_sizes = [], no generate) would have it measure nothing at all."""
    if spec.scenario != "infer" or reps <= q_reps:
        return
    if not spec.budget_obj().times_anything:
        raise ConfigError(
            f"{path}: run {spec.id!r}: replicates = {reps} with quality_replicates = {q_reps} makes "
            f"{reps - q_reps} timing-only replicate(s), but batch_sizes = [] and generate_tokens = 0 time "
            "nothing; set replicates <= quality_replicates, or give batch sizes"
        )


def load_suite(name_or_path: str, overrides: dict[str, Any] | None = None) -> Suite:
    """Load and validate a suite. `overrides` (from the CLI) replace suite-level settings:
    device, model, seed, price_per_hour, text, replicates, seeds, threads, and `budget` (merged
    into every run's budget); replicates, seeds and threads from the CLI also replace per-run values."""
    path = suite_path(name_or_path)
    raw = _read(path)
    ov = dict(overrides or {})
    _check_types(
        f"{path}: command-line override", {k: v for k, v in ov.items() if k in SUITE_TYPES}, SUITE_TYPES, SUITE_RANGES
    )
    head, defaults, where = raw.get("suite", {}), raw.get("defaults", {}), str(path)
    s_reps = check_count(where, "replicates", ov.get("replicates", head.get("replicates", 1)))
    s_seeds = ov.get("seeds", head.get("seeds"))
    s_seeds = check_seeds(where, s_seeds) if s_seeds is not None else None
    s_threads = check_count(where, "threads", ov.get("threads", head.get("threads")), none_ok=True)
    q_reps = check_count(where, "quality_replicates", head.get("quality_replicates", 1))
    runs, plan = [], {}
    for r, sweep in _entries(raw, path):
        spec = _run_spec(r, sweep, head, defaults, ov, path, s_threads)
        plan[spec.id] = _members_plan(r, spec, ov, path, s_seeds, s_reps)
        _check_timing_replicates(spec, plan[spec.id]["replicates"], q_reps, path)
        runs.append(dataclasses.replace(spec, seed=plan[spec.id]["seeds"][0]))
    ids = [r.id for r in runs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{path}: run ids repeated: {dup}")
    if not runs:
        raise ConfigError(f"{path}: the suite has no [[run]] or [[sweep]] entries")
    kb = ov.get("kernel_bench") or head.get("kernel_bench", "none")
    if kb not in KERNEL_BENCH:
        raise ConfigError(f"{path}: kernel_bench={kb!r}; valid: {list(KERNEL_BENCH)}")
    ceil = ov.get("ceiling") or head.get("ceiling", "full")
    if ceil not in CEILING:
        raise ConfigError(f"{path}: ceiling={ceil!r}; valid: {list(CEILING)}")
    return Suite(
        name=head.get("name", path.stem),
        description=head.get("description", ""),
        runs=runs,
        price_per_hour=ov.get("price_per_hour", head.get("price_per_hour")),
        price_source="--price-per-hour" if "price_per_hour" in ov else head.get("price_source", ""),
        target_fraction=head.get("target_fraction", 0.9),
        target_reference=head.get("target_reference", "finetune-full"),
        path=str(path),
        kernel_bench=kb,
        ceiling=ceil,
        plan=plan,
        quality_replicates=q_reps,
        noninferiority_margin=float(head.get("noninferiority_margin", 0.01)),
        timing_margin=float(head.get("timing_margin", 0.05)),
        threads=s_threads,
    )
