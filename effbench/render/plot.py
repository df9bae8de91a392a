"""Plots of one or several result sets (matplotlib, Agg backend): PNG and SVG into the set's folder.

- pareto_<scenario>: quality (task accuracy for finetune; for infer the public tasks' pooled
  acc_norm, or the probe's accuracy in sets measured before them: tradeoff.quality) against
  throughput, peak memory and cost; one point per suite run (replicate medians, seed means). Error
  bars: y ± the per-item stderr (thin) and, over several seeds, the across-seed sd (thick, pale);
  x the range over the run's replicates (its members) where it has two or more. One front per
  comparable group (`comparable`: scenario, task, model, device, the budget but for the learning
  rate, and the members' seeds and data hashes), so runs on other data, seeds or budgets never
  share a front; each group its own colour and marker. The front rings the points no other point
  of the group dominates beyond the intervals drawn (`frontier`). Points are named directly by
  short names (the run id without its scenario prefix, never truncated), placed clear of other
  labels and markers (plot_labels). A dotted line marks the chance level where the quality metric
  records one (the probe's 25%, the public tasks' mean 1 / choices). Points are never joined by lines.
  Not drawn where no group has two runs in these sets (`tradeoff_to_draw`): a one-run set, or a
  suite whose runs each score other items (`card`), has no trade-off to show.
- finetune_curves, pruning_curves, pruning, kernels: effbench.render.plot_curves.
- sweep_<scenario>_<parameter>: effbench.render.plot_sweeps, one figure per swept parameter.
Series on one axis never share both colour and marker (series_style).

Each figure function returns the Figure (tests count its points) or None when there is nothing
to draw; points carry gid "points:<set label>|<group>", fronts "frontier:<set label>|<group>",
error bars "xerr:…" and "yerr:…", labels "label:<name>", the chance line "chance".
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402, I001
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from effbench.read import cost, replicates, results, runinfo, tradeoff
from effbench.read.replicates import representatives
from effbench.read.tradeoff import comparable, frontier  # the front's rule, shared with the site's explorer
from effbench.render import plot_curves, plot_labels, plot_sweeps
from effbench.render.plot_style import chance_line, describe, label, quality_axis, series_style, short_name

__all__ = ["comparable", "describe", "figures", "frontier", "label", "plot", "series_style"]

QUALITY = {
    "finetune": ("accuracy", "task accuracy, arith exact match (%)"),
    "infer": ("probe_acc", "probe accuracy (%)"),
}


def headline(sets: list[dict], scenario: str) -> tuple[str, str]:
    """(metric, axis label) of the quality the figure plots: tradeoff.quality over every set's
    runs of the scenario (the public tasks' pooled acc_norm where all have it, else the probe)."""
    runs = [r for rs in sets for r in rs.get("_members", rs["runs"]) if r["spec"]["scenario"] == scenario]
    name, _, lab = tradeoff.quality(scenario, runs)
    if scenario == "finetune" and lab == "arith accuracy":
        tasks = sorted({r["spec"].get("task") or "arith" for r in runs})
        if set(tasks) <= {"arith"}:
            return QUALITY["finetune"]
        # each group its own task (SST-2 beside the pruning runs' arith-noisy): the axis names every one
        says = {
            t: tradeoff.HELD_OUT_QUALITY[t][2] if t in tradeoff.HELD_OUT_QUALITY else f"{t} exact match" for t in tasks
        }
        return name, "task accuracy (%): " + ", ".join(says[t] for t in tasks)
    return name, quality_axis(lab)


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


def group_names(keys: list[tuple], seeds: dict[tuple, list[int]]) -> dict[tuple, str]:
    """A short name per comparable group: 'arith, seeds 0,1,2' ('seed 0' for inference); the
    differing budget where two would otherwise read alike."""

    def base(k):  # an inference run's task is only its arith budget: its quality is the public tasks'
        ss = seeds[k]
        said = f"seed{'s' if len(ss) > 1 else ''} {','.join(map(str, ss))}"
        return f"{k[1]}, {said}" if k[0] == "finetune" else said

    out = {}
    for k in keys:
        twins = [o for o in keys if o != k and base(o) == base(k)]
        extra = ""
        if twins:  # the budget that differs, else the data (first seed's training data hash)
            mine, other = json.loads(k[4]), json.loads(twins[0][4])
            diff = [f"{n}={v}" for n, v in mine.items() if other.get(n) != v]
            extra = f" ({', '.join(diff)})" if diff else f" (data {k[5][0][1][:8] if k[5] else '?'})"
        out[k] = base(k) + extra
    return out


def _quality(rep: dict, qname: str):
    """(value %, stderr %, seed sd % or None, chance) of a representative's quality metric."""
    m = rep["metrics"].get(qname) or {}
    if m.get("value") is None:
        return None
    return (
        100 * m["value"],
        100 * (m.get("stderr") or 0),
        100 * m["seed_sd"] if m.get("seed_sd") else None,
        m.get("chance"),
    )


def _x_of(fx, price):
    """The panel's x figure of one run (a member), for its range over replicates."""
    return lambda r: fx(r, cost.derived(r, price, None))


def tradeoff_to_draw(groups: list[tuple]) -> bool:
    """Whether (comparable key, runs) series hold a trade-off: two runs of one group, or one
    group's runs in two sets. A lone point per group ranks nothing (a one-run set; a suite like
    `card` whose runs each score other items), so no figure is drawn for it."""
    keys = [key for key, _ in groups]
    return any(len(runs) >= 2 for _, runs in groups) or len(set(keys)) < len(keys)


def pareto_figure(sets: list[dict], scenario: str):
    qname, qlabel = headline(sets, scenario)
    series = []  # (set index, set, group name, [(representative, members)])
    for k, rs in enumerate(sets):
        groups = [
            g
            for g in replicates.groups({"runs": rs.get("_members", rs["runs"])}).values()
            if replicates.primary(g)["spec"]["scenario"] == scenario and replicates.primary(g)["status"] == "ok"
        ]
        by: dict[tuple, list] = {}
        for g in groups:
            rep = replicates.representative(g)
            if _quality(rep, qname) is not None:  # a run with no quality figure (generation only) draws no point
                by.setdefault(comparable(g), []).append((rep, g))
        seeds = {key: sorted({s for _, g in v for s in replicates.by_seed(g, qname)} or {0}) for key, v in by.items()}
        names = group_names(list(by), seeds)
        series += [(k, rs, names[key], v, key) for key, v in by.items()]
    if not tradeoff_to_draw([(key, runs) for *_, runs, key in series]):
        return None
    series = [s[:4] for s in series]
    many = len(series) > 1  # name the groups (and sets) only where there is more than one
    n_runs = sum(len(runs) for *_, runs in series)
    fig, axes = plt.subplots(1, 3, figsize=(16, 6 + 0.12 * max(0, n_runs - 8)))  # room for many labels
    drawn, chance, labels = False, None, {ax: [] for ax in axes}
    for i, (_k, rs, gname, runs) in enumerate(series):
        price, _ = runinfo.price(rs)
        st = series_style(i)
        color = st["color"]
        tag = (f"{label(rs)} | " if len(sets) > 1 else "") + gname
        gid = f"{label(rs)}|{gname}"
        for ax, (xlabel, fx, hib) in zip(axes, axes_specs(scenario)):
            pts = []
            for rep, members in runs:
                q = _quality(rep, qname)
                x = fx(rep, cost.derived(rep, price, None))
                if q is None or x is None:
                    continue
                sp = replicates.spread(members, _x_of(fx, price))
                lo, hi = (sp["lo"], sp["hi"]) if sp and sp["n"] >= 2 else (x, x)
                pts.append((x, *q, min(lo, x), max(hi, x), rep["id"]))
                chance = q[3] if q[3] is not None else chance
            if not pts:
                continue
            drawn = True
            xs, ys, es, sds, _, los, his, ids = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor=color, alpha=0.6, capsize=2, lw=1)[2][0].set_gid(
                f"yerr:{gid}"
            )
            if any(sds):
                ax.errorbar(xs, ys, yerr=[s or 0 for s in sds], fmt="none", ecolor=color, alpha=0.25, lw=5)
            if any(h > lo for lo, h in zip(los, his)):
                xerr = [[x - lo for x, lo in zip(xs, los)], [h - x for x, h in zip(xs, his)]]
                ax.errorbar(xs, ys, xerr=xerr, fmt="none", ecolor=color, alpha=0.6, capsize=2, lw=1)[2][0].set_gid(
                    f"xerr:{gid}"
                )
            ax.scatter(
                xs,
                ys,
                color=color,
                marker=st["marker"],
                s=30,
                zorder=3,
                label=f"runs: {tag}" if many else "runs",
                gid=f"points:{gid}",
            )
            half = [max(e, s or 0) for e, s in zip(es, sds)]
            f = frontier(
                list(zip(xs, ys)), hib, [((lo, hi), (y - h, y + h)) for lo, hi, y, h in zip(los, his, ys, half)]
            )
            ax.plot(
                [xs[j] for j in f],
                [ys[j] for j in f],
                ls="none",
                color=color,
                marker="o",
                ms=12,
                mfc="none",
                mew=1.3,
                zorder=4,
                gid=f"frontier:{gid}",
            )
            at: dict[tuple, list[str]] = {}  # runs on the same spot share one label: "int8, nf4"
            for x, y, rid in zip(xs, ys, ids):
                at.setdefault((x, y), []).append(short_name(rid))
            labels[ax] += [(x, y, ", ".join(n), color) for (x, y), n in at.items()]
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 5))
            ax.set_xlabel(xlabel + (" →  better" if hib else "  ← better"))
            ax.set_ylabel(qlabel)
            ax.grid(alpha=0.3)
    if not drawn:
        plt.close(fig)
        return None
    for ax in axes:
        chance_line(ax, chance, legend=ax is axes[0])
    handles, names = axes[0].get_legend_handles_labels()
    ring = Line2D([], [], ls="none", marker="o", ms=12, mfc="none", mew=1.3, color="black")
    handles, names = [*handles, ring], [*names, "ringed: the front, not dominated in its group beyond the bars"]
    ncol = min(3, len(names))
    fig.legend(handles, names, loc="lower center", bbox_to_anchor=(0.5, 0.03), ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(
        f"{scenario}: quality vs throughput, memory and cost (up and toward 'better' is better)\n{describe(sets)}"
    )
    note = (
        "bars: quality ± per-item stderr (thin), across-seed sd (thick); x: range over a run's replicates"
        " (none: one replicate); a ring: no point of its group is better beyond both bars; points are never joined"
    )
    fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=7, color="dimgrey")
    fig.subplots_adjust(bottom=0.14 + 0.035 * -(-len(names) // ncol), top=0.86, wspace=0.3)
    for ax in axes:
        plot_labels.place(ax, labels[ax])
    return fig


FORMATS = ("png", "svg")


def save(fig, folder: Path, name: str, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """`fig` as folder/name.<ext> for each format, kept inside `folder` (results.output_file)."""
    out = []
    for ext in formats:
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


def plot(paths: list, out: str | Path | None = None, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Load the result sets, draw every figure, write it in each format (PNG and SVG) into `out`
    (default: the first set's folder). Returns the files written."""
    # one point per suite run: replicate medians and seed means stand for a run's members
    # (sweeps test each point against its baseline over the members: `_members` keeps them)
    sets = [{**rs, "runs": representatives(rs), "_members": rs["runs"]} for rs in map(results.load, paths)]
    folder = Path(out) if out else Path(sets[0]["_path"]).parent
    written = []
    for name, fig in figures(sets).items():
        written += save(fig, folder, name, formats)
    return written
