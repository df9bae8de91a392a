"""Trade-off curves of sweeps (effbench.read.sweep_curves): one figure per scenario and swept parameter.

Figure `sweep_<scenario>_<parameter>` (e.g. sweep_infer_sparsity, sweep_finetune_r,
sweep_finetune_fraction for data pruning, so pruning curves never share a figure with training
techniques): three panels, quality against the swept value, against throughput and against memory;
one line per sweep (technique family) and result set, each with its own colour and marker
(plot.series_style). Error bars: the per-item stderr (thin, capped) and, where several seeds
exist, the across-seed sd (thick, translucent). The baseline (run without techniques, or the
unpruned run) is a dashed black line with a grey ±stderr band on the quality axis, and a black
star in the throughput and memory panels. The knee (most aggressive non-inferior point) is
circled in red.
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402, I001

from effbench.read import sweep_curves
from effbench.render.plot_style import describe, label, series_style

X_LABELS = {
    "sparsity": "sparsity (fraction of block-linear weights zeroed)",
    "bits": "bits per weight (measured, scales included)",
    "r": "LoRA rank r (adapter dimensions)",
    "fraction": "kept fraction of the train split (0-1, examples)",
    "batch_size": "batch size (sequences)",
}
QUALITY = {"finetune": "arith exact match after fine-tuning (%)", "infer": "probe accuracy (%)"}
SPEED = {"finetune": "train throughput (tokens/s)", "infer": "decode throughput, largest batch (tokens/s)"}
BASE_STYLES = ["--", ":", "-."]  # the baseline line of each result set (dashed for the first)
MEMORY = {"finetune": "peak memory (MiB)", "infer": "weight memory (MiB, stored bytes)"}


def _errorbars(ax, xs, ys, pts, color):
    es = [100 * (q["stderr"] or 0) for q in pts]
    ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor=color, alpha=0.6, capsize=3, lw=1)
    sd = [100 * (q["seed_sd"] or 0) for q in pts]
    if any(sd):
        ax.errorbar(xs, ys, yerr=sd, fmt="none", ecolor=color, alpha=0.25, capsize=0, lw=5)


def figure(entries: list[tuple[int, dict, dict]], scenario: str, param: str, sets: list[dict]):
    """entries: (set index, set, sweep record) of one scenario and parameter."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    panels = [
        ("x", X_LABELS.get(param, param), None),
        ("speed", SPEED[scenario], True),
        ("memory_bytes", MEMORY[scenario], False),
    ]
    bases_drawn = set()
    for i, (k, rs, sw) in enumerate(entries):
        st = series_style(i)
        pts = [q for q in sw["points"] if q["quality"] is not None]
        name = (
            sw["id"]
            + (f" [{label(rs)}]" if len(sets) > 1 else "")
            + (
                (" (a point, non-inferior)" if sw["knee"] else " (a point)")
                if sw.get("single")
                else " (no point non-inferior: no knee)"
                if sw["knee"] is None and sw["aggressive"] != "none"
                else ""
            )
        )
        for ax, (key, xlabel, hib) in zip(axes, panels):
            xy = [
                (q[key] / (2**20 if key == "memory_bytes" else 1), 100 * q["quality"], q)
                for q in pts
                if q[key] is not None
            ]
            if not xy:
                continue
            xy.sort(key=lambda t: t[0])
            xs, ys, ps = zip(*xy)
            _errorbars(ax, xs, ys, ps, st["color"])
            ax.plot(xs, ys, ls="-", ms=6, **st, label=name if ax is axes[0] else None, gid=f"sweep:{sw['id']}")
            if sw["axis"] == "technique" and ax is axes[0]:  # a bits axis: name each point's technique
                span = (max(xs) - min(xs)) or 1.0
                for j, (x, y, q) in enumerate(xy):  # of two points at (nearly) one x, the lower one's name goes below
                    near = [(y2, j2) for j2, (x2, y2, _) in enumerate(xy) if j2 != j and abs(x2 - x) < 0.03 * span]
                    below = any((y, j) < n for n in near)
                    ax.annotate(
                        str(q["value"]),
                        (x, y),
                        xytext=(10, -12 if below else 5),
                        textcoords="offset points",
                        fontsize=8,
                        color=st["color"],
                    )
                ax.margins(x=0.12)  # room for the names at both ends
            if sw["knee"] is not None and sw["knee"] in ps:
                j = ps.index(sw["knee"])
                ax.plot(
                    [xs[j]],
                    [ys[j]],
                    ls="none",
                    marker="o",
                    ms=16,
                    color="red",
                    mfc="none",
                    mew=2,
                    gid=f"knee:{sw['id']}",
                    label="knee: most aggressive non-inferior" if ax is axes[0] and "knee" not in bases_drawn else None,
                )
                bases_drawn.add("knee")
            ax.set_xlabel(xlabel + ("" if hib is None else " →  better" if hib else "  ← better"))
        b = sw["base"]
        if b is not None and b["quality"] is not None and (k, b["id"]) not in bases_drawn:
            bases_drawn.add((k, b["id"]))
            y, e = 100 * b["quality"], 100 * (b["stderr"] or 0)
            blab = f"baseline {b['id']}" + (f" [{label(rs)}]" if len(sets) > 1 else "") + " (★: its throughput, memory)"
            for ax, (key, _, _) in zip(axes, panels):
                ax.axhline(
                    y,
                    color="black",
                    ls=BASE_STYLES[k % len(BASE_STYLES)],
                    lw=1,
                    gid="baseline",
                    label=blab if ax is axes[0] else None,
                )
                ax.axhspan(y - e, y + e, color="grey", alpha=0.15, lw=0)
                if key != "x" and b[key] is not None:
                    ax.plot(
                        [b[key] / (2**20 if key == "memory_bytes" else 1)],
                        [y],
                        ls="none",
                        marker="*",
                        ms=14,
                        color="black",
                        gid="baseline-point",
                    )
    for ax in axes:
        ax.set_ylabel(QUALITY[scenario])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()  # under the panels: never over a curve
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    margins = sorted({sw["margin"] for _, _, sw in entries})
    fig.suptitle(
        f"{scenario} sweeps over {param}: quality vs {param}, throughput and memory "
        f"(knee: non-inferior at -{'/'.join(f'{100 * m:g}' for m in margins)} pt, p < 0.05)\n{describe(sets)}"
    )
    fig.subplots_adjust(top=0.85, bottom=0.16 + 0.035 * ((len(labels) + 2) // 3), wspace=0.28)
    return fig


def figures(sets: list[dict]) -> dict:
    """name -> Figure: `sweep_<scenario>_<parameter>` for every swept parameter in the sets."""
    by: dict[tuple[str, str], list] = {}
    for k, rs in enumerate(sets):
        for sw in sweep_curves.sweeps({**rs, "runs": rs.get("_members", rs["runs"])}):
            by.setdefault((sw["scenario"], sw["param"]), []).append((k, rs, sw))
    return {f"sweep_{scen}_{param}": figure(entries, scen, param, sets) for (scen, param), entries in by.items()}
