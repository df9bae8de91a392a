"""Plots of one or several result sets (matplotlib, Agg backend): PNG and SVG into the set's folder.

- pareto_<scenario>: quality (task accuracy for finetune, probe accuracy for infer, ± stderr)
  against throughput, peak memory and cost; one point per run, the Pareto frontier of each set
  drawn. Runs are numbered on the points and named in a key under the axes, so labels stay short
  and do not collide (no label-placement library needed).
- finetune_curves, pruning_curves, pruning, kernels: effbench.render.plot_curves.
- sweep_<scenario>_<parameter>: effbench.render.plot_sweeps, one figure per swept parameter.
Series on one axis never share both colour and marker (series_style).

Each figure function returns the Figure (tests count its points) or None when there is nothing
to draw; points carry gid "points:<set label>" and frontiers "frontier:<set label>".
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402, I001
from matplotlib.ticker import MaxNLocator  # noqa: E402

from effbench.read import cost, results, runinfo
from effbench.read.replicates import representatives
from effbench.render import plot_curves, plot_sweeps
from effbench.render.plot_style import describe, label, series_style

__all__ = ["describe", "figures", "label", "plot", "series_style"]

OFFSETS = [(5, 5), (5, -11), (-11, 5), (-11, -11)]  # points; cycling spreads labels of close points
QUALITY = {
    "finetune": ("accuracy", "task accuracy, arith exact match (%)"),
    "infer": ("probe_acc", "probe accuracy (%)"),
}


def axes_specs(scenario: str):
    """(x label, x function of (run, derived), higher_is_better) for the three Pareto panels."""
    if scenario == "finetune":
        thr = ("train throughput (tokens/s)", lambda r, d: results.metric(r, "train_tokens_per_s"))
        cst = ("cost of the run (USD)", lambda r, d: d.get("cost_usd"))
    else:
        thr = ("decode throughput, largest batch (tokens/s)", lambda r, d: cost.largest_batch_decode(r)[0])
        cst = ("cost per million decoded tokens (USD)", lambda r, d: d.get("usd_per_mtok"))
    mem = ("peak memory (MiB)", lambda r, d: (runinfo.peak_bytes(r) or 0) / 2**20 or None)
    return [(*thr, True), (*mem, False), (*cst, False)]


def frontier(points: list[tuple[float, float]], x_higher_better: bool) -> list[int]:
    """Indices of the points no other point beats on both x and quality (higher quality is better),
    ordered from the best x to the worst."""
    order = sorted(
        range(len(points)), key=lambda i: (-points[i][0] if x_higher_better else points[i][0], -points[i][1])
    )
    out, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            out.append(i)
            best = points[i][1]
    return out


def numbering(sets: list[dict], scenario: str) -> dict[str, int]:
    ids = [r["id"] for rs in sets for r in rs["runs"] if r["spec"]["scenario"] == scenario and r["status"] == "ok"]
    return {rid: i + 1 for i, rid in enumerate(dict.fromkeys(ids))}


def add_key(fig, entries: list[str], per_col: int = 8) -> None:
    """Run numbers -> names, in columns under the axes."""
    cols = [entries[i : i + per_col] for i in range(0, len(entries), per_col)]
    for c, col in enumerate(cols):
        fig.text(0.01 + c * 0.33, 0.01, "\n".join(col), fontsize=7, family="monospace", va="bottom")
    fig.subplots_adjust(bottom=0.12 + 0.022 * min(len(entries), per_col), top=0.84, wspace=0.3)


def pareto_figure(sets: list[dict], scenario: str):
    qname, qlabel = QUALITY[scenario]
    nums = numbering(sets, scenario)
    if not nums:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    drawn = False
    for k, rs in enumerate(sets):
        price, _ = runinfo.price(rs)
        runs = [r for r in rs["runs"] if r["spec"]["scenario"] == scenario and r["status"] == "ok"]
        st, lab = series_style(k), label(rs)
        color = st["color"]
        for ax, (xlabel, fx, hib) in zip(axes, axes_specs(scenario)):
            pts = []
            for r in runs:
                m = r["metrics"].get(qname) or {}
                x = fx(r, cost.derived(r, price, None))
                if m.get("value") is not None and x is not None:
                    pts.append((x, 100 * m["value"], 100 * (m.get("stderr") or 0), nums[r["id"]]))
            if not pts:
                continue
            drawn = True
            xs, ys, es, ns = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor=color, alpha=0.5, capsize=2)
            ax.scatter(
                xs,
                ys,
                color=color,
                marker=st["marker"],
                s=28,
                zorder=3,
                label=lab if len(sets) > 1 else "runs",
                gid=f"points:{lab}",
            )
            f = frontier([(x, y) for x, y, _, _ in pts], hib)
            ax.plot(
                [xs[i] for i in f],
                [ys[i] for i in f],
                color=color,
                ls="--",
                lw=1.2,
                marker="o",
                ms=11,
                mfc="none",
                label=f"Pareto frontier{' ' + lab if len(sets) > 1 else ''}",
                gid=f"frontier:{lab}",
            )
            at: dict[tuple, list[str]] = {}  # runs on the same spot share one label: "2,6"
            for x, y, n in zip(xs, ys, ns):
                at.setdefault((x, y), []).append(str(n))
            for j, ((x, y), names) in enumerate(at.items()):
                ax.annotate(
                    ",".join(names),
                    (x, y),
                    xytext=OFFSETS[(j + 2 * k) % 4],
                    textcoords="offset points",
                    fontsize=8,
                    color=color,
                )
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
            ax.set_xlabel(xlabel + (" →  better" if hib else "  ← better"))
            ax.set_ylabel(qlabel)
            ax.grid(alpha=0.3)
    if not drawn:
        plt.close(fig)
        return None
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"{scenario}: quality vs throughput, memory and cost (up and toward 'better' is better)\n{describe(sets)}"
    )
    runs = {r["id"]: r for rs in sets for r in rs["runs"]}
    add_key(fig, [f"{n:>2} {rid}: {runinfo.techniques_label(runs[rid])}"[:60] for rid, n in nums.items()])
    return fig


def save(fig, folder: Path, name: str) -> list[Path]:
    """PNG and SVG of `fig` as folder/name.*, kept inside `folder` (results.output_file)."""
    out = []
    for ext in ("png", "svg"):
        p = results.output_file(folder, f"{name}.{ext}")
        results.replace_file(p, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=110 if ext == "png" else None))
        out.append(p)
    plt.close(fig)
    return out


def figures(sets: list[dict]) -> dict:
    """name -> Figure for everything these sets can show."""
    figs = {f"pareto_{s}": pareto_figure(sets, s) for s in QUALITY}
    figs.update(
        finetune_curves=plot_curves.finetune_figure(sets),
        pruning_curves=plot_curves.finetune_figure(sets, pruning=True),
        pruning=plot_curves.pruning_figure(sets),
        kernels=plot_curves.kernels_figure(sets),
    )
    figs.update(plot_sweeps.figures(sets))
    return {k: v for k, v in figs.items() if v is not None}


def plot(paths: list, out: str | Path | None = None) -> list[Path]:
    """Load the result sets, draw every figure, write PNG and SVG into `out` (default: the first
    set's folder). Returns the files written."""
    # one point per suite run: replicate medians and seed means stand for a run's members
    # (sweeps test each point against its baseline over the members: `_members` keeps them)
    sets = [{**rs, "runs": representatives(rs), "_members": rs["runs"]} for rs in map(results.load, paths)]
    folder = Path(out) if out else Path(sets[0]["_path"]).parent
    written = []
    for name, fig in figures(sets).items():
        written += save(fig, folder, name)
    return written
