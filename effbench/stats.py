"""Statistics for comparing two result sets: one verdict rule per kind of metric.

Why three rules: the figures differ in where their noise comes from.
- Timings (a metric with repeated `samples`): samples on the two sides are independent, so the
  change is the ratio of medians with a percentile bootstrap CI (each side resampled on its own),
  significance from a Mann-Whitney U test (the percentile bootstrap is anti-conservative for the
  2-10 samples a run records; with 2-3 samples a side, a Welch t-test on log times). `worse`/`better` needs p < alpha *and* the change to reach a
  minimum effect (default 5%): a real but tiny difference is not worth a red mark.
- Accuracies: both sides score the same eval items, so the test is paired. 0/1 scores: exact
  McNemar test on the discordant items; other scores: paired bootstrap of the mean difference.
  The CI of the difference (points) comes from the paired bootstrap in both cases.
- Byte counts and deterministic figures (perplexity, KLD, loss): no sampling noise from the
  harness, so an exact comparison with a small relative tolerance.

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


# "hmean": a throughput computed as work / median time from 2 samples is their harmonic mean.
STATISTICS = {"median": np.median, "mean": np.mean, "sum": np.sum, "hmean": sps.hmean}


def bootstrap_ratio_of_medians(base, head, n_boot: int = 2000, conf: float = 0.95, seed: int = 0, statistic: str = "median"):
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


def timing(base, head, min_effect: float = 0.05, alpha: float = 0.05, conf: float = 0.95, seed: int = 0,
           statistic: str = "median") -> Outcome:
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
    return Outcome(r - 1, lo - 1, hi - 1, p, d, f"{test}, {len(base)}/{len(head)} samples" + ("" if statistic == "median" else f", ratio of {statistic}s"))


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
    """Two-sided p-value of mean(head - base) = 0: bootstrap of the centred differences."""
    d = np.asarray(head, float) - np.asarray(base, float)
    if np.all(d == d[0]) and d[0] == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    means = (d - d.mean())[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    return float((np.sum(np.abs(means) >= abs(d.mean())) + 1) / (n_boot + 1))


def accuracy(base_items, head_items, alpha: float = 0.05, conf: float = 0.95, seed: int = 0) -> Outcome:
    """Paired comparison of per-item scores of the same items in the same order."""
    if len(base_items) != len(head_items) or not len(base_items):
        raise ValueError(f"paired test needs the same items on both sides: {len(base_items)} vs {len(head_items)} scores")
    diff, lo, hi = paired_bootstrap_diff(base_items, head_items, conf=conf, seed=seed)
    binary = all(x in (0, 1) for x in list(base_items) + list(head_items))
    if binary:
        p, nb, nc = mcnemar_exact(base_items, head_items)
        method = f"McNemar, {len(base_items)} paired items ({nb} lost, {nc} gained)"
    else:
        p = paired_bootstrap_p(base_items, head_items, seed=seed)
        method = f"paired bootstrap, {len(base_items)} items"
    return Outcome(diff, lo, hi, p, int(np.sign(diff)) if p < alpha else 0, method)


def accuracy_unpaired(base: dict, head: dict, alpha: float = 0.05) -> Outcome:
    """Fallback when per-item scores were not recorded: z-test on value and stderr (weaker)."""
    diff = head["value"] - base["value"]
    se = float(np.hypot(base.get("stderr") or 0.0, head.get("stderr") or 0.0))
    z = sps.norm.ppf(1 - alpha / 2)
    if se == 0:
        return Outcome(diff, diff, diff, None, int(np.sign(diff)), "exact (stderr 0, no items)")
    p = float(2 * sps.norm.sf(abs(diff) / se))
    return Outcome(diff, diff - z * se, diff + z * se, p, int(np.sign(diff)) if p < alpha else 0,
                   "unpaired z-test (no per-item scores)")


def tolerance(base: float, head: float, rel_tol: float = 0.01, abs_tol: float = 1e-9) -> Outcome:
    """Exact comparison: a difference counts when it exceeds rel_tol of the larger magnitude."""
    if head == base:
        return Outcome(0.0, None, None, None, 0, "exact")
    change = head / base - 1 if base else float("inf") * np.sign(head)
    big = abs(head - base) > max(abs_tol, rel_tol * max(abs(base), abs(head)))
    return Outcome(float(change), None, None, None, int(np.sign(head - base)) if big else 0, f"exact ± {rel_tol:.0%}")
