"""Do stacked techniques add up? Each stacked run against the prediction from its single runs.

For a run with two or more techniques (a stack: `magnitude + nf4`, `lora + grad_ckpt + adam8bit`),
its baseline is the run without techniques (tradeoff.baseline_of) and its singles are the runs
with exactly one of its techniques (same name and parameters; same scenario, task, model and
device; the one with the stack's budget where there is one). From them:

- time per token, peak memory, weight bytes: multiplicative. Ratio r = stack / baseline; the
  prediction is the product of the singles' ratios. On logarithms, with L = mean log over a run's
  replicates: interaction D = L_stack - sum_i L_i + (k - 1) L_base for k singles. Its variance
  uses one pooled sd of the log values over every group of the row that has >= 2 replicates
  (replicates of one machine share their noise), s^2 (1/n_stack + sum 1/n_i + (k-1)^2/n_base),
  and a t quantile on the pooled degrees of freedom. Time is 1 / throughput (finetune: train
  tokens/s; infer: decode tokens/s at the largest batch).
- quality loss in points (finetune: arith accuracy; infer: probe accuracy): additive. loss =
  100 (q_base - q); the prediction is the sum of the singles' losses; D = loss_stack - sum loss_i;
  variance from each run's standard error (per item, plus the across-seed sd / sqrt(seeds) where
  there are several seeds), normal quantile.

A row is flagged `better` or `worse than predicted` when the 95% CI of D excludes zero; stored
weight bytes (no run-to-run variation), or any quantity whose replicates do not vary at all, are
flagged when they differ from the prediction by more than 1%. Data-pruning runs (a pruner + LoRA) are left out: the pruning table compares each with
its unpruned twin. Where a single run, a figure or the replicates for a CI are missing, the row says so.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from effbench.read import replicates, runinfo, tradeoff

CONF = 0.95
EXACT_TOL = math.log(1.01)  # a quantity without variation (bytes) is flagged beyond 1%


def _techs(g: list[dict]) -> list[dict]:
    return [
        {"name": t["name"], "params": t.get("params") or {}}
        for t in replicates.primary(g)["spec"].get("techniques") or []
    ]


def singles_of(stack: list[dict], groups: list[list[dict]]) -> tuple[list[list[dict]], list[str]]:
    """(the single-technique group of each of the stack's techniques, names of those missing)."""
    p = replicates.primary(stack)["spec"]
    found, missing = [], []
    for t in _techs(stack):
        cands = [
            g
            for g in groups
            if _techs(g) == [t]
            and all(replicates.primary(g)["spec"].get(k) == p.get(k) for k in ("scenario", "task", "model", "device"))
        ]
        same = [g for g in cands if replicates.primary(g)["spec"].get("budget") == p.get("budget")]
        if same or cands:
            found.append((same or cands)[0])
        else:
            missing.append(t["name"])
    return found, missing


def _logs(g: list[dict], name: str) -> list[float]:
    return [math.log(v) for v in replicates.values(g, name)]


def multiplicative(stack, singles, base, name: str, invert: bool = False, exact: bool = False) -> dict:
    """Measured and predicted ratio to the baseline of metric `name` (1/value where `invert`);
    `exact`: a figure without run-to-run variation (stored bytes), judged by EXACT_TOL."""
    terms = [stack, *singles, base]
    logs = [[-x if invert else x for x in _logs(g, name)] for g in terms]
    if any(not ls for ls in logs):
        return {"reason": f"{name} not measured in every run"}
    k = len(singles)
    L = [float(np.mean(ls)) for ls in logs]
    ls_s, ls_i, ls_b = L[0], L[1:-1], L[-1]
    out = {"measured": math.exp(ls_s - ls_b), "predicted": math.exp(sum(ls_i) - k * ls_b)}
    d = ls_s - sum(ls_i) + (k - 1) * ls_b
    out["interaction"] = math.exp(d)  # measured / predicted
    if exact:
        out["verdict"] = ("worse" if d > 0 else "better") if abs(d) > EXACT_TOL else "as predicted"
        out["note"] = "exact figure: flagged beyond 1%"
        return out
    multi = [ls for ls in logs if len(ls) >= 2]
    if not multi:
        out["reason"] = "one replicate per run: no CI"
        return out
    ss = sum(float(np.sum((np.asarray(ls) - np.mean(ls)) ** 2)) for ls in multi)
    df = sum(len(ls) - 1 for ls in multi)
    sd = math.sqrt(ss / df)
    n = [len(ls) for ls in logs]
    q = float(sps.t.ppf(0.5 + CONF / 2, df))
    se_d = sd * math.sqrt(1 / n[0] + sum(1 / m for m in n[1:-1]) + (k - 1) ** 2 / n[-1])
    se_p = sd * math.sqrt(sum(1 / m for m in n[1:-1]) + k**2 / n[-1])
    lp = sum(ls_i) - k * ls_b
    out.update(
        pred_lo=math.exp(lp - q * se_p),
        pred_hi=math.exp(lp + q * se_p),
        d_lo=math.exp(d - q * se_d),
        d_hi=math.exp(d + q * se_d),
    )
    if sd == 0:
        out["verdict"] = ("worse" if d > 0 else "better") if abs(d) > EXACT_TOL else "as predicted"
        out["note"] = "no variation: flagged beyond 1%"
    else:
        out["verdict"] = "worse" if d - q * se_d > 0 else "better" if d + q * se_d < 0 else "as predicted"
    return out


def _quality(g: list[dict], name: str) -> tuple[float, float] | None:
    s = replicates.seed_summary(g, name)
    if s is None or s["stderr"] is None:
        return None
    var = s["stderr"] ** 2 + ((s["sd"] ** 2 / s["n_seeds"]) if s["sd"] is not None else 0.0)
    return 100 * s["mean"], 100 * math.sqrt(var)


def additive_loss(stack, singles, base, name: str) -> dict:
    """Measured and predicted quality loss (points below the baseline) of metric `name`."""
    qs = [_quality(g, name) for g in (stack, *singles, base)]
    if any(q is None for q in qs):
        return {"reason": f"{name} not measured (with its stderr) in every run"}
    (q_s, se_s), sing, (q_b, se_b) = qs[0], qs[1:-1], qs[-1]
    k = len(singles)
    pred = sum(q_b - q for q, _ in sing)
    meas = q_b - q_s
    d = meas - pred
    z = float(sps.norm.ppf(0.5 + CONF / 2))
    se_d = math.sqrt(se_s**2 + sum(se**2 for _, se in sing) + (k - 1) ** 2 * se_b**2)
    se_p = math.sqrt(sum(se**2 for _, se in sing) + k**2 * se_b**2)
    verdict = "worse" if d - z * se_d > 0 else "better" if d + z * se_d < 0 else "as predicted"
    return {
        "measured": meas,
        "predicted": pred,
        "pred_lo": pred - z * se_p,
        "pred_hi": pred + z * se_p,
        "interaction": d,
        "d_lo": d - z * se_d,
        "d_hi": d + z * se_d,
        "verdict": verdict,
    }


def _memory_name(run: dict) -> str:
    return "peak_allocated_bytes" if "peak_allocated_bytes" in run.get("metrics", {}) else "peak_rss_bytes"


def interactions(rs: dict) -> list[dict]:
    """One record per (stack, quantity): {stack, base, singles, quantity, measured, predicted, ...}."""
    gs = [g for g in replicates.groups(rs).values() if replicates.primary(g)["status"] == "ok"]
    out = []
    for g in gs:
        p = replicates.primary(g)
        if len(_techs(g)) < 2 or runinfo.is_pruning_run(p):  # pruning: its own table, against the unpruned twin
            continue
        head = {"stack": p["id"]}
        base = tradeoff.baseline_of(g, gs)
        singles, missing = singles_of(g, gs)
        if base is None or missing:
            out.append(
                {
                    **head,
                    "quantity": "all",
                    "reason": "no baseline run"
                    if base is None
                    else f"no single run of {', '.join(missing)} in this result set",
                }
            )
            continue
        head.update(base=replicates.primary(base)["id"], singles=[replicates.primary(s)["id"] for s in singles])
        scen = p["spec"]["scenario"]
        speed, _ = tradeoff.speed_name(scen, p)
        qual = tradeoff.quality(scen, [*g, *base, *(r for s in singles for r in s)])
        rows = [
            (
                "time per token (x)",
                multiplicative(g, singles, base, speed, invert=True) if speed else {"reason": "no throughput"},
            ),
            ("peak memory (x)", multiplicative(g, singles, base, _memory_name(p))),
            ("weight bytes (x)", multiplicative(g, singles, base, "weight_bytes", exact=True)),
            (f"{qual[2]} loss (pts)", additive_loss(g, singles, base, qual[0])),
        ]
        out += [{**head, "quantity": q, **r} for q, r in rows]
    return out
