"""The kernel micro-benchmark's records as a table: each kernel's speed-up over eager PyTorch,
torch.compile and liger-kernel, with its fraction of peak bandwidth (read side: report and
`effbench kernels` show it; effbench.kernelbench.bench measures the records).
"""

from __future__ import annotations

from effbench.read.kernels import IMPLS, speedup_rows
from effbench.render import mdtable

__all__ = ["IMPLS", "kernel_markdown", "speedup_rows"]


def kernel_markdown(records: list[dict]) -> str:
    frac = {
        (r["kernel"], r["pass"], r["tokens"], r["dtype"]): r.get("frac_peak_bw")
        for r in records
        if r["impl"] == "effbench"
    }
    rows = []
    for s in sorted(speedup_rows(records), key=lambda s: (s["kernel"], s["pass"], s["dtype"], s["tokens"])):
        f = frac.get((s["kernel"], s["pass"], s["tokens"], s["dtype"]))
        rows.append(
            [
                s["kernel"],
                s["pass"],
                s["dtype"],
                s["tokens"],
                _f(s.get("effbench_ms"), ".3f"),
                _f(s.get("speedup_vs_eager"), ".2f"),
                _f(s.get("speedup_vs_compile"), ".2f"),
                _f(s.get("speedup_vs_liger"), ".2f"),
                _f(f and 100 * f, ".0f"),
            ]
        )
    head = ["kernel", "pass", "dtype", "tokens", "effbench ms", "x eager", "x compile", "x liger", "% peak BW"]
    return (
        "## Kernel micro-benchmark\n\nSpeed-up = their median time / ours (> 1: effbench faster).\n\n"
        + mdtable.table(rows, head)
        + "\n"
    )


def _f(x, spec):
    return "–" if x is None else format(x, spec)
