"""Line plots of result sets: fine-tuning curves, the data-pruning curve, kernel speed-ups.

- finetune: accuracy (± stderr) against training wall time and against dollars, one line per run
  (its techniques), the suite's target accuracy (cost.target_accuracy) as a horizontal line.
  Dollars = price x (setup + training seconds), as in effbench.read.cost. Training-technique runs and
  data-pruning runs (runinfo.is_pruning_run) are drawn in two separate figures.
- pruning: final accuracy against the kept fraction of the train split, one series per strategy
  (runs whose data records n_train_kept), the unpruned run on the same noisy split (not the
  plain fine-tuning run on clean data) as a star at 1.0. A strategy's points are joined only where
  each is a mean over two or more seeds: one seed's accuracy moves with the training seed about
  as much as along the curve, so one-seed points stand alone (as in plot_sweeps).
- kernels: from a set's top-level "kernels" records, effbench's speed-up (their median / ours)
  over eager and liger per kernel across token counts; above 1 means effbench is faster.
Several sets: same colour and marker per run or strategy (plot.series_style), solid line for the
first set, dashed for others. (A fine-tuning curve joins the evaluations of one run along its own
training, a trajectory rather than a trend across runs, so it stays a line.)
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402, I001

from effbench.read import cost, runinfo
from effbench.render.plot_style import describe, label, series_style
from effbench.techniques import family_members

STYLES = ["-", "--", ":", "-."]


def finetune_figure(sets: list[dict], pruning: bool = False):
    """Accuracy curves of the training-technique runs, or (pruning=True) of the data-pruning runs."""
    runs = [
        (k, rs, r)
        for k, rs in enumerate(sets)
        for r in rs["runs"]
        if r["spec"]["scenario"] == "finetune"
        and r["status"] == "ok"
        and (r.get("curves") or {}).get("accuracy_vs_time")
        and runinfo.is_pruning_run(r) == pruning
    ]
    if not runs:
        return None
    names = list(dict.fromkeys(r["id"] for _, _, r in runs))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for k, rs, r in runs:
        price, _ = runinfo.price(rs)
        setup = (r.get("setup") or {}).get("wall_s") or 0.0
        c = r["curves"]["accuracy_vs_time"]
        y = [100 * p["accuracy"] for p in c]
        e = [100 * (p.get("stderr") or 0) for p in c]
        ns = (r["metrics"].get("accuracy") or {}).get("n_seeds")  # a representative of several seeds
        lab = (
            f"{r['id']}: {runinfo.techniques_label(r)}"
            + (f" [{label(rs)}]" if len(sets) > 1 else "")
            + (f" (seed {r['spec'].get('seed', 0)}'s curve of {ns} seeds)" if ns and ns > 1 else "")
        )
        st = series_style(names.index(r["id"]))
        color = st["color"]
        xs = [[p["train_wall_s"] for p in c]] + (
            [[price * (setup + p["train_wall_s"]) / 3600 for p in c]] if price is not None else []
        )
        for ax, x in zip(axes, xs):
            ax.errorbar(x, y, yerr=e, fmt="none", ecolor=color, alpha=0.5, capsize=2)
            ax.plot(
                x,
                y,
                color=color,
                ls=STYLES[k % len(STYLES)],
                marker=st["marker"],
                ms=4,
                gid=f"curve:{r['id']}",
                label=lab if ax is axes[0] else None,
            )
    for k, rs in enumerate(sets):
        t = cost.target_accuracy(rs)
        if t is not None:
            for ax in axes:
                ax.axhline(100 * t, color="grey", ls=STYLES[k % len(STYLES)], lw=1, gid="target")
            axes[0].annotate(
                f"target {100 * t:.1f}%",
                (0, 100 * t),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=8,
                color="grey",
            )
    axes[0].set_xlabel("training wall time (s, evaluation excluded)")
    axes[1].set_xlabel("cost (USD: price x (setup + training time))")
    for ax in axes:
        ax.set_ylabel("eval accuracy (%)")
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=min(3, len(runs)), fontsize=8, frameon=False)
    what = "data pruning (LoRA on the noisy split)" if pruning else "fine-tuning"
    fig.suptitle(f"{what}: accuracy vs time and cost\n{describe(sets)}")
    fig.subplots_adjust(bottom=0.14 + 0.04 * ((len(runs) + 2) // 3), top=0.86)
    return fig


def _pruning_strategy(r: dict):
    for t in r["spec"].get("techniques") or []:
        if t["name"] in family_members("data_pruner"):
            return t["name"]
    return None


def pruning_figure(sets: list[dict]):
    def ok(r):
        return (
            r["spec"]["scenario"] == "finetune"
            and r["status"] == "ok"
            and (r["metrics"].get("accuracy") or {}).get("value") is not None
        )

    if not any(ok(r) and (r.get("data") or {}).get("n_train_kept") is not None for rs in sets for r in rs["runs"]):
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    strategies: list[str] = []
    for k, rs in enumerate(sets):
        lines: dict[str, list] = {}
        for r in filter(ok, rs["runs"]):
            m, d = r["metrics"]["accuracy"], r.get("data") or {}
            if runinfo.is_pruning_run(r) and not _pruning_strategy(r):  # the unpruned run on the same noisy split
                ax.errorbar(
                    [1.0],
                    [100 * m["value"]],
                    yerr=[100 * (m.get("stderr") or 0)],
                    fmt="*",
                    ms=12,
                    color="black",
                    label=f"no pruning: {r['id']}" if k == 0 else None,
                )
            elif d.get("n_train_kept") is not None and _pruning_strategy(r):
                lines.setdefault(_pruning_strategy(r), []).append(
                    (
                        d["n_train_kept"] / d["n_train"],
                        100 * m["value"],
                        100 * (m.get("stderr") or 0),
                        m.get("n_seeds") or 1,
                    )
                )
        for s, pts in sorted(lines.items()):
            strategies += [s] if s not in strategies else []
            xs, ys, es, seeds = zip(*sorted(pts))
            joined = len(xs) > 1 and min(seeds) >= 2  # one seed's accuracies are points, not a trend
            st = series_style(strategies.index(s))
            color = st["color"]
            ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor=color, alpha=0.5, capsize=2)
            ax.plot(
                xs,
                ys,
                marker=st["marker"],
                color=color,
                ls=STYLES[k % len(STYLES)] if joined else "none",
                gid=f"strategy:{s}",
                label=s + (f" [{label(rs)}]" if len(sets) > 1 else ""),
            )
    ax.set_xlabel("kept fraction of the train split (0-1, examples)")
    ax.set_ylabel("final eval accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"data pruning: accuracy vs kept data\n{describe(sets)}", fontsize=10)
    fig.tight_layout()
    return fig


def kernels_figure(sets: list[dict]):
    recs = [(k, rec) for k, rs in enumerate(sets) for rec in rs.get("kernels") or [] if rec.get("median_ms")]
    kernels = list(dict.fromkeys(rec["kernel"] for _, rec in recs))
    if not kernels:
        return None
    fig, axes = plt.subplots(1, len(kernels), figsize=(4.5 * len(kernels), 4.5), squeeze=False)
    for ax, kern in zip(axes[0], kernels):
        times: dict[tuple, dict] = {}
        for k, rec in recs:
            if rec["kernel"] == kern:
                times.setdefault((k, rec["pass"], rec.get("hidden"), rec.get("dtype"), rec["tokens"]), {})[
                    rec["impl"]
                ] = rec["median_ms"]
        lines: dict[tuple, list] = {}
        for (k, which, hidden, dtype, tokens), ms in times.items():
            for other in ("eager", "liger"):
                if ms.get("effbench") and ms.get(other):
                    lines.setdefault((k, other, which, hidden, dtype), []).append((tokens, ms[other] / ms["effbench"]))
        for i, ((k, other, which, _hidden, dtype), pts) in enumerate(sorted(lines.items(), key=str)):
            xs, ys = zip(*sorted(pts))
            ax.plot(
                xs,
                ys,
                ms=4,
                ls=STYLES[k % len(STYLES)],
                **series_style(i),
                label=f"vs {other}, {which}, {dtype}" + (f" [{label(sets[k])}]" if len(sets) > 1 else ""),
                gid=f"speedup:{other}",
            )
        ax.axhline(1.0, color="grey", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_title(kern)
        ax.set_xlabel("tokens (rows)")
        ax.set_ylabel("speed-up of effbench (x, their time / ours)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"kernel speed-ups (above 1: effbench faster)\n{describe(sets)}")
    fig.tight_layout()
    return fig
