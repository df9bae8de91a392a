"""Direct labels beside points, placed so that they overlap neither each other nor the markers.

A small deterministic placement rather than a label-placement library: each label tries positions
around its point in a fixed order (8 directions, right-up first, on rings 6 to 42 points
away) and takes the first whose box overlaps no marker of the axes and no label placed before it
and stays inside the axes; where every position collides, the one with the least overlap. Labels
are placed in the order given; one beyond the first ring gets a thin leader line to its point.
Boxes are measured with the figure's renderer, so call it once the axes' limits, scales and the
figure's layout are final. The same figure always gets the same placement.
"""

from __future__ import annotations

from matplotlib.transforms import Bbox

DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
RINGS = (6, 12, 20, 30, 42)  # points between the point and the label's nearest edge
MARKER_PT = 4.0  # half-size (points) of the box kept free around every marker
ALIGN_X = {1: "left", -1: "right", 0: "center"}
ALIGN_Y = {1: "bottom", -1: "top", 0: "center"}


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def marker_boxes(ax) -> list[Bbox]:
    """Display-space boxes around the points of every scatter collection and marked line of `ax`."""
    px = ax.figure.dpi / 72
    pts = []  # (x, y, half-size in pixels)
    for c in ax.collections:
        if c.get_gid() and len(c.get_offsets()):  # scatters carry gids; error-bar collections do not count
            pts += [(x, y, MARKER_PT * px) for x, y in c.get_offset_transform().transform(c.get_offsets())]
    for ln in ax.lines:
        if ln.get_marker() not in (None, "None", "", " ") and len(ln.get_xydata()):
            r = max(MARKER_PT, ln.get_markersize() / 2) * px  # rings (knee, front) are larger than points
            pts += [(x, y, r) for x, y in ln.get_transform().transform(ln.get_xydata())]
    return [Bbox([[x - r, y - r], [x + r, y + r]]) for x, y, r in pts]


def _box(px: float, py: float, w: float, h: float, dx: int, dy: int, off: float) -> Bbox:
    x0 = px + off if dx > 0 else px - off - w if dx < 0 else px - w / 2
    y0 = py + off if dy > 0 else py - off - h if dy < 0 else py - h / 2
    return Bbox([[x0, y0], [x0 + w, y0 + h]])


def place(ax, labels: list[tuple[float, float, str, str]], fontsize: float = 8) -> list:
    """Annotate `ax` with labels (x, y, text, colour; data coordinates); returns the Annotations
    (gid "label:<text>")."""
    fig = ax.figure
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits: transData is stale until they are read
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = marker_boxes(ax)
    scale = fig.dpi / 72
    out = []
    for x, y, text, color in labels:
        probe = fig.text(0, 0, text, fontsize=fontsize)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        px, py = ax.transData.transform((x, y))
        best = None
        for ring_i, ring in enumerate(RINGS):
            for k, (dx, dy) in enumerate(DIRECTIONS):
                box = _box(px, py, ext.width, ext.height, dx, dy, ring * scale)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                cost = sum(_overlap(box, t) for t in taken) + (0.0 if inside else 1e9)
                if best is None or (cost, ring_i, k) < best[0]:
                    best = ((cost, ring_i, k), dx, dy, ring, box)
            if best[0][0] == 0:
                break
        (_, ring_i, _), dx, dy, ring, box = best
        xytext = (dx * ring, dy * ring)
        ann = ax.annotate(
            text,
            (x, y),
            xytext=xytext,
            textcoords="offset points",
            ha=ALIGN_X[dx],
            va=ALIGN_Y[dy],
            fontsize=fontsize,
            color=color,
            gid=f"label:{text}",
            arrowprops=(
                {"arrowstyle": "-", "color": color, "lw": 0.6, "alpha": 0.7, "shrinkA": 0, "shrinkB": 2}
                if ring_i > 0
                else None
            ),
        )
        taken.append(box)
        out.append(ann)
    return out
