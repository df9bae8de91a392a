"""The points of each sweep in a result set, its baseline and its knee (read side of effbench.run.sweeps).

A sweep's runs are those whose `spec.sweep.id` is the sweep's. Each point: the swept value (for
`axis = "technique"`: the measured bits per weight of the appended technique), quality (the
headline of tradeoff.quality: finetune, the task's accuracy; infer, the public tasks' pooled acc_norm
where every run scored them, else the probe accuracy) with its per-item stderr and, with several seeds, the
across-seed sd; throughput (train tokens/s, or decode tokens/s at the largest batch; median over
replicates) and memory (infer: weight bytes; finetune: peak bytes), each with its range over
the replicates (`speed_spread`, `memory_bytes_spread`: lo, hi, n), and how many seeds the quality
is the mean of (`n_seeds`) and its chance level (`chance`, where the metric records one). Each point is tested against the
baseline (the run without techniques; for a data-pruning sweep, the unpruned run with the same
other techniques, report's twin) with tradeoff.quality_test, the paired non-inferiority test
at the suite's margin. The knee is the most aggressive point (sweep's `aggressive` end of the
axis) that is non-inferior at p < 0.05; none where no point is, or where the axis has no
aggressive end.
"""

from __future__ import annotations

from effbench.read import replicates, runinfo, tradeoff

ALPHA = 0.05


def axis_param(axis: str) -> str:
    """'magnitude.sparsity' -> 'sparsity'; 'technique' -> 'bits'; 'budget.batch_size' -> 'batch_size'."""
    return "bits" if axis == "technique" else axis.partition(".")[2]


def x_value(run: dict) -> float | None:
    sw = run["spec"]["sweep"]
    if sw["axis"] == "technique":
        rec = (run.get("technique_records") or {}).get(sw["value"]) or {}
        return rec.get("bits_per_weight")
    v = sw["value"]
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _speed(run: dict, scen: str):
    key, _ = tradeoff.speed_name(scen, run)
    return results_value(run, key) if key else None


def results_value(run: dict, name: str | None):
    return (run.get("metrics", {}).get(name) or {}).get("value") if name else None


def _memory(run: dict, scen: str):
    return results_value(run, "weight_bytes") if scen == "infer" else runinfo.peak_bytes(run)


def point(g: list[dict], scen: str, qname: str | None = None) -> dict:
    """One group's point; `qname`: the quality metric its figure plots (one per sweep), else its own headline."""
    rep = replicates.representative(g)
    q = rep["metrics"].get(qname or tradeoff.quality(scen, g)[0]) or {}
    speed_key, _ = tradeoff.speed_name(scen, rep)
    return {
        "id": rep["id"],
        "value": rep["spec"].get("sweep", {}).get("value"),
        "x": x_value(rep) if rep["spec"].get("sweep") else None,
        "quality": q.get("value"),
        "stderr": q.get("stderr"),
        "seed_sd": q.get("seed_sd"),
        "n_seeds": q.get("n_seeds") or 1,
        "chance": q.get("chance"),
        "speed": _speed(rep, scen),
        "memory_bytes": _memory(rep, scen),
        # the range over replicates (members) and how many: the x intervals of the figures
        "speed_spread": replicates.spread(g, lambda r: results_value(r, speed_key)),
        "memory_bytes_spread": replicates.spread(g, lambda r: _memory(r, scen)),
        "label": runinfo.techniques_label(rep),
    }


def tested_point(g: list[dict], base: list[dict] | None, scen: str, margin: float, qname: str | None = None) -> dict:
    """A point with its paired non-inferiority test against `base` at the margin (p, and p < ALPHA)."""
    pt = point(g, scen, qname)
    t = tradeoff.quality_test(g, base, scen, margin) if base is not None else None
    pt["noninferior_p"] = t[1] if t else None
    pt["noninferior"] = t is not None and t[1] < ALPHA
    return pt


