"""Sweeps: one [[sweep]] table of a suite expands into one run per value of its axis.

    [[sweep]]
    id = "infer-magnitude"                       # prefix of the generated run ids
    scenario = "infer"
    techniques = [{name = "magnitude"}, {name = "nf4"}]   # a sweep may cross a stack
    axis = "magnitude.sparsity"                  # <technique>.<param> | budget.<key> | technique
    values = [0.3, 0.5, 0.7]
    aggressive = "higher"                        # optional: which end of the axis saves more

Every other key is a [[run]] key (budget, task, seeds, replicates, ...) and applies to every point.
`axis = "technique"` appends each value (a technique name, e.g. "nf4", "int8") to `techniques`:
a bits axis, drawn against the measured bits per weight. Run ids are `<id>-<param><value>`
(`infer-magnitude-sparsity0.3`, `finetune-lora-r16`, `infer-bits-nf4`): the same suite always
gives the same ids. Each generated run carries `spec.sweep = {id, axis, value, aggressive}` and is
validated by config.load_suite like any [[run]] (technique parameter ranges included), so a bad
value fails by name before any work. `aggressive` (default: from AGGRESSIVE by parameter name)
orders the points for the knee: the most aggressive one still non-inferior to the baseline.
"""

from __future__ import annotations

import copy
import re

# Which end of an axis saves more (higher sparsity, lower rank, less kept data, fewer bits).
AGGRESSIVE = {"sparsity": "higher", "fraction": "lower", "r": "lower", "technique": "lower"}
AGGRESSIVE_CHOICES = ("higher", "lower", "none")
ID_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")


class SweepError(ValueError):
    pass


def value_label(v) -> str:
    """A value as it appears in a run id: numbers in shortest form (0.3, 16, 1e-05), text as is
    with characters a file name cannot hold replaced by '-' ("2:4" -> "2-4")."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return format(v, "g")
    return ID_UNSAFE.sub("-", str(v))


def parse_axis(axis: str, where: str) -> tuple[str, str | None]:
    """("technique", None) | ("budget", key) | (technique name, parameter)."""
    if axis == "technique":
        return "technique", None
    owner, dot, param = axis.partition(".")
    if not dot or not owner or not param:
        raise SweepError(f'{where}: axis = {axis!r}; valid: "<technique>.<parameter>", "budget.<key>" or "technique"')
    return owner, param


def expand(table: dict, where: str, keys: set[str]) -> list[tuple[dict, dict]]:
    """(run table, sweep record) for each value of the sweep, in the order of `values`."""
    bad = sorted(set(table) - keys)
    if bad:
        raise SweepError(f"{where}: unknown key(s) {bad}; valid: {sorted(keys)}")
    for k in ("id", "scenario", "axis", "values"):
        if k not in table:
            raise SweepError(
                f"{where}: a [[sweep]] needs {k!r} (keys: id, scenario, axis, values, and any [[run]] key)"
            )
    values = table["values"]
    if not values:
        raise SweepError(f"{where}: values is empty; give the points of the sweep, e.g. [0.3, 0.5, 0.7]")
    if len({repr(v) for v in values}) != len(values):
        raise SweepError(f"{where}: values = {values!r} repeats a value")
    owner, param = parse_axis(table["axis"], where)
    techs = [dict(t) for t in table.get("techniques", [])]
    if owner not in ("technique", "budget") and owner not in [t.get("name") for t in techs]:
        raise SweepError(
            f"{where}: axis {table['axis']!r} names technique {owner!r}, which is not in the sweep's "
            f"techniques {[t.get('name') for t in techs]}"
        )
    aggressive = table.get("aggressive", AGGRESSIVE.get(param or owner, "none"))
    if aggressive not in AGGRESSIVE_CHOICES:
        raise SweepError(f"{where}: aggressive = {aggressive!r}; valid: {list(AGGRESSIVE_CHOICES)}")
    base = {k: v for k, v in table.items() if k not in ("axis", "values", "aggressive")}
    out = []
    for v in values:
        r = copy.deepcopy(base)
        if owner == "technique":
            if not isinstance(v, str):
                raise SweepError(f'{where}: axis "technique" takes technique names, got {v!r}')
            r["techniques"] = techs + [{"name": v}]
            r["id"] = f"{table['id']}-{value_label(v)}"
        elif owner == "budget":
            r["budget"] = {**r.get("budget", {}), param: v}
            r["id"] = f"{table['id']}-{param}{value_label(v)}"
        else:
            r["techniques"] = [
                {**t, "params": {**t.get("params", {}), param: v}} if t.get("name") == owner else t for t in techs
            ]
            r["id"] = f"{table['id']}-{param}{value_label(v)}"
        out.append((r, {"id": table["id"], "axis": table["axis"], "value": v, "aggressive": aggressive}))
    return out
