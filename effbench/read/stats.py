"""Statistics for comparing two result sets: one verdict rule per kind of metric.

Why three rules: the figures differ in where their noise comes from. Whatever the rule, a verdict is
read from one interval and a margin (`judge`): the interval excludes zero: a change (+1 / -1); it
lies inside +-margin: no change that matters (0, `same`); neither: inconclusive (None). Each
p-value shown is the inversion of the test whose interval is shown, so p < alpha exactly when the
interval (at 1 - alpha) excludes zero.
- Timings: judged on replicates (below, `replicate_timing`). `timing` compares the samples inside
  one run on each side (ratio of medians, percentile bootstrap CI, Mann-Whitney U / Welch t on
  logs); compare uses only its CI, to describe a single pair of runs, never as a verdict, since
  samples from one process are not replicates of the run.
- Accuracies: both sides score the same eval items, so the test is paired. 0/1 scores: exact
  McNemar test on the discordant items, with the exact (Clopper-Pearson) interval of the share of
  discordant items the head gets right, scaled to points, which is that test inverted; other
  scores: paired bootstrap of the mean difference (percentile CI, and the p-value it inverts to).
- Byte counts and deterministic figures (perplexity, KLD, loss): no sampling noise from the
  harness, so an exact comparison with a small relative tolerance.

Replicates. The run (its own process) is the unit of replication: between runs the machine, the
allocator and the thread placement change, and that run-to-run variation is the main noise when
one side runs after the other. So a timing verdict comes from the per-replicate values (each
replicate's median, or the summary its value is), never from samples inside one run:
`replicate_timing` is a Welch t-test on log replicate values (timing noise is multiplicative),
with its CI, the minimum detectable effect (`mde`: the true change this test detects with 80%
power given the run-to-run spread measured) and the replicates a side needs to detect
`min_effect`. One replicate on a side means no test (the caller shows `info`). Accuracies over
several seeds: Welch t on the per-seed accuracies (seed variance included); one seed: McNemar on
items. `noninferiority`: paired one-sided test that head is not worse than base by `margin`.

Every function is deterministic for a given `seed` (results and tests are reproducible).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Outcome:
    change: float | None  # relative change head/base - 1 (timings, bytes, values); head - base for accuracies
    lo: float | None  # CI of `change` (None: no CI for this rule)
    hi: float | None
    p: float | None  # p-value where the rule has one
    direction: int  # +1 head is larger, -1 smaller, 0 no detectable difference
    method: str
    mde: float | None = None  # timing: smallest relative change detectable at 80% power (replicate level)
    n_needed: int | None = None  # timing: replicates per side to detect min_effect at 80% power
    sd_log: float | None = None  # timing: pooled run-to-run sd of log replicate values
    se_log: float | None = None  # timing: standard error of the log change (Welch), to recompute the CI
    df: float | None = None  # timing: Welch degrees of freedom, likewise
    items_needed: int | None = None  # paired accuracy: items for the CI to fit inside +-margin (80% power)


def judge(lo: float, hi: float, margin: float) -> int | None:
    """The verdict an interval of a change gives: +1 / -1 when it excludes zero (a change shown, in
    that direction), 0 when it lies inside [-margin, +margin] (equivalence shown), None when neither
    (inconclusive). An interval that excludes zero is never 0, however small the change."""
    if lo > 0:
        return 1
    if hi < 0:
        return -1
    return 0 if -margin <= lo and hi <= margin else None


def log_interval(d: float, se: float, df: float, conf: float) -> tuple[float, float]:
    """(lo, hi) of the relative change exp(d) - 1 for a log change d with standard error se (t, df)."""
    if se == 0:
        return math.expm1(d), math.expm1(d)
    q = float(sps.t.ppf(0.5 + conf / 2, df))
    return math.expm1(d - q * se), math.expm1(d + q * se)


POWER = 0.8  # power at which the minimum detectable effect and the replicates needed are stated
MAX_REPLICATES = 1000

# "hmean": a throughput computed as work / median time from 2 samples is their harmonic mean.
STATISTICS = {"median": np.median, "mean": np.mean, "sum": np.sum, "hmean": sps.hmean}


def bootstrap_ratio_of_medians(
    base, head, n_boot: int = 2000, conf: float = 0.95, seed: int = 0, statistic: str = "median"
):
    """(stat(head)/stat(base), lo, hi): percentile bootstrap, sides resampled independently.
    `statistic` is the median unless the metric's value is another summary of its samples
    (train_wall_s is the sum of step times)."""
    f = STATISTICS[statistic]
    b, h = np.asarray(base, float), np.asarray(head, float)
    rng = np.random.default_rng(seed)
    mb = f(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
    mh = f(h[rng.integers(0, len(h), (n_boot, len(h)))], axis=1)
    ratios = mh / mb
    a = (1 - conf) / 2
    return float(f(h) / f(b)), float(np.quantile(ratios, a)), float(np.quantile(ratios, 1 - a))


def statistic_of(value: float, samples) -> str:
    """Which summary of `samples` the recorded value is (the closest of STATISTICS)."""
    return min(STATISTICS, key=lambda k: abs(float(STATISTICS[k](np.asarray(samples, float))) - value))


def timing(
    base,
    head,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    conf: float = 0.95,
    seed: int = 0,
    statistic: str = "median",
) -> Outcome:
    """Repeated timing samples: size and CI from the bootstrap ratio of medians; significance from a
    two-sided Mann-Whitney U test with >= 4 samples a side, else (2-3 samples, where U can never
    reach p < 0.05) a Welch t-test on log times, which timing noise (multiplicative) suits.
    A change below `min_effect` is no change."""
    r, lo, hi = bootstrap_ratio_of_medians(base, head, conf=conf, seed=seed, statistic=statistic)
    if len(set(base) | set(head)) == 1:
        p, test = 1.0, "identical samples"
    elif min(len(base), len(head)) >= 4:
        p, test = float(sps.mannwhitneyu(head, base, alternative="two-sided").pvalue), "Mann-Whitney U"
    elif min(len(base), len(head)) >= 2:
        with warnings.catch_warnings():  # near-identical samples: scipy warns, the p-value is still usable
            warnings.simplefilter("ignore", RuntimeWarning)
            p, test = float(sps.ttest_ind(np.log(head), np.log(base), equal_var=False).pvalue), "Welch t on log"
        p = 1.0 if math.isnan(p) else p  # zero variance on both sides with different values
    else:
        p, test = 1.0, "one sample: no test"
    d = int(np.sign(r - 1)) if p < alpha and abs(r - 1) >= min_effect else 0
    return Outcome(
        r - 1,
        lo - 1,
        hi - 1,
        p,
        d,
        f"{test}, {len(base)}/{len(head)} samples" + ("" if statistic == "median" else f", ratio of {statistic}s"),
    )


def mcnemar_exact(base, head) -> tuple[float, int, int]:
    """Two-sided exact McNemar p-value for paired 0/1 scores, with the discordant counts
    (b: right in base only, c: right in head only)."""
    b0, h0 = np.asarray(base) > 0.5, np.asarray(head) > 0.5
    nb, nc = int(np.sum(b0 & ~h0)), int(np.sum(~b0 & h0))
    if nb + nc == 0:
        return 1.0, nb, nc
    return float(sps.binomtest(nc, nb + nc, 0.5).pvalue), nb, nc


def paired_bootstrap_diff(base, head, n_boot: int = 2000, conf: float = 0.95, seed: int = 0):
    """(mean(head - base), lo, hi) over items resampled together (pairs kept)."""
    d = np.asarray(head, float) - np.asarray(base, float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    a = (1 - conf) / 2
    return float(d.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def paired_bootstrap_p(base, head, n_boot: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of mean(head - base) = 0 that the percentile interval of
    paired_bootstrap_diff (same seed, same draws) inverts to: twice the share of bootstrap means on
    the far side of zero, so p < alpha where the 1 - alpha interval excludes zero."""
    d = np.asarray(head, float) - np.asarray(base, float)
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    return float(min(1.0, 2 * min(np.mean(means <= 0), np.mean(means >= 0))))


