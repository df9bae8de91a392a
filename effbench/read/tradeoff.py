"""Quality and speed in one verdict: each technique run of a result set against its baseline.

For every group with techniques, its baseline is the group of the same scenario, task and model
without techniques (the one with the same budget where there is one). The line states the speed
ratio (geometric mean over replicates: train tokens/s, or decode tokens/s at the largest batch;
"1 replicate vs 3": the technique's count, then the baseline's)
and a paired non-inferiority test of quality (finetune: arith exact match; infer: the public tasks' pooled acc_norm, the probe in older sets):
H0 "worse than the baseline by at least `margin`" against "not worse than -margin", one-sided
t-test on paired per-item differences (one seed), or on per-seed accuracy differences over the
common seeds (several seeds, so seed variance counts). margin: the suite's `noninferiority_margin`.

The Pareto front's rule (`frontier`, `comparable`), used by the static Pareto figures
(effbench.render.plot) and restated in the site's explorer (effbench/render/site.js, `front`, tested
to agree): a front per comparable group (runs on other data, seeds or budgets never share one);
point a dominates b only where a's interval lies wholly at or beyond b's on both axes and the two
differ, so a point whose interval overlaps a better point's stays on the front.
"""

from __future__ import annotations

import json
import statistics

from effbench.read import cost, replicates, stats

HYPERPARAMETERS = ("lr",)  # budget keys each technique tunes for itself: runs that differ in them still compare
DATA_HASHES = ("train_sha256", "eval_sha256", "probe_sha256")  # the data a run trained and was judged on

QUALITY = {
    "finetune": ("accuracy", "arith.exact_match", "arith accuracy"),
    "infer": ("probe_acc", "probe.acc", "probe accuracy"),  # sets measured before the public tasks
}
PUBLIC = ("public_acc_norm", "public.acc_norm", "public-task acc_norm")  # HellaSwag, ARC, PIQA pooled
# Real-data fine-tuning tasks (effbench.tasks.heldout): accuracy on the held-out side, per-item acc
HELD_OUT_QUALITY = {"sst2": ("accuracy", "sst2.acc", "SST-2 accuracy")}


def quality(scenario: str, runs: list[dict]) -> tuple[str, str, str]:
    """(metric, items key, label) of the headline quality of `runs` (one set's, or a pair of groups):
    for inference the public tasks' pooled acc_norm where every run that has a quality figure has
    it, else the probe (older sets); for fine-tuning the task accuracy."""
    if scenario == "infer":
        q = [
            r
            for r in runs
            if any((r.get("metrics", {}).get(k) or {}).get("value") is not None for k in (PUBLIC[0], "probe_acc"))
        ]
        if q and all((r["metrics"].get(PUBLIC[0]) or {}).get("value") is not None for r in q):
            return PUBLIC
    if scenario == "finetune":
        held = {HELD_OUT_QUALITY.get(r.get("spec", {}).get("task")) for r in runs}
        if len(held) == 1 and None not in held:
            return held.pop()
    return QUALITY[scenario]


def baseline_of(members: list[dict], all_groups: list[list[dict]]) -> list[dict] | None:
    p = replicates.primary(members)["spec"]
    cands = [
        g
        for g in all_groups
        if not replicates.primary(g)["spec"].get("techniques")
        and all(replicates.primary(g)["spec"].get(k) == p.get(k) for k in ("scenario", "task", "model", "device"))
    ]
    same = [g for g in cands if replicates.primary(g)["spec"].get("budget") == p.get("budget")]
    return (same or cands or [None])[0]


def speed_name(scenario: str, run: dict) -> tuple[str | None, str]:
    if scenario == "finetune":
        return "train_tokens_per_s", "train tokens/s"
    _, key = cost.largest_batch_decode(run)
    return key, f"decode tokens/s (b{key.rsplit('.b', 1)[1]})" if key else "decode"


def quality_test(tech: list[dict], base: list[dict], scenario: str, margin: float) -> tuple[float, float, str] | None:
    """(mean difference, p, how) of the non-inferiority test, or None where nothing pairs."""
    name, items, _ = quality(scenario, tech + base)
    st, sb = replicates.by_seed(tech, name), replicates.by_seed(base, name)
    common = sorted(set(st) & set(sb))
    if len(common) >= 2:
        d, p = stats.noninferiority(
            [sb[s]["metrics"][name]["value"] for s in common], [st[s]["metrics"][name]["value"] for s in common], margin
        )
        return d, p, f"{len(common)} seeds"
    for s in common:
        it, ib = st[s].get("items", {}).get(items), sb[s].get("items", {}).get(items)
        same_items = all(
            (st[s].get("data") or {}).get(k) == (sb[s].get("data") or {}).get(k) for k in ("eval_sha256", "public")
        )
        if it and ib and len(it) == len(ib) and same_items:
            d, p = stats.noninferiority(ib, it, margin)
            return d, p, f"{len(it)} paired items, seed {s}"
    return None


