"""Trade-off curves of sweeps (effbench.read.sweep_curves): one figure per scenario and swept parameter.

Figure `sweep_<scenario>_<parameter>` (e.g. sweep_infer_sparsity, sweep_finetune_r,
sweep_finetune_fraction for data pruning, so pruning curves never share a figure with training
techniques): three panels, quality against the swept value, against throughput and against memory.
Each sweep of one technique is one series (its own colour and marker, plot_style.series_style); a
sweep over techniques (the bits axis: int8, torchao_int8wo, nf4, fp4) is one series per technique,
never one line across libraries. Error bars: y the per-item stderr (thin, capped) and, where
several seeds exist, the across-seed sd (thick, translucent); x in the throughput and memory
panels the range over the point's replicates where it has two or more.

A line joins a series' points only where both axes of the panel carry their noise (`joined`):
the swept value is set exactly; throughput and memory need two or more replicates at every point;
quality needs two or more seeds in fine-tuning (one seed's accuracy moves with the training seed
as much as along most curves), while an inference run's quality comes from a fixed model on fixed
items, so its per-item stderr is its interval. Otherwise the points stand alone: one-replicate
timings are never drawn as a trend.

The baseline (run without techniques, or the unpruned run) is a dashed black line with a grey
±stderr band on the quality axis, and a black star in the throughput and memory panels; the
chance level, where the quality metric records one, a dotted line; the knee (most aggressive
non-inferior point) is circled in red. A swept value that steps by factors (LoRA rank 2, 8, 32,
64) gets a log axis (plot_style.geometric).
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402, I001

from effbench.read import sweep_curves
from effbench.render import plot_labels, plot_style
from effbench.render.plot_style import chance_line, describe, geometric, label, log_x_at, series_style
from effbench.techniques import registry

X_LABELS = {
    "sparsity": "sparsity (fraction of block-linear weights zeroed)",
    "bits": "bits per weight (measured, scales included)",
    "r": "LoRA rank r (adapter dimensions, log scale)",
    "fraction": "kept fraction of the train split (0-1, examples)",
    "batch_size": "batch size (sequences)",
}
QUALITY = {"finetune": "arith exact match after fine-tuning (%)", "infer": "probe accuracy (%)"}  # older records
SPEED = {"finetune": "train throughput (tokens/s)", "infer": "decode throughput, largest batch (tokens/s)"}
BASE_STYLES = ["--", ":", "-."]  # the baseline line of each result set (dashed for the first)
MEMORY = {"finetune": "peak memory (MiB)", "infer": "weight memory (MiB, stored bytes)"}
SCALE = {"x": 1, "speed": 1, "memory_bytes": 2**20}


def y_label(scenario: str, records: list[dict]) -> str:
    """The quality axis: the headline metric the sweeps' points carry (tradeoff.quality), each
    named where records of several sets plot different ones."""
    labels = sorted({sw.get("quality_label") or "" for sw in records})
    if labels == [""]:
        return QUALITY[scenario]
    return " / ".join(plot_style.quality_axis(lab) for lab in labels if lab)


def joined(pts: list[dict], key: str, scenario: str) -> bool:
    """Whether a line may join these points of one technique on the panel of `key` (see above)."""
    if len(pts) < 2:
        return False
    quality_ok = scenario == "infer" or all((q.get("n_seeds") or 1) >= 2 for q in pts)
    x_ok = key == "x" or all((q.get(f"{key}_spread") or {}).get("n", 1) >= 2 for q in pts)
    return quality_ok and x_ok


def _technique_name(name: str) -> str:
    """'int8' -> 'int8 (bitsandbytes)': a technique with its library where its name does not say it."""
    cls = registry().get(name)  # None for a name this checkout does not know (another set's plugin)
    libs = [r for r in getattr(cls, "requires", ()) if r not in ("cuda", "triton")]
    return name + (f" ({libs[0]})" if libs and libs[0] not in name else "")


def _series(sw: dict) -> list[tuple[str, list[dict]]]:
    """(name suffix, points) of a sweep: one per technique on a technique axis, else the sweep."""
    pts = [q for q in sw["points"] if q["quality"] is not None]
    if sw["axis"] != "technique":
        return [("", pts)] if pts else []
    by: dict[str, list] = {}
    for q in pts:
        by.setdefault(str(q["value"]), []).append(q)
    return [(f": {_technique_name(v)}", qs) for v, qs in by.items()]


def _errorbars(ax, xs, ys, pts, color, key, gid):
    es = [100 * (q["stderr"] or 0) for q in pts]
    ax.errorbar(xs, ys, yerr=es, fmt="none", ecolor=color, alpha=0.6, capsize=3, lw=1)[2][0].set_gid(f"yerr:{gid}")
    sd = [100 * (q["seed_sd"] or 0) for q in pts]
    if any(sd):
        ax.errorbar(xs, ys, yerr=sd, fmt="none", ecolor=color, alpha=0.25, capsize=0, lw=5)
    if key == "x":
        return
    spreads = [q.get(f"{key}_spread") for q in pts]
    if all(s and s["n"] >= 2 for s in spreads):
        lo = [x - s["lo"] / SCALE[key] for x, s in zip(xs, spreads)]
        hi = [s["hi"] / SCALE[key] - x for x, s in zip(xs, spreads)]
        bars = ax.errorbar(xs, ys, xerr=[lo, hi], fmt="none", ecolor=color, alpha=0.6, capsize=3, lw=1)
        bars[2][0].set_gid(f"xerr:{gid}")


def _value(q: dict) -> str:
    v = q["value"]
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _name(sw: dict, suffix: str, rs: dict, sets: list[dict]) -> str:
    return (
        sw["id"]
        + suffix
        + (f" [{label(rs)}]" if len(sets) > 1 else "")
        + (
            (" (a point, non-inferior)" if sw["knee"] else " (a point)")
            if sw.get("single")
            else " (no point non-inferior: no knee)"
            if sw["knee"] is None and sw["aggressive"] != "none" and sw["axis"] != "technique"
            else ""
        )
    )


def figure(entries: list[tuple[int, dict, dict]], scenario: str, param: str, sets: list[dict]):
    """entries: (set index, set, sweep record) of one scenario and parameter."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    panels = [
        ("x", X_LABELS.get(param, param), None),
        ("speed", SPEED[scenario], True),
        ("memory_bytes", MEMORY[scenario], False),
    ]
    drawn, names, chance, i = set(), {ax: [] for ax in axes}, None, 0
    for k, rs, sw in entries:
        for suffix, pts in _series(sw):
            st = series_style(i)
            i += 1
            name, gid = _name(sw, suffix, rs, sets), f"sweep:{sw['id']}" + (f":{pts[0]['value']}" if suffix else "")
            for q in pts + ([sw["base"]] if sw["base"] else []):
                chance = q.get("chance") if q.get("chance") is not None else chance
            for ax, (key, xlabel, hib) in zip(axes, panels):
                xy = sorted(
                    ((q[key] / SCALE[key], 100 * q["quality"], q) for q in pts if q[key] is not None),
                    key=lambda t: t[0],
                )
                if not xy:
                    continue
                xs, ys, ps = zip(*xy)
                _errorbars(ax, xs, ys, ps, st["color"], key, gid)
                ls = "-" if joined(list(ps), key, scenario) else "none"
                ax.plot(xs, ys, ls=ls, ms=6, **st, label=name if ax is axes[0] else None, gid=gid)
                if suffix and ax is axes[0]:  # a technique axis: name each technique at its point
                    names[ax].append((xs[0], ys[0], str(pts[0]["value"]), st["color"]))
                elif (
                    not suffix and not sw.get("single") and ax is not axes[0]
                ):  # unjoined points say which swept value they are
                    names[ax] += [(x, y, _value(q), st["color"]) for x, y, q in xy]
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
                        label="knee: most aggressive non-inferior" if ax is axes[0] and "knee" not in drawn else None,
                    )
                    drawn.add("knee")
                ax.set_xlabel(xlabel + ("" if hib is None else " →  better" if hib else "  ← better"))
        b = sw["base"]
        if b is not None and b["quality"] is not None and (k, b["id"]) not in drawn:
            drawn.add((k, b["id"]))
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
                        [b[key] / SCALE[key]],
                        [y],
                        ls="none",
                        marker="*",
                        ms=14,
                        color="black",
                        gid="baseline-point",
                    )
    xs0 = [q["x"] for _, _, sw in entries if sw["axis"] != "technique" for q in sw["points"] if q["x"] is not None]
    if xs0 and geometric(xs0):
        log_x_at(axes[0], xs0)
    for ax in axes:
        chance_line(ax, chance, legend=ax is axes[0])
        ax.set_ylabel(y_label(scenario, [sw for _, _, sw in entries]))
        ax.grid(alpha=0.3)
    if names[axes[0]]:
        axes[0].margins(x=0.15)
    handles, labels = axes[0].get_legend_handles_labels()  # under the panels: never over a curve
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.03),
        ncol=min(3, len(labels)),
        fontsize=8,
        frameon=False,
    )
    margins = sorted({sw["margin"] for _, _, sw in entries})
    fig.suptitle(
        f"{scenario} sweeps over {param}: quality vs {param}, throughput and memory "
        f"(knee: non-inferior at -{'/'.join(f'{100 * m:g}' for m in margins)} pt, p < 0.05)\n{describe(sets)}"
    )
    note = (
        "bars: quality ± per-item stderr (thin), across-seed sd (thick); x: range over replicates. A line joins a sweep's "
        "points only where both axes carry their noise (timings: 2+ replicates; fine-tuning quality: 2+ seeds)"
    )
    fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=7, color="dimgrey")
    fig.subplots_adjust(top=0.85, bottom=0.14 + 0.035 * ((len(labels) + 2) // 3), wspace=0.28)
    for ax in axes:
        plot_labels.place(ax, names[ax], fontsize=7)
    return fig


def figures(sets: list[dict]) -> dict:
    """name -> Figure: `sweep_<scenario>_<parameter>` for every swept parameter in the sets."""
    by: dict[tuple[str, str], list] = {}
    for k, rs in enumerate(sets):
        for sw in sweep_curves.sweeps({**rs, "runs": rs.get("_members", rs["runs"])}):
            by.setdefault((sw["scenario"], sw["param"]), []).append((k, rs, sw))
    return {f"sweep_{scen}_{param}": figure(entries, scen, param, sets) for (scen, param), entries in by.items()}