def accuracy(
    base_items, head_items, alpha: float = 0.05, conf: float | None = None, seed: int = 0, margin: float = 0.01
) -> Outcome:
    """Paired comparison of per-item scores of the same items in the same order; the CI at `conf`
    (default 1 - alpha) and p agree: p < alpha exactly when the 1 - alpha interval excludes zero."""
    if len(base_items) != len(head_items) or not len(base_items):
        raise ValueError(
            f"paired test needs the same items on both sides: {len(base_items)} vs {len(head_items)} scores"
        )
    conf = 1 - alpha if conf is None else conf
    n = len(base_items)
    d = np.asarray(head_items, float) - np.asarray(base_items, float)
    diff = float(d.mean())
    binary = all(x in (0, 1) for x in list(base_items) + list(head_items))
    if binary:
        p, nb, nc = mcnemar_exact(base_items, head_items)
        if nb + nc:  # conditional on the discordant items: c ~ Binomial(b + c, pi), diff = (2 pi - 1)(b + c)/n
            ci = sps.binomtest(nc, nb + nc, 0.5).proportion_ci(conf, method="exact")
            lo, hi = ((2 * ci.low - 1) * (nb + nc) / n, (2 * ci.high - 1) * (nb + nc) / n)
        else:
            lo = hi = 0.0
        method = f"McNemar, {n} paired items ({nb} lost, {nc} gained)"
    else:
        diff, lo, hi = paired_bootstrap_diff(base_items, head_items, conf=conf, seed=seed)
        p = paired_bootstrap_p(base_items, head_items, seed=seed)
        method = f"paired bootstrap, {n} items"
    return Outcome(
        diff,
        float(lo),
        float(hi),
        p,
        int(np.sign(diff)) if p < alpha else 0,
        method,
        items_needed=items_needed(float(d.std(ddof=1)) if n > 1 else float("nan"), margin, alpha),
    )