def generation_speedups(members: list[dict]) -> dict[str, float]:
    """generate() tokens/s over plain greedy's, interleaved in the same process (infer workload's
    generation measurement), median over replicates, per prompt: {"copy": x, "novel": y}."""
    out = {}
    for label, prompt in (("copy", "repeat"), ("novel", "novel")):
        ratios = []
        for r in replicates.ok(members):
            a = (r["metrics"].get(f"generate_tokens_per_s.{prompt}") or {}).get("value")
            b = (r["metrics"].get(f"generate_greedy_tokens_per_s.{prompt}") or {}).get("value")
            if a and b:
                ratios.append(a / b)
        if ratios:
            out[label] = statistics.median(ratios)
    return out


def replicate_counts(n_tech: int, n_base: int) -> str:
    """How many replicates the ratio rests on, the technique's first: "1 replicate vs 3", "3 replicates each"."""
    if n_tech == n_base:
        return f"{n_tech} replicate{'s' if n_tech > 1 else ''} each"
    return f"{n_tech} replicate{'s' if n_tech > 1 else ''} vs {n_base}"


def lines(rs: dict, margin: float | None = None) -> list[str]:
    margin = rs.get("noninferiority_margin", 0.01) if margin is None else margin
    gs = [g for g in replicates.groups(rs).values() if replicates.primary(g)["status"] == "ok"]
    out = []
    for g in gs:
        p = replicates.primary(g)
        if not p["spec"].get("techniques"):
            continue
        b = baseline_of(g, gs)
        if b is None:
            continue
        scen = p["spec"]["scenario"]
        key, what = speed_name(scen, p)
        vt, vb = (replicates.values(g, key), replicates.values(b, key)) if key else ([], [])
        speed = (
            f"{replicates.geomean(vt) / replicates.geomean(vb):.2f}x {what} ({replicate_counts(len(vt), len(vb))})"
            if vt and vb
            else f"{what}: not measured"
        )
        gen = generation_speedups(g)
        if gen:
            speed += (
                "; generate() "
                + ", ".join(f"{v:.2f}x on the {k} prompt" for k, v in gen.items())
                + (" (against plain greedy interleaved in the same process)")
            )
        q = quality_test(g, b, scen, margin) if scen in QUALITY else None
        label = quality(scen, g + b)[2]
        if q is None:
            qual = f"{label}: no paired figures to test"
        else:
            d, pv, how = q
            held = (
                f"not worse than -{100 * margin:g} pt"
                if pv < 0.05
                else f"non-inferiority at -{100 * margin:g} pt not shown"
            )
            qual = f"{label} {100 * d:+.1f} pts, {held} (one-sided paired test, p={pv:.3g}, {how})"
        out.append(f"- `{p['id']}` vs `{replicates.primary(b)['id']}`: {speed}; {qual}")
    return out


def public_deltas(rs: dict) -> list[dict]:
    """Each inference technique group's accuracy on each public task (and pooled) against its
    baseline's on the same items: head - base with the paired 95% interval (McNemar, exact) and p.
    Rows only where both sides scored the same item sample of the same data (data.public equal)."""
    gs = [g for g in replicates.groups(rs).values() if replicates.primary(g)["status"] == "ok"]
    out = []
    for g in gs:
        p = replicates.primary(g)
        if p["spec"]["scenario"] != "infer" or not p["spec"].get("techniques"):
            continue
        b = baseline_of(g, gs)
        if b is None:
            continue
        rb = replicates.primary(b)
        db, dh = (rb.get("data") or {}).get("public"), (p.get("data") or {}).get("public")
        if not db or not dh:
            continue
        for key in [k for k in p.get("items", {}) if k.endswith(".acc_norm")]:
            task = key.rsplit(".", 1)[0]
            if task != "public" and (task not in db or db.get(task) != dh.get(task)):
                continue
            ib, ih = rb.get("items", {}).get(key), p["items"][key]
            if not ib or len(ib) != len(ih):
                continue
            o = stats.accuracy(ib, ih, alpha=0.05, margin=rs.get("noninferiority_margin", 0.01))
            out.append(
                {
                    "run": p["id"],
                    "base": rb["id"],
                    "task": task,
                    "n": len(ih),
                    "base_value": sum(ib) / len(ib),
                    "head_value": sum(ih) / len(ih),
                    "diff": o.change,
                    "lo": o.lo,
                    "hi": o.hi,
                    "p": o.p,
                    "method": o.method,
                }
            )
    return out


