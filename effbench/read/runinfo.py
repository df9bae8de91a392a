"""What one run of a result set says, read by every table, plot and figure of the read side.

Small read-only helpers on the run dicts of effbench.read.results (a metric's value, a technique label,
the peak-memory figure of the device, the price, whether a run is a data-pruning run), kept apart
from report so that report, interactions, sweep_curves and the plots share them without importing
one another.
"""

from __future__ import annotations

import math

from effbench.read import cost


def value(run, name):
    """A metric's value, or None where the run lacks it."""
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")


def finite_word(x) -> str | None:
    """`nan`, `inf` or `-inf` for a non-finite number (shown as the word, never as digits), else None."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return None


def fmt(x, spec: str = ".3g", none: str = "–") -> str:
    return none if x is None else finite_word(x) or format(x, spec)


def pm(run, name, scale=100.0) -> str:
    m = run.get("metrics", {}).get(name)
    if not m or m.get("value") is None:
        return "–"
    se = m.get("stderr")
    v = fmt(scale * m["value"], ".1f")
    out = f"{v} ± {fmt(scale * se, '.1f')}" if se is not None else v
    if m.get("n_seeds"):
        out += f" (sd {scale * (m.get('seed_sd') or 0):.1f}, {m['n_seeds']} seeds)"
    return out


def mib(x) -> str:
    return "–" if x is None else fmt(x / 2**20, ".0f")


def vocab_size(run) -> int | None:
    """The model's vocabulary size: the run's model record (`vocab_size`), else that of the built-in
    models (SmolLM2's tokenizer, shared by `arch:` and `tiny`), else None (an `hf:` model)."""
    model = run.get("model") or {}
    if model.get("vocab_size"):
        return int(model["vocab_size"])
    from effbench.models import SMOLLM2_ARCH

    known = {"smollm2-135m", "arch:smollm2-135m", "tiny"}
    return SMOLLM2_ARCH["vocab_size"] if (model.get("name") or run["spec"].get("model")) in known else None


def techniques_label(run) -> str:
    ts = run["spec"].get("techniques") or []
    if not ts:
        return "(none)"
    parts = []
    for t in ts:
        p = t.get("params") or {}
        parts.append(t["name"] + ("(" + ",".join(f"{k}={v}" for k, v in p.items()) + ")" if p else ""))
    return " + ".join(parts)


def peak_bytes(run):
    return (
        value(run, "peak_allocated_bytes")
        if "peak_allocated_bytes" in run.get("metrics", {})
        else value(run, "peak_rss_bytes")
    )


def price(rs) -> tuple[float | None, str]:
    return cost.price_for(rs.get("env", {}), rs.get("price_per_hour"), rs.get("price_source", ""))


def unchanged_layers(run) -> str:
    """Layers a technique was meant to change but left as they were (technique_records'
    `layers_left_unchanged`, e.g. torchao skipping shapes its kernel cannot take): "–" when none."""
    recs = run.get("technique_records") or {}
    parts = [
        f"{r['layers_left_unchanged']} ({name})"
        for name, r in recs.items()
        if isinstance(r, dict) and r.get("layers_left_unchanged")
    ]
    return ", ".join(parts) or "–"


def is_pruning_run(r) -> bool:
    return r["spec"]["scenario"] == "finetune" and (
        r["spec"].get("task") == "arith-noisy" or "pruning" in (r.get("technique_records") or {})
    )


def unpruned_twin(r, runs):
    """The unpruned run on the same noisy task, model and other techniques (else any unpruned one)."""
    strategies = set(((r.get("technique_records") or {}).get("pruning") or {}).get("strategies", []))
    names = [t["name"] for t in r["spec"].get("techniques") or [] if t["name"] not in strategies]
    plain = [
        q
        for q in runs
        if "pruning" not in (q.get("technique_records") or {})
        and q["spec"].get("task") == r["spec"].get("task")
        and q.get("model", {}).get("name") == r.get("model", {}).get("name")
    ]
    same = [q for q in plain if [t["name"] for t in q["spec"].get("techniques") or []] == names]
    return (same or plain or [None])[0]