def items_needed(sd: float, margin: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Paired items for a two-sided test at `alpha` to detect a `margin` change with `power` (normal
    approximation, per-item sd of the differences `sd`); about as many narrow the interval to
    within +-margin when there is no change."""
    if not math.isfinite(sd) or margin <= 0:
        return None
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return max(2, math.ceil((z * sd / margin) ** 2))


def accuracy_unpaired(base: dict, head: dict, alpha: float = 0.05) -> Outcome:
    """Fallback when per-item scores were not recorded: z-test on value and stderr (weaker)."""
    diff = head["value"] - base["value"]
    se = float(np.hypot(base.get("stderr") or 0.0, head.get("stderr") or 0.0))
    z = sps.norm.ppf(1 - alpha / 2)
    if se == 0:
        return Outcome(diff, diff, diff, None, int(np.sign(diff)), "exact (stderr 0, no items)")
    p = float(2 * sps.norm.sf(abs(diff) / se))
    return Outcome(
        diff,
        diff - z * se,
        diff + z * se,
        p,
        int(np.sign(diff)) if p < alpha else 0,
        "unpaired z-test (no per-item scores)",
    )


def tolerance(base: float, head: float, rel_tol: float = 0.01, abs_tol: float = 1e-9) -> Outcome:
    """Exact comparison: a difference counts when it exceeds rel_tol of the larger magnitude."""
    if head == base:
        return Outcome(0.0, None, None, None, 0, "exact")
    change = head / base - 1 if base else float("inf") * np.sign(head)
    big = abs(head - base) > max(abs_tol, rel_tol * max(abs(base), abs(head)))
    return Outcome(float(change), None, None, None, int(np.sign(head - base)) if big else 0, f"exact ± {rel_tol:.0%}")


def _power(delta: float, sd: float, n_b, n_h, alpha: float):
    """Power of the two-sided two-sample t-test on logs for a true log-change `delta` (noncentral t;
    pooled degrees of freedom). Vectorised over n_b, n_h."""
    n_b, n_h = np.asarray(n_b, float), np.asarray(n_h, float)
    df = n_b + n_h - 2
    nc = delta / (sd * np.sqrt(1 / n_b + 1 / n_h))
    t = sps.t.ppf(1 - alpha / 2, df)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = sps.nct.sf(t, df, nc) + sps.nct.cdf(-t, df, nc)
    # scipy's noncentral t returns NaN far in its tails: there the normal approximation holds
    return np.where(np.isfinite(p), p, sps.norm.sf(t - nc) + sps.norm.cdf(-t - nc))


def pooled_sd(*groups) -> float:
    """Pooled standard deviation of several samples (each of >= 2 values)."""
    ss = sum(float(np.sum((np.asarray(g) - np.mean(g)) ** 2)) for g in groups)
    df = sum(len(g) - 1 for g in groups)
    return math.sqrt(ss / df) if df > 0 else float("nan")


def mde(sd_log: float, n_b: int, n_h: int, alpha: float = 0.05, power: float = POWER) -> float | None:
    """Smallest relative change (exp(delta) - 1) detected with `power` by the t-test on log values,
    with `sd_log` the run-to-run standard deviation of log replicate values."""
    from scipy.optimize import brentq

    if min(n_b, n_h) < 2 or not math.isfinite(sd_log):
        return None
    if sd_log == 0:
        return 0.0
    hi = sd_log
    while _power(hi, sd_log, n_b, n_h, alpha) < power:
        hi *= 2
        if hi > 1e3 * sd_log + 50:  # beyond any timing change: no practical MDE
            return None
    return float(math.expm1(brentq(lambda d: float(_power(d, sd_log, n_b, n_h, alpha)) - power, 0.0, hi)))


def replicates_needed(
    sd_log: float, min_effect: float, alpha: float = 0.05, power: float = POWER, relative: bool = True
) -> int | None:
    """Replicates per side for the t-test on logs to detect a `min_effect` change with `power`
    (None: more than MAX_REPLICATES, or the noise is unknown). With that many, a true change of zero
    also gives an interval of about +-min_effect or less: either way the row is decided.
    relative=False: a t-test on plain values (per-seed accuracies), min_effect an absolute difference."""
    if not math.isfinite(sd_log) or min_effect <= 0:
        return None
    if sd_log == 0:
        return 2
    n = np.arange(2, MAX_REPLICATES + 1)
    delta = math.log1p(min_effect) if relative else min_effect
    ok = np.nonzero(_power(delta, sd_log, n, n, alpha) >= power)[0]
    return int(n[ok[0]]) if len(ok) else None


def welch(b: np.ndarray, h: np.ndarray) -> tuple[float, float, float, float]:
    """Welch t-test of mean(h) - mean(b): (difference, standard error, degrees of freedom, p).
    The p-value and log_interval use the same se and df, so they agree at every level."""
    d = float(h.mean() - b.mean())
    vb, vh = float(b.var(ddof=1)) / len(b), float(h.var(ddof=1)) / len(h)
    se = math.sqrt(vb + vh)
    if se == 0:
        return d, 0.0, float(len(b) + len(h) - 2), (1.0 if d == 0 else 0.0)
    df = (vb + vh) ** 2 / (vb**2 / (len(b) - 1) + vh**2 / (len(h) - 1))
    return d, se, df, float(2 * sps.t.sf(abs(d) / se, df))


def replicate_timing(base, head, min_effect: float = 0.05, alpha: float = 0.05, conf: float | None = None) -> Outcome:
    """Per-replicate values (>= 2 a side): change = ratio of geometric means - 1, Welch t-test and
    its CI on log values (at `conf`, default 1 - alpha), MDE and replicates needed from the pooled
    run-to-run spread. direction: the sign of the change where the interval excludes zero."""
    lb, lh = np.log(np.asarray(base, float)), np.log(np.asarray(head, float))
    if min(len(lb), len(lh)) < 2:
        raise ValueError(f"a replicate-level test needs >= 2 replicates a side, got {len(lb)}/{len(lh)}")
    d, se, df, p = welch(lb, lh)
    sd = pooled_sd(lb, lh)
    lo, hi = log_interval(d, se, df, 1 - alpha if conf is None else conf)
    return Outcome(
        math.expm1(d),
        lo,
        hi,
        p,
        int(np.sign(d)) if p < alpha else 0,
        f"Welch t on log replicate values, {len(lb)}/{len(lh)} replicates",
        mde(sd, len(lb), len(lh), alpha),
        replicates_needed(sd, min_effect, alpha),
        sd,
        se,
        df,
    )


def seed_accuracy(base, head, alpha: float = 0.05, conf: float | None = None, margin: float = 0.01) -> Outcome:
    """Per-seed accuracies (>= 2 a side): mean difference (fraction), Welch t-test and its CI (at
    `conf`, default 1 - alpha), so that the training's seed-to-seed variation is part of the noise;
    n_needed: the seeds a side that detect a `margin` difference with 80% power."""
    b, h = np.asarray(base, float), np.asarray(head, float)
    d, se, df, p = welch(b, h)
    q = float(sps.t.ppf(0.5 + (1 - alpha if conf is None else conf) / 2, df)) if se else 0.0
    return Outcome(
        d,
        d - q * se,
        d + q * se,
        p,
        int(np.sign(d)) if p < alpha else 0,
        f"Welch t over seeds, {len(b)}/{len(h)} seeds",
        n_needed=replicates_needed(pooled_sd(b, h), margin, alpha, relative=False),
    )


def noninferiority(base, head, margin: float) -> tuple[float, float]:
    """Paired one-sided test of H0: mean(head - base) <= -margin against 'not worse by more than
    margin': (mean difference, p). `base`/`head` are paired per-item scores, or per-seed
    accuracies of common seeds."""
    d = np.asarray(head, float) - np.asarray(base, float)
    if len(d) < 2:
        raise ValueError(f"a non-inferiority test needs >= 2 paired values, got {len(d)}")
    m = float(d.mean())
    if np.all(d == d[0]):
        return m, (0.0 if m > -margin else 1.0)
    return m, float(sps.ttest_1samp(d, -margin, alternative="greater").pvalue)


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error rate over several tests), in input order."""
    p = np.asarray(p_values, float)
    m = len(p)
    if not m:
        return p
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out
