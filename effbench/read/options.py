"""The options of a comparison (effbench.read.compare): thresholds, tolerances, allowed mismatches.

Apart from compare (which imports scipy) so that the command line builds its parser and help from
them without importing scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What two result sets may differ in, each refused by compare unless allowed (--allow-mismatch).
MISMATCH_KINDS = ("device", "weights", "data", "threads", "cores", "memory_method")
# Worse beyond these (relative change for timing/bytes/value, absolute fraction for accuracy) fails.
DEFAULT_FAIL_ON = {"timing": 0.05, "accuracy": 0.0, "bytes": 0.01, "value": 0.01, "status": 0.0}


@dataclass
class Options:
    # timings: `same` when the (Holm-adjusted) CI lies inside +-min_effect (relative); None: the base
    # set's timing_margin (its suite's: what its replicates can resolve on its machine), else 0.05
    min_effect: float | None = None
    alpha: float = 0.05  # significance level of the timing and accuracy tests; judged CIs are at 1 - alpha
    conf: float = 0.95  # confidence level of the CIs shown on rows not judged (one replicate: within-run)
    accuracy_margin: float | None = (
        None  # accuracies: `same` inside +-this (fraction); None: the base set's noninferiority_margin
    )
    # refuse when fewer than this share of the smaller side's runs match (none matched: always refused);
    # `ab` asks for 1.0: it runs one suite on both sides, so a run that matches nothing is a broken head
    min_matched: float = 0.0
    bytes_tol: float = 0.01  # memory / byte counts: relative tolerance
    rss_tol: float = 0.15  # CPU RSS holds allocator-cached pages: identical default-model runs differed by up to 13%
    value_tol: float = 0.01  # other directional figures (perplexity, KLD, loss): relative tolerance
    fail_on: dict = field(default_factory=lambda: dict(DEFAULT_FAIL_ON))
    allow_mismatch: bool | frozenset = False  # True: every kind of MISMATCH_KINDS; or the kinds allowed
    seed: int = 0

    def allowed(self, kind: str) -> bool:
        return self.allow_mismatch is True or (
            not isinstance(self.allow_mismatch, bool) and kind in self.allow_mismatch
        )
