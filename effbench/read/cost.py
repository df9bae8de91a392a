"""Dollar cost and cost per quality point, derived from raw measurements at report time.

Price per device-hour: the suite's `price_per_hour`, else `--price-per-hour`, else the default
for the device (effbench.read.gpus, GPU names matched as whole words; CPU_PRICE below): approximate
on-demand cloud rates for one device, late 2025; they differ by provider and change: pass your own. Formulas (README, "Metrics"):

  cost_usd           = price_per_hour * (setup_s + workload_s) / 3600
  usd_per_point      = cost_usd / (100 * (accuracy - accuracy_unmodified))     [finetune]
  usd_per_mtok       = price_per_hour / 3600 / decode_tokens_per_s * 1e6       [infer, largest batch]
  public_points      = 100 * (public_acc_norm - chance)                         [infer: HellaSwag, ARC, PIQA pooled]
  probe_points       = 100 * (probe_acc - chance)                               [infer; also _norm]
  usd_per_mtok_per_point = usd_per_mtok / public_points                         [infer; probe_points in older sets]
  time_to_target_s   = setup_s + training time at which accuracy first reaches the target,
                       linearly interpolated between the two evaluations around the crossing;
                       per seed (to_target: the median of the seeds that reached it, and how many);
                       target = target_fraction x the reference run's final accuracy (mean over seeds)

Quality points count only what is above the floor a guesser reaches: the chance level recorded
with the public tasks' or the probe's metric (mean over items of 1 / number of choices: 25% for four, 50% for PIQA's two), or the
unmodified model's accuracy for fine-tuning. A run at or below that floor earns no points: its
cost per point is None with the reason in `<figure>_reason`, never infinite or negative.
"""

from __future__ import annotations

import statistics

from effbench.read.replicates import by_seed

CPU_PRICE = (0.10, "typical 2-vCPU general-purpose cloud VM, late 2025")  # USD per hour


def price_for(env: dict, suite_price: float | None = None, suite_source: str = "") -> tuple[float | None, str]:
    """USD per device-hour and where it comes from: the suite's/command line's price, else the
    GPU table's default (effbench.read.gpus, whole-word name match), else the CPU default."""
    if suite_price is not None:
        return float(suite_price), suite_source or "suite / command line"
    if env.get("device") == "cuda":
        from effbench.read import gpus

        name = env.get("device_name") or ""
        gpu = gpus.lookup(name)
        if gpu is None or gpu.usd_per_hour is None:
            return None, f"no default price for {name!r}: pass --price-per-hour"
        return gpu.usd_per_hour, gpu.price_source
    return CPU_PRICE


def _v(run: dict, name: str):
    m = run.get("metrics", {}).get(name)
    return None if not m else m.get("value")


def workload_s(run: dict) -> float | None:
    if run["spec"]["scenario"] == "finetune":
        return _v(run, "train_wall_s")
    return _v(run, "speed_wall_s")


def time_to_target(run: dict, target: float | None) -> float | None:
    """Training seconds (setup excluded) at which the accuracy curve first reaches `target`."""
    curve = run.get("curves", {}).get("accuracy_vs_time") or []
    if target is None:
        return None
    prev = None
    for pt in curve:
        if pt["accuracy"] >= target:
            if prev is None or pt["accuracy"] == prev["accuracy"]:
                return pt["train_wall_s"]
            f = (target - prev["accuracy"]) / (pt["accuracy"] - prev["accuracy"])
            return prev["train_wall_s"] + f * (pt["train_wall_s"] - prev["train_wall_s"])
        prev = pt
    return None


def largest_batch_decode(run: dict) -> tuple[float | None, str | None]:
    keys = [k for k in run.get("metrics", {}) if k.startswith("decode_tokens_per_s.b")]
    if not keys:
        return None, None
    k = max(keys, key=lambda s: int(s.rsplit(".b", 1)[1]))
    return _v(run, k), k


def points_above_chance(run: dict, name: str) -> tuple[float | None, str | None]:
    """(100 x (accuracy - chance), None), or (None, reason) when the metric or its chance level
    was not recorded. May be zero or negative (at or below chance)."""
    m = (run.get("metrics") or {}).get(name) or {}
    if m.get("value") is None:
        return None, f"{name} not measured"
    if m.get("chance") is None:
        return None, f"{name} has no recorded chance level"
    return 100 * (m["value"] - m["chance"]), None


