"""Speed-ups from the kernel micro-benchmark's records (effbench.kernelbench.bench measures them;
a suite with `kernel_bench` keeps them under its result set's `kernels`): each kernel case's
median time per implementation and effbench's speed-up over eager PyTorch, torch.compile and
liger-kernel. The report's table (effbench.render.kernel_report) and the site's history
(effbench.read.history) read them from here.
"""

from __future__ import annotations

IMPLS = ("effbench", "eager", "compile", "liger")  # the implementations a record's `impl` names


def speedup_rows(records: list[dict]) -> list[dict]:
    """One row per (kernel, pass, tokens, hidden, dtype): each impl's median and effbench's
    speed-up against eager, compile and liger (their time / ours; > 1 means effbench is faster)."""
    groups: dict[tuple, dict[str, float | None]] = {}
    for r in records:
        key = (r["kernel"], r["pass"], r["tokens"], r["hidden"], r["dtype"])
        groups.setdefault(key, {})[r["impl"]] = r["median_ms"]
    rows = []
    for (kernel, which, tokens, hidden, dtype), ms in groups.items():
        ours = ms.get("effbench")
        row = {"kernel": kernel, "pass": which, "tokens": tokens, "hidden": hidden, "dtype": dtype}
        for impl in IMPLS:
            row[f"{impl}_ms"] = ms.get(impl)
        for other in ("eager", "compile", "liger"):
            theirs = ms.get(other)
            row[f"speedup_vs_{other}"] = theirs / ours if (ours and theirs) else None
        rows.append(row)
    return rows
