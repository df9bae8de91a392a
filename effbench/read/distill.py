"""Distillation against its control (techniques/distillation.py): each student fine-tuned with the
full model as teacher beside the same student (same `keep_every`, task, budget and seed) fine-tuned
without one (alpha 0). What the teacher buys: the held-out accuracy and HellaSwag retention points it
adds, paired per item (exact McNemar), and what it costs: the extra training seconds (its forward
runs inside every timed step), hence points per extra training second.
"""

from __future__ import annotations

from effbench.read import replicates, stats


def _distill(run: dict) -> dict | None:
    for t in run["spec"].get("techniques") or ():
        if t.get("name") == "distillation":
            return {"keep_every": 2, "alpha": 0.5, "temperature": 2.0, **(t.get("params") or {})}
    return None


def _key(run: dict, params: dict) -> tuple:
    spec = run["spec"]
    others = [t for t in spec.get("techniques") or () if t.get("name") != "distillation"]
    return (spec.get("task"), spec.get("seed", 0), params["keep_every"], repr(others), repr(spec.get("budget")))


def _paired(a: dict, b: dict, key: str) -> dict | None:
    ia, ib = (a.get("items") or {}).get(key), (b.get("items") or {}).get(key)
    if not ia or not ib or len(ia) != len(ib):
        return None
    o = stats.accuracy(ib, ia)
    return {"n": len(ia), "diff": o.change, "lo": o.lo, "hi": o.hi, "p": o.p}


def pairs(rs: dict) -> list[dict]:
    """One row per distilled run with a matching no-teacher control in the set."""
    ok = [r for r in replicates.representatives(rs) if r["status"] == "ok" and r["spec"]["scenario"] == "finetune"]
    controls = {}
    for r in ok:
        p = _distill(r)
        if p and p["alpha"] == 0:
            controls[_key(r, p)] = r
    out = []
    for r in ok:
        p = _distill(r)
        if not p or p["alpha"] == 0 or _key(r, p) not in controls:
            continue
        c = controls[_key(r, p)]
        task = r["spec"].get("task")
        acc_key = "arith.exact_match" if task in ("arith", "arith-noisy") else f"{task}.acc"
        ta = (r.get("metrics", {}).get("train_wall_s") or {}).get("value")
        tc = (c.get("metrics", {}).get("train_wall_s") or {}).get("value")
        acc = _paired(r, c, acc_key)
        ret = _paired(r, c, "hellaswag.acc_norm.after")
        extra = ta - tc if ta is not None and tc is not None else None
        out.append(
            {
                "run": r["id"],
                "control": c["id"],
                "keep_every": p["keep_every"],
                "alpha": p["alpha"],
                "accuracy": acc,
                "retention": ret,
                "train_s": ta,
                "control_train_s": tc,
                "extra_train_s": extra,
                "acc_points_per_extra_s": (100 * acc["diff"] / extra) if acc and extra and extra > 0 else None,
            }
        )
    return out
