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
