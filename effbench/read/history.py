"""History of a suite: one point per result set for each suite run and metric, and change points.

A line is one suite run (its group id) and metric on one device and model with one CPU thread
count (the spec's `threads`; None, the machine's default, is a count of its own): sets measured on
another device, with other weights or with another number of threads start another line, never
share one. Its points are the sets
in time order (created_utc, which follows commit order on one branch), each with its replicate
values: a throughput has one per timed replicate, peak memory one per ok member, an accuracy one
per seed, a cost per point one per set.

A set with kernel micro-benchmark records (`kernels`, CUDA suites) adds one line per kernel case
(group "kernel <name> <pass> <dtype>", a line per shape and device) and comparator: effbench's
speed-up over eager PyTorch, torch.compile and liger-kernel (their median time / ours,
effbench.read.kernels), one value per set.

Change points (`change_points`), a rule short enough to state: binary segmentation over the sets
of a line. For every split between two neighbouring sets, the replicate values of all sets on the
left are compared with those on the right by a Welch t-test (on log values: the metrics are
positive and their noise multiplicative); the split with the smallest p is a change point when
p x (number of splits tried) < ALPHA (Bonferroni over the splits) and the change of the mean
(geometric: exp of the difference of mean logs) is at least MIN_EFFECT in either direction, the
timing margin compare uses. Then each side is searched again the same way. Each side needs two
values at least. A set of one replicate is one value: a history of single-replicate sets is judged
by its sets, one of several replicates by all of them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from effbench.read import cost, kernels, replicates, runinfo, tradeoff

ALPHA = 0.01  # family-wise over the splits tried in one search
MIN_EFFECT = 0.05  # relative change of the (geometric) mean below which no change point is reported

# metric key -> (title, unit, higher_is_better)
METRICS = {
    "throughput": ("throughput", "tokens/s", True),
    "peak_memory": ("peak memory", "MiB", False),
    "accuracy": ("accuracy", "%", True),
    "cost_per_point": ("cost per quality point", "USD/pt", False),
    "speedup_vs_eager": ("kernel speed-up over eager PyTorch", "x", True),
    "speedup_vs_compile": ("kernel speed-up over torch.compile", "x", True),
    "speedup_vs_liger": ("kernel speed-up over liger-kernel", "x", True),
}
KERNEL_METRICS = ("speedup_vs_eager", "speedup_vs_compile", "speedup_vs_liger")


def _finite_pos(xs) -> list[float]:
    return [float(x) for x in xs if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]


def metric_values(rs: dict, members: list[dict]) -> dict[str, dict]:
    """metric key -> {"values": replicate values, "lo", "hi", "n", "value", "what"} for one group."""
    p = replicates.primary(members)
    scen = p["spec"]["scenario"]
    out: dict[str, dict] = {}
    key, what = tradeoff.speed_name(scen, p)
    if key:
        out["throughput"] = (replicates.values(members, key), what)
    out["peak_memory"] = (_finite_pos((runinfo.peak_bytes(r) or 0) / 2**20 for r in replicates.ok(members)), "MiB")
    if scen in tradeoff.QUALITY:
        name, _, label = tradeoff.quality(scen, members)
        seeds = replicates.by_seed(members, name)
        out["accuracy"] = (_finite_pos(100 * r["metrics"][name]["value"] for r in seeds.values()), label)
    price, _ = runinfo.price(rs)
    d = cost.derived(replicates.representative(members), price, cost.target_accuracy(rs))
    per = d.get("usd_per_point") if scen == "finetune" else d.get("usd_per_mtok_per_point")
    out["cost_per_point"] = (_finite_pos([per]), "USD per point" if scen == "finetune" else "USD/Mtok per point")
    res = {}
    for m, (vals, what) in out.items():
        if vals:
            res[m] = {**interval(vals, m == "accuracy" and len(vals) == 1 and _stderr(members, scen)), "what": what}
    return res


def _stderr(members: list[dict], scen: str) -> float | None:
    name = tradeoff.quality(scen, members)[0]
    se = (replicates.primary(members)["metrics"].get(name) or {}).get("stderr")
    return 100 * se if isinstance(se, (int, float)) else None


def interval(vals: list[float], stderr: float | None = None) -> dict:
    """Centre and 95% interval of replicate values: the geometric mean with the t interval of the
    mean log (two or more values); one value: ± 1.96 stderr where one is given, else none."""
    logs = np.log(vals)
    c = float(np.exp(logs.mean()))
    if len(vals) > 1:
        h = float(sps.t.ppf(0.975, len(vals) - 1) * logs.std(ddof=1) / math.sqrt(len(vals)))
        lo, hi = c * math.exp(-h), c * math.exp(h)
    elif stderr:
        lo, hi = c - 1.96 * stderr, c + 1.96 * stderr
    else:
        lo = hi = c
    return {"value": c, "lo": lo, "hi": hi, "n": len(vals), "values": list(vals)}


def threads_label(spec: dict) -> str:
    """A run's CPU threads as its spec asked: "2 threads", or "default threads" (None: the machine's)."""
    n = spec.get("threads")
    return f"{n} thread{'s' if n != 1 else ''}" if n else "default threads"


def line_key(rs: dict, members: list[dict]) -> tuple[str, str, str]:
    """(device, model, threads) of a group: sets that differ in any of them never share a line."""
    p = replicates.primary(members)
    dev = (p.get("env") or {}).get("device_name") or (rs.get("env") or {}).get("device_name") or "?"
    model = (p.get("model") or {}).get("name") or p["spec"].get("model") or "?"
    sha = (p.get("model") or {}).get("weights_sha256") or ""
    return str(dev), f"{model}" + (f" ({sha[:8]})" if sha else ""), threads_label(p["spec"])


def kernel_points(rs: dict) -> dict[tuple, dict]:
    """(group id, metric, device, shape, "") -> point, for the kernel records of one set."""
    dev = str((rs.get("env") or {}).get("device_name") or "?")
    out = {}
    for row in kernels.speedup_rows(rs.get("kernels") or []):
        gid = f"kernel {row['kernel']} {row['pass']} {row['dtype']}"
        shape = f"{row['tokens']} tokens x {row['hidden']}"
        for m in KERNEL_METRICS:
            vals = _finite_pos([row[m]])
            if vals:
                out[(gid, m, dev, shape, "")] = {**interval(vals), "what": "speed-up (their time / ours)"}
    return out


def lines(sets: list[dict]) -> dict[tuple, list[tuple[dict, dict]]]:
    """(group id, metric, device, model, threads) -> [(result set, point)] in time order, for sets
    of one suite."""
    out: dict[tuple, list] = {}
    for rs in sorted(sets, key=lambda s: (s.get("created_utc") or "", (s.get("git") or {}).get("sha") or "")):
        for members in replicates.groups(rs).values():
            p = replicates.primary(members)
            if p["status"] != "ok":
                continue
            gid = str(p["spec"].get("group") or p["id"])
            key = line_key(rs, members)
            for m, pt in metric_values(rs, members).items():
                out.setdefault((gid, m, *key), []).append((rs, pt))
        for k, pt in kernel_points(rs).items():
            out.setdefault(k, []).append((rs, pt))
    return out


def _split_p(left: list[float], right: list[float]) -> tuple[float, float]:
    """(p of Welch's t-test on log values, relative change of the geometric mean) of right vs left."""
    a, b = np.log(left), np.log(right)
    effect = math.exp(b.mean() - a.mean()) - 1
    if np.ptp(a) < 1e-9 and np.ptp(b) < 1e-9:  # exact figures (bytes, one accuracy): no noise to test against
        return (0.0 if a.mean() != b.mean() else 1.0), effect
    p = float(sps.ttest_ind(a, b, equal_var=False).pvalue)
    return (1.0 if math.isnan(p) else p), effect


def change_points(obs: list[list[float]], alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> list[dict]:
    """Change points of a line: `obs[i]` = the replicate values of set i (positive). Returns
    [{"index": k (the first set after the change), "p", "change" (relative), "tried"}] sorted by k."""
    found: list[dict] = []

    def search(lo: int, hi: int) -> None:
        best = None
        splits = [k for k in range(lo + 1, hi) if sum(map(len, obs[lo:k])) >= 2 and sum(map(len, obs[k:hi])) >= 2]
        for k in splits:
            p, eff = _split_p(sum(obs[lo:k], []), sum(obs[k:hi], []))
            if best is None or p < best[1]:
                best = (k, p, eff)
        if best and best[1] * len(splits) < alpha and abs(best[2]) >= min_effect:
            k, p, eff = best
            found.append({"index": k, "p": min(1.0, p * len(splits)), "change": eff, "tried": len(splits)})
            search(lo, k)
            search(k, hi)

    search(0, len(obs))
    return sorted(found, key=lambda c: c["index"])
