"""Colours, markers and titles shared by every effbench figure (matplotlib, Agg backend).

Imported by plot, plot_curves and plot_sweeps before pyplot, so that the backend is chosen once and
the figure modules do not import one another.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

PALETTE = [f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def series_style(i: int) -> dict:
    """Colour and marker of the i-th series on one axis: no two of the first 80 share both
    (same colour every 10 series; the marker then moves on by 3 of 8, since 11 m mod 8 != 0 for m < 8)."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[(i + i // len(PALETTE)) % len(MARKERS)]}


def label(rs: dict) -> str:
    p = rs.get("_path")
    return Path(p).parent.name if p else f"{rs.get('suite')} {str((rs.get('git') or {}).get('sha'))[:8]}"


def describe(sets: list[dict]) -> str:
    """'model M, device D, suite S' over the given sets (joined with / where they differ)."""

    def uniq(xs):
        return " / ".join(dict.fromkeys(str(x) for x in xs if x)) or "?"

    models = uniq((r.get("model") or {}).get("name") or r["spec"].get("model") for rs in sets for r in rs["runs"])
    return (
        f"model {models}, device {uniq((rs.get('env') or {}).get('device_name') for rs in sets)}, "
        f"suite {uniq(rs.get('suite') for rs in sets)}"
    )


def short_name(run_id: str) -> str:
    """A run's direct label: its id without the scenario prefix ('infer-nf4' -> 'nf4'), never cut."""
    for prefix in ("infer-", "finetune-"):
        if run_id.startswith(prefix) and len(run_id) > len(prefix):
            return run_id[len(prefix) :]
    return run_id


def chance_line(ax, chance: float | None, legend: bool = False) -> None:
    """A dotted grey line at the quality metric's recorded chance level (a fraction; drawn in %),
    the floor a guesser reaches; the y range always includes it. Nothing where none is recorded."""
    if chance is None:
        return
    ax.axhline(
        100 * chance,
        color="dimgrey",
        ls=":",
        lw=1.2,
        gid="chance",
        label=f"chance level ({100 * chance:g}%)" if legend else None,
    )


def geometric(xs) -> bool:
    """Whether swept values step by factors rather than increments (LoRA rank 2, 8, 32, 64; batch
    size 1, 2, 4, 8): three or more distinct positive values, each at least 1.9x the one before."""
    v = sorted({float(x) for x in xs if x is not None})
    return len(v) >= 3 and v[0] > 0 and all(b / a >= 1.9 for a, b in zip(v, v[1:]))


def log_x_at(ax, xs) -> None:
    """A base-2 log x axis ticked at the swept values themselves, written plainly (2, 8, 32, 64)."""
    from matplotlib.ticker import NullLocator

    v = sorted({float(x) for x in xs})
    ax.set_xscale("log", base=2)
    ax.set_xticks(v, [f"{x:g}" for x in v])
    ax.xaxis.set_minor_locator(NullLocator())


QUALITY_AXES = {  # tradeoff.quality's labels as an axis says them
    "public-task acc_norm": "public tasks' acc_norm, pooled (%)",
    "probe accuracy": "probe accuracy (%)",
    "arith accuracy": "arith exact match (%)",
    "SST-2 accuracy": "SST-2 held-out accuracy (%)",
}


def quality_axis(label: str) -> str:
    """A quality axis label for tradeoff.quality's `label`."""
    return QUALITY_AXES.get(label, f"{label} (%)")
