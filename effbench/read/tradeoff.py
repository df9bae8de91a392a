"""Quality and speed in one verdict: each technique run of a result set against its baseline.

For every group with techniques, its baseline is the group of the same scenario, task and model
without techniques (the one with the same budget where there is one). The line states the speed
ratio (geometric mean over replicates: train tokens/s, or decode tokens/s at the largest batch;
"1 replicate vs 3": the technique's count, then the baseline's)
and a paired non-inferiority test of quality (finetune: arith exact match; infer: probe accuracy):
H0 "worse than the baseline by at least `margin`" against "not worse than -margin", one-sided
t-test on paired per-item differences (one seed), or on per-seed accuracy differences over the
common seeds (several seeds, so seed variance counts). margin: the suite's `noninferiority_margin`.
"""

from __future__ import annotations

from effbench.read import cost, replicates, stats

QUALITY = {
    "finetune": ("accuracy", "arith.exact_match", "arith accuracy"),
    "infer": ("probe_acc", "probe.acc", "probe accuracy"),
}


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
    name, items, _ = QUALITY[scenario]
    st, sb = replicates.by_seed(tech, name), replicates.by_seed(base, name)
    common = sorted(set(st) & set(sb))
    if len(common) >= 2:
        d, p = stats.noninferiority(
            [sb[s]["metrics"][name]["value"] for s in common], [st[s]["metrics"][name]["value"] for s in common], margin
        )
        return d, p, f"{len(common)} seeds"
    for s in common:
        it, ib = st[s].get("items", {}).get(items), sb[s].get("items", {}).get(items)
        same_items = (st[s].get("data") or {}).get("eval_sha256") == (sb[s].get("data") or {}).get("eval_sha256")
        if it and ib and len(it) == len(ib) and same_items:
            d, p = stats.noninferiority(ib, it, margin)
            return d, p, f"{len(it)} paired items, seed {s}"
    return None


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
        q = quality_test(g, b, scen, margin) if scen in QUALITY else None
        label = QUALITY[scen][2]
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