FINETUNE_PAIRS = (  # (what, items after, items before): each paired on the same items in one run
    ("gain", "{task}.acc", "{task}.acc.unmodified"),
    ("retention (HellaSwag acc_norm)", "hellaswag.acc_norm.after", "hellaswag.acc_norm.before"),
)


def finetune_deltas(rs: dict) -> list[dict]:
    """Per fine-tuning run (every seed) on a real-data task: its held-out accuracy against the
    unmodified model's on the same items (the gain) and HellaSwag after against before (retention),
    each a paired difference with its exact McNemar 95% interval and p; plus, per run group with
    several seeds, the gain's mean and standard deviation across seeds."""
    out = []
    for g in replicates.groups(rs).values():
        for r in sorted(g, key=lambda r: (r["spec"].get("seed", 0), r["spec"].get("replicate", 0))):
            if r["status"] != "ok" or r["spec"]["scenario"] != "finetune" or r["spec"].get("replicate", 0):
                continue
            task = r["spec"].get("task")
            for what, after, before in FINETUNE_PAIRS:
                ia, ib = (
                    (r.get("items") or {}).get(after.format(task=task)),
                    (r.get("items") or {}).get(before.format(task=task)),
                )
                if not ia or not ib or len(ia) != len(ib):
                    continue
                o = stats.accuracy(ib, ia, alpha=0.05, margin=rs.get("noninferiority_margin", 0.01))
                out.append(
                    {
                        "run": r["id"],
                        "group": replicates.primary(g)["id"],
                        "seed": r["spec"].get("seed", 0),
                        "what": what if what != "gain" else f"gain ({task} acc)",
                        "n": len(ia),
                        "before": sum(ib) / len(ib),
                        "after": sum(ia) / len(ia),
                        "diff": o.change,
                        "lo": o.lo,
                        "hi": o.hi,
                        "p": o.p,
                    }
                )
    return out


def seed_spread(rows: list[dict]) -> list[dict]:
    """Per (group, what) with two or more seeds: mean and sample standard deviation of the diffs."""
    import statistics

    by: dict[tuple, list[float]] = {}
    for r in rows:
        by.setdefault((r["group"], r["what"]), []).append(r["diff"])
    return [
        {"group": g, "what": w, "seeds": len(d), "mean": statistics.fmean(d), "sd": statistics.stdev(d)}
        for (g, w), d in by.items()
        if len(d) >= 2
    ]


def _better_or_equal(a: tuple[float, float], b: tuple[float, float], higher: bool) -> bool:
    """Interval a is at least interval b with no overlap (equal points count: exact figures tie)."""
    return a[0] >= b[1] if higher else a[1] <= b[0]


def frontier(
    points: list[tuple], x_higher_better: bool, intervals: list[tuple] | None = None, y_higher_better: bool = True
) -> list[int]:
    """Indices of the points (x, y; the static figures' y is quality, higher is better) that no
    other point dominates beyond the intervals, ordered from the best x to the worst. `intervals[i]`
    = ((x lo, x hi), (y lo, y hi)); without them every point is its own interval (the classic
    front). Point a dominates b only where a's interval lies wholly at or beyond b's on both axes
    and a differs from b: a difference inside the noise never removes a point from the front."""
    iv = intervals or [((x, x), (y, y)) for x, y, *_ in points]
    out = [
        i
        for i, (xi, yi, *_) in enumerate(points)
        if not any(
            j != i
            and _better_or_equal(iv[j][0], iv[i][0], x_higher_better)
            and _better_or_equal(iv[j][1], iv[i][1], y_higher_better)
            and (points[j][0], points[j][1]) != (xi, yi)
            for j in range(len(points))
        )
    ]
    sx, sy = (-1 if x_higher_better else 1), (-1 if y_higher_better else 1)
    return sorted(out, key=lambda i: (sx * points[i][0], sy * points[i][1]))


def comparable(members: list[dict]) -> tuple:
    """What must be equal for two suite runs to share a front: scenario, task, model, device, the
    budget (learning rate aside) and, per seed, the data trained on and judged on."""
    p = replicates.primary(members)
    s = p["spec"]
    budget = {k: v for k, v in (s.get("budget") or {}).items() if k not in HYPERPARAMETERS}
    data = tuple(
        sorted(
            {
                (str(r["spec"].get("seed", 0)), *(str((r.get("data") or {}).get(h) or "") for h in DATA_HASHES))
                for r in replicates.ok(members)
                if not r["spec"].get("timing_only")
            }
        )
    )
    return (
        s["scenario"],
        s.get("task"),
        s.get("model"),
        s.get("device"),
        json.dumps(budget, sort_keys=True),
        data,
    )
