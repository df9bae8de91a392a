"""The unmodified model on whole public splits, beside the SmolLM2 model card (the `card` suite).

For each public task a set scored whole (every item of the split, in lm-eval's formulation and the
card's, `effbench.tasks.public`), one row per weight dtype: lm-eval's `acc` and `acc_norm`, the card
formulation's `acc_norm` (the card's metric), each with its 95% Wilson interval over the split's
items, the card's published figure and the difference. ARC adds a row for the mean of Easy and
Challenge, the figure the card publishes as "ARC" (its interval from the two standard errors, the
splits being independent). Where the same split was scored in two dtypes, what the dtype changes is
paired per item (exact McNemar), formulation by formulation.

The published figures come from another evaluation (lighteval, the original bf16 weights, ARC on its
test split): a difference is a difference of the whole pipeline, not a test of one cause.
"""

from __future__ import annotations

import math

from scipy import stats as sps

from effbench.read import replicates, stats
from effbench.tasks import public

# (figure, metric suffix, formulation) in the order the table shows them
FIGURES = (("lm-eval acc", "acc", ""), ("lm-eval acc_norm", "acc_norm", ""), ("card prompts acc_norm", "acc_norm", "_card"))  # fmt: skip
Z95 = 1.959963984540054
# the card publishes "ARC", the mean of these two, not either alone: their rows carry no card figure
ARC = ("arc_easy", "arc_challenge")


def _wilson(items: list[float]) -> tuple[float, float, float, float]:
    """(accuracy, lo, hi, standard error) of 0/1 scores: the 95% Wilson interval."""
    n, k = len(items), int(round(sum(items)))
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="wilson")
    p = k / n
    return p, float(ci.low), float(ci.high), math.sqrt(p * (1 - p) / n)


def _whole_split_runs(rs: dict) -> list[dict]:
    """The set's unmodified infer runs that scored at least one public task on its whole split."""
    out = []
    for r in replicates.representatives(rs):
        spec = r.get("spec") or {}
        if r.get("status") != "ok" or spec.get("scenario") != "infer" or spec.get("techniques"):
            continue
        pub = (r.get("data") or {}).get("public") or {}
        if any(isinstance(v, dict) and v.get("n_items") == public.base_task(n).n for n, v in pub.items() if n in public.CHOICES):  # fmt: skip
            out.append(r)
    return out


def _dtype(run: dict) -> str:
    spec = run["spec"]
    return spec.get("dtype") or ("bfloat16" if spec.get("device") == "cuda" else "float32")


def _scores(run: dict, task: str, suffix: str, formulation: str) -> list[float] | None:
    """Per-item scores of `task` (formulation `formulation`) if the run scored its whole split."""
    name = task + formulation
    d = ((run.get("data") or {}).get("public") or {}).get(name)
    items = (run.get("items") or {}).get(f"{name}.{suffix}")
    if not isinstance(d, dict) or d.get("n_items") != public.PUBLIC[task].n or not items:
        return None
    return items if len(items) == public.PUBLIC[task].n else None


def rows(rs: dict) -> list[dict]:
    """One row per (task, dtype) scored whole, then ARC's mean where both ARC tasks were: figure ->
    {value, lo, hi} (fractions), the card's figure (percent) and card-formulation minus card (points)."""
    out: list[dict] = []
    by_dtype: dict[str, dict[str, dict]] = {}
    for run in _whole_split_runs(rs):
        for task, t in public.PUBLIC.items():
            figs = {}
            for label, suffix, form in FIGURES:
                items = _scores(run, task, suffix, form)
                if items is not None:
                    v, lo, hi, se = _wilson(items)
                    figs[label] = {"value": v, "lo": lo, "hi": hi, "se": se}
            if not figs:
                continue
            row = {"task": t.title, "key": task, "dtype": _dtype(run), "run": run["id"], "n": t.n,
                   "split": t.split, "figures": figs, "card": None if task in ARC else t.card}  # fmt: skip
            by_dtype.setdefault(row["dtype"], {})[task] = row
    for dtype, tasks in by_dtype.items():
        for task in public.PUBLIC:
            if task in tasks:
                out.append(tasks[task])
            if task == ARC[-1] and all(t in tasks for t in ARC):
                out.append(_arc_mean(tasks, dtype))
    for r in out:
        card = r["figures"].get("card prompts acc_norm")
        r["card_diff"] = None if card is None or r["card"] is None else 100 * card["value"] - r["card"]
    return out


def _arc_mean(tasks: dict, dtype: str) -> dict:
    """The card's "ARC": the mean of ARC-Easy's and ARC-Challenge's accuracies."""
    e, c = tasks["arc_easy"]["figures"], tasks["arc_challenge"]["figures"]
    figs = {}
    for label in e.keys() & c.keys():
        v = (e[label]["value"] + c[label]["value"]) / 2
        se = math.hypot(e[label]["se"], c[label]["se"]) / 2
        figs[label] = {"value": v, "lo": v - Z95 * se, "hi": v + Z95 * se, "se": se}
    return {"task": "ARC (mean of Easy and Challenge)", "key": "arc", "dtype": dtype, "run": "–",
            "n": tasks["arc_easy"]["n"] + tasks["arc_challenge"]["n"], "split": "validation",
            "figures": figs, "card": public.PUBLIC["arc_easy"].card}  # fmt: skip


def dtype_effects(rs: dict) -> list[dict]:
    """For each task and formulation scored whole in float32 and in bfloat16: float32 - bfloat16 on
    the same items, paired (exact McNemar interval)."""
    runs = _whole_split_runs(rs)
    out = []
    for task, t in public.PUBLIC.items():
        for label, suffix, form in FIGURES:
            got = {}
            for run in runs:
                items = _scores(run, task, suffix, form)
                if items is not None:
                    got.setdefault(_dtype(run), items)
            if "float32" in got and "bfloat16" in got:
                o = stats.accuracy(got["bfloat16"], got["float32"])
                changed = sum(1 for a, b in zip(got["bfloat16"], got["float32"]) if (a > 0.5) != (b > 0.5))
                out.append({"task": t.title, "figure": label, "n": t.n, "bf16": sum(got["bfloat16"]) / t.n,
                            "fp32": sum(got["float32"]) / t.n, "diff": o.change, "lo": o.lo, "hi": o.hi,
                            "p": o.p, "changed": changed})  # fmt: skip
    return out
