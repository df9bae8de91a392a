"""Hand-made histories of result sets for the site tests (tests/test_history.py, test_site*.py):
one finetune run and one infer run per set, 3 replicates each, a commit and a time per set."""

from __future__ import annotations

from tests._resultsets import finetune_run, infer_run, make_set, replicated


def history(n: int, step_at: int | None = None, step: float = 1.1, suite: str = "hist") -> list[dict]:
    """`n` sets in time order; from set `step_at` on, every time is `step` x longer (throughputs / step)."""
    out = []
    for i in range(n):
        shift = step if step_at is not None and i >= step_at else 1.0
        runs = replicated(finetune_run(), 3, seed=i, shift=shift) + replicated(
            infer_run(), 3, seed=100 + i, shift=shift
        )
        rs = make_set(runs, suite=suite, sha=f"{i:02d}" + "c" * 38)
        rs["created_utc"] = f"2026-01-{i + 1:02d}T00:00:00Z"
        out.append(rs)
    return out