def sweeps(rs: dict) -> list[dict]:
    """One record per sweep: {id, axis, param, scenario, aggressive, margin, points, base, knee}."""
    margin = rs.get("noninferiority_margin", 0.01)
    gs = [g for g in replicates.groups(rs).values() if replicates.primary(g)["status"] == "ok"]
    by_id: dict[str, list] = {}
    for g in gs:
        sw = replicates.primary(g)["spec"].get("sweep")
        if sw:
            by_id.setdefault(sw["id"], []).append(g)
    out = []
    for sid, members in by_id.items():
        p = replicates.primary(members[0])["spec"]
        scen, sw = p["scenario"], p["sweep"]
        pruning = runinfo.is_pruning_run(replicates.primary(members[0]))
        base = _unpruned_group(members[0], gs) if pruning else tradeoff.baseline_of(members[0], gs)
        qname, _, qlabel = tradeoff.quality(scen, [r for g in [*members, base or []] for r in g])
        pts = [tested_point(g, base, scen, margin, qname) for g in members]
        pts.sort(key=lambda q: (q["x"] is None, q["x"] if q["x"] is not None else 0))
        knee = None
        if sw.get("aggressive") in ("higher", "lower"):
            cands = [q for q in pts if q["noninferior"] and q["x"] is not None]
            if cands:
                knee = (max if sw["aggressive"] == "higher" else min)(cands, key=lambda q: q["x"])
        out.append(
            {
                "id": sid,
                "axis": sw["axis"],
                "param": axis_param(sw["axis"]),
                "scenario": scen,
                "aggressive": sw.get("aggressive", "none"),
                "margin": margin,
                "points": pts,
                "base": point(base, scen, qname) if base is not None else None,
                "knee": knee,
                "pruning": pruning,
                "quality_label": qlabel,
            }
        )
    return out + sparsity_points(gs, out, margin)


def sparsity_points(gs: list[list[dict]], swept: list[dict], margin: float) -> list[dict]:
    """Plain runs with one sparsity technique (e.g. 2:4, whose sparsity is fixed) as one-point
    series on a sparsity figure that has a sweep: x = the sparsity the technique recorded."""
    figs = {s["scenario"] for s in swept if s["param"] == "sparsity"}
    swept_techs = {s["axis"].partition(".")[0] for s in swept if s["param"] == "sparsity"}
    out = []
    for g in gs:
        r = replicates.primary(g)
        techs = r["spec"].get("techniques") or []
        if (
            r["spec"].get("sweep")
            or r["spec"]["scenario"] not in figs
            or len(techs) != 1
            or techs[0]["name"] in swept_techs
        ):
            continue
        x = ((r.get("technique_records") or {}).get(techs[0]["name"]) or {}).get("achieved_sparsity")
        if not isinstance(x, (int, float)):
            continue
        scen = r["spec"]["scenario"]
        base = tradeoff.baseline_of(g, gs)
        qname, _, qlabel = tradeoff.quality(scen, [*g, *(base or [])])
        pt = {**tested_point(g, base, scen, margin, qname), "x": float(x), "value": runinfo.techniques_label(r)}
        out.append(
            {
                "id": r["id"],
                "axis": f"{techs[0]['name']}.sparsity",
                "param": "sparsity",
                "scenario": scen,
                "aggressive": "higher",
                "margin": margin,
                "points": [pt],
                "single": True,
                "base": point(base, scen, qname) if base is not None else None,
                "knee": pt if pt["noninferior"] else None,
                "pruning": False,
                "quality_label": qlabel,
            }
        )
    return out


def _unpruned_group(g: list[dict], gs: list[list[dict]]) -> list[dict] | None:
    """A pruning sweep's reference: the unpruned run with the same other techniques (runinfo.unpruned_twin)."""
    twin = runinfo.unpruned_twin(replicates.primary(g), [replicates.primary(h) for h in gs])
    return next((h for h in gs if twin is not None and replicates.primary(h) is twin), None)