def _per_point(usd: float | None, points: float | None, why: str | None, what: str) -> tuple[float | None, str | None]:
    if usd is None:
        return None, f"{what} not available"
    if points is None:
        return None, why
    if points <= 0:
        return None, f"no quality points: {points:.1f} points above the floor"
    return usd / points, None


def derived(run: dict, price: float | None, target: float | None) -> dict:
    """Derived figures for one run; None where an input is missing."""
    out: dict = {"price_per_hour": price}
    setup = run.get("setup", {}).get("wall_s") or 0.0
    w = workload_s(run)
    out["cost_usd"] = price * (setup + w) / 3600 if (price is not None and w is not None) else None
    if run["spec"]["scenario"] == "finetune":
        acc, base = _v(run, "accuracy"), _v(run, "accuracy_unmodified")
        out["gain_points"] = 100 * (acc - base) if acc is not None and base is not None else None
        g = out["gain_points"]
        out["usd_per_point"], why = _per_point(out["cost_usd"], g, "accuracy not measured", "cost")
        if why:
            out["usd_per_point_reason"] = why
        ttt = time_to_target(run, target)
        out["time_to_target_s"] = setup + ttt if ttt is not None else None
        out["cost_to_target_usd"] = (
            price * out["time_to_target_s"] / 3600 if (price is not None and ttt is not None) else None
        )
    else:
        dec, key = largest_batch_decode(run)
        out["usd_per_mtok"] = price / 3600 / dec * 1e6 if (price is not None and dec) else None
        out["usd_per_mtok_basis"] = key
        out["probe_points"], why = points_above_chance(run, "probe_acc")
        out["probe_norm_points"] = points_above_chance(run, "probe_acc_norm")[0]
        out["public_points"], why_public = points_above_chance(run, "public_acc_norm")
        # the headline: the public tasks where the run scored them, the probe in older sets
        scored = (run.get("metrics", {}).get("public_acc_norm") or {}).get("value") is not None
        pts, why = (out["public_points"], why_public) if scored else (out["probe_points"], why)
        out["quality_points_metric"] = "public_acc_norm" if scored else "probe_acc"
        out["usd_per_mtok_per_point"], why = _per_point(out["usd_per_mtok"], pts, why, "usd_per_mtok")
        if why:
            out["usd_per_mtok_per_point_reason"] = why
    return out


def reference_accuracies(rs: dict) -> dict[int, float]:
    """seed -> final accuracy of the suite's target reference run (its quality member per seed)."""
    ref = (rs.get("target") or {}).get("reference")
    members = [r for r in rs["runs"] if ref in (r["id"], r["spec"].get("group"))]
    return {seed: _v(r, "accuracy") for seed, r in by_seed(members, "accuracy").items()}


def target_accuracy(rs: dict) -> float | None:
    """The suite's target: `fraction` x the final accuracy of the reference run, its mean over seeds
    where the reference has several."""
    accs = reference_accuracies(rs)
    return (rs.get("target") or {}).get("fraction", 0.9) * sum(accs.values()) / len(accs) if accs else None


def to_target(members: list[dict], price: float | None, target: float | None) -> dict:
    """Time- and cost-to-target of a suite run over its seeds: each seed's quality member on its own
    curve and set-up. {"seeds": n, "times_s": [per seed, None where not reached], "median_s": median
    of the seeds that reached it, "min_s", "max_s", "median_usd"} (None where no seed reached it)."""
    runs = list(by_seed(members, "accuracy").values()) or members[:1]
    times = [derived(r, price, target).get("time_to_target_s") for r in runs]
    hit = sorted(t for t in times if t is not None)
    med = statistics.median(hit) if hit else None
    return {
        "seeds": len(runs),
        "times_s": times,
        "median_s": med,
        "min_s": hit[0] if hit else None,
        "max_s": hit[-1] if hit else None,
        "median_usd": price * med / 3600 if (price is not None and med is not None) else None,
    }
