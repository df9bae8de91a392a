"""Sweep curves and readable plots: one figure per swept parameter (pruning apart from training),
baseline line, knee, error bars; no two series on one axis share colour and marker; titles name
model, device and suite; PNG and SVG written."""

from __future__ import annotations

import copy
import gc

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest
from _resultsets import write
from _sweepset import sweep_set

from effbench.render import plot, plot_style


@pytest.fixture(autouse=True, scope="module")
def _collect_garbage():
    """matplotlib figures hold reference cycles: free them here, not in a later test's memory measurement."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def figs():
    rs = sweep_set()
    out = plot.figures([{**rs, "_members": rs["runs"]}])
    yield out
    for fig in out.values():
        plt.close(fig)


def _series(ax):
    """(colour, marker) of each labelled data series on an axis (markers drawn, legend label set)."""
    return [
        (mcolors.to_hex(ln.get_color()), ln.get_marker())
        for ln in ax.lines
        if ln.get_marker() not in (None, "None", "", " ") and not (ln.get_label() or "_").startswith("_")
    ]


def test_series_style_never_repeats_within_80():
    styles = [tuple(plot.series_style(i).values()) for i in range(80)]
    assert len(set(styles)) == 80
    assert len({s[0] for s in styles[:10]}) == 10  # the first ten differ in colour alone too


def test_no_two_series_on_one_axis_share_colour_and_marker(figs):
    assert len(figs["finetune_curves"].axes[0].get_legend_handles_labels()[1]) == 15  # more runs than the old 5 colours
    for name, fig in figs.items():
        for ax in fig.axes:
            s = _series(ax)
            assert len(s) == len(set(s)), (name, s)


def test_one_figure_per_swept_parameter_with_pruning_apart(figs):
    assert {n for n in figs if n.startswith("sweep_")} == {
        "sweep_infer_sparsity",
        "sweep_infer_bits",
        "sweep_finetune_r",
        "sweep_finetune_fraction",
    }
    fine = {ln.get_gid() for ax in figs["finetune_curves"].axes for ln in ax.lines}
    prune = {ln.get_gid() for ax in figs["pruning_curves"].axes for ln in ax.lines}
    assert not any("prune" in (g or "") for g in fine) and "curve:prune-none" in prune
    assert {g for g in prune if g and g.startswith("curve:")} == {"curve:prune-none"} | {
        f"curve:prune-perplexity-fraction{f}" for f in (0.3, 0.5, 0.7, 0.9)
    }


def test_sweep_figure_lines_baseline_and_knee(figs):
    fig = figs["sweep_infer_sparsity"]
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.lines}
    assert list(lines["sweep:infer-magnitude"].get_xdata()) == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert list(lines["sweep:infer-wanda"].get_ydata()) == [84, 83, 78, 62, 40]
    base = [ln for ln in ax.lines if ln.get_gid() == "baseline"]
    assert len(base) == 1 and list(base[0].get_ydata()) == [84, 84]
    # wanda 0.1 has the baseline's items: non-inferior; 0.3 (-1 pt on paired items) is not shown non-inferior
    knee = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("knee:")]
    assert [(k.get_gid(), list(k.get_xdata())) for k in knee] == [("knee:infer-wanda", [0.1])]
    # 2:4 (a plain run, sparsity fixed) is a one-point series at the sparsity it recorded, not non-inferior
    two4 = lines["sweep:infer-2of4"]
    assert list(two4.get_xdata()) == [pytest.approx(0.5000046)] and list(two4.get_ydata()) == [60]
    assert "infer-2of4 (a point)" in ax.get_legend_handles_labels()[1]
    # bits: nf4 and fp4 share 4.14 bits; each technique is named at its point, the names apart
    bits = figs["sweep_infer_bits"]
    renderer = bits.canvas.get_renderer()
    names = {t.get_text(): t.get_window_extent(renderer) for t in bits.axes[0].texts}
    assert set(names) == {"int8", "nf4", "fp4"} and not names["nf4"].overlaps(names["fp4"])
    # a knee on a lower-is-aggressive axis: pruning keeps 0.7 of the data at the unpruned accuracy
    kp = [ln for ln in figs["sweep_finetune_fraction"].axes[0].lines if (ln.get_gid() or "").startswith("knee:")]
    assert [list(k.get_xdata()) for k in kp] == [[0.7]]


@pytest.mark.parametrize(
    "name",
    [
        "sweep_infer_sparsity",
        "sweep_infer_bits",
        "sweep_finetune_r",
        "finetune_curves",
        "pruning_curves",
        "pruning",
        "pareto_infer",
    ],
)
def test_titles_name_model_device_suite_and_axes_carry_units(figs, name):
    fig = figs[name]
    title = (fig._suptitle.get_text() if fig._suptitle else "") + " ".join(ax.get_title() for ax in fig.axes)
    assert "model tiny" in title and "device Test CPU" in title and "suite cpu-sweeps" in title
    for ax in fig.axes:
        assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel(), (ax.get_xlabel(), ax.get_ylabel())


def test_plot_writes_png_and_svg_of_every_sweep(tmp_path):
    written = plot.plot([write(sweep_set(), tmp_path)])
    names = {p.name for p in written}
    for n in ("sweep_infer_sparsity", "sweep_infer_bits", "sweep_finetune_r", "sweep_finetune_fraction"):
        assert {f"{n}.png", f"{n}.svg"} <= names


def test_pruning_reference_is_the_unpruned_run_on_the_noisy_split(figs):
    ax = figs["pruning"].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "no pruning: prune-none" in labels and not any("finetune-full" in lab for lab in labels)


def _sweep_lines(ax):
    return [ln for ln in ax.lines if (ln.get_gid() or "").startswith("sweep:")]


def test_one_replicate_points_are_never_joined(figs):
    """Throughput and memory of one-replicate points, and one seed's fine-tuning accuracy, are
    points: a line through them would draw run-to-run noise as a trend."""
    for name in ("sweep_infer_sparsity", "sweep_infer_bits", "sweep_finetune_r", "sweep_finetune_fraction"):
        for ax in figs[name].axes[1:]:
            assert _sweep_lines(ax) and all(ln.get_linestyle() == "None" for ln in _sweep_lines(ax)), name
            assert not [c for c in ax.collections if (c.get_gid() or "").startswith("xerr:")]  # no interval to draw
    for name in ("sweep_finetune_r", "sweep_finetune_fraction"):  # one seed: quality is not a trend either
        assert all(ln.get_linestyle() == "None" for ln in _sweep_lines(figs[name].axes[0])), name
    # inference quality against the swept sparsity, with its per-item stderr bars: a curve
    ax = figs["sweep_infer_sparsity"].axes[0]
    joined = {ln.get_gid() for ln in _sweep_lines(ax) if ln.get_linestyle() == "-"}
    assert joined == {"sweep:infer-magnitude", "sweep:infer-wanda"}
    assert {c.get_gid() for c in ax.collections if (c.get_gid() or "").startswith("yerr:")} >= {
        "yerr:sweep:infer-magnitude",
        "yerr:sweep:infer-wanda",
    }


def test_one_series_per_technique_on_the_bits_figure(figs):
    for ax in figs["sweep_infer_bits"].axes:
        lines = _sweep_lines(ax)
        assert sorted(ln.get_gid() for ln in lines) == [f"sweep:infer-bits:{q}" for q in ("fp4", "int8", "nf4")]
        assert all(len(ln.get_xdata()) == 1 for ln in lines)  # never a line across libraries
        styles = {(mcolors.to_hex(ln.get_color()), ln.get_marker()) for ln in lines}
        assert len(styles) == 3
    legend = figs["sweep_infer_bits"].axes[0].get_legend_handles_labels()[1]
    assert "infer-bits: int8 (bitsandbytes)" in legend and "infer-bits: nf4 (bitsandbytes)" in legend


def test_points_with_replicates_are_joined_with_x_intervals():
    rs = sweep_set()
    runs = []
    for r in rs["runs"]:  # three replicate processes of every magnitude point, throughput spread by 5%
        runs.append(r)
        if (r["spec"].get("sweep") or {}).get("id") == "infer-magnitude":
            for i, f in ((1, 0.95), (2, 1.05)):
                c = copy.deepcopy(r)
                c["id"] = f"{r['id']}@r{i}"
                c["spec"].update(replicate=i, timing_only=True)
                for k in ("decode_tokens_per_s.b1", "decode_tokens_per_s.b8"):
                    c["metrics"][k]["value"] *= f
                c["metrics"]["probe_acc"] = {"value": None, "reason": "timing-only replicate"}
                c["items"] = {}
                runs.append(c)
    fig = plot.figures([{**rs, "runs": runs, "_members": runs}])["sweep_infer_sparsity"]
    for ax in fig.axes[1:]:
        line = next(ln for ln in _sweep_lines(ax) if ln.get_gid() == "sweep:infer-magnitude")
        assert line.get_linestyle() == "-" and len(line.get_xdata()) == 5
    bars = [c for c in fig.axes[1].collections if c.get_gid() == "xerr:sweep:infer-magnitude"]
    assert len(bars) == 1 and len(bars[0].get_segments()) == 5
    seg = bars[0].get_segments()[0]
    assert seg[1][0] / seg[0][0] == pytest.approx(1.05 / 0.95)  # the replicates' range
    wanda = next(ln for ln in _sweep_lines(fig.axes[1]) if ln.get_gid() == "sweep:infer-wanda")
    assert wanda.get_linestyle() == "None"  # still one replicate each


def test_chance_line_on_probe_axes_and_log_axis_for_rank(figs):
    for name in ("sweep_infer_sparsity", "sweep_infer_bits"):
        for ax in figs[name].axes:
            chance = [ln for ln in ax.lines if ln.get_gid() == "chance"]
            assert len(chance) == 1 and list(chance[0].get_ydata()) == [25, 25], name
    assert not [ln for ax in figs["sweep_finetune_r"].axes for ln in ax.lines if ln.get_gid() == "chance"]
    rank = figs["sweep_finetune_r"].axes[0]
    assert rank.get_xscale() == "log" and [t.get_text() for t in rank.get_xticklabels()] == [
        "2",
        "4",
        "8",
        "16",
        "32",
        "64",
    ]
    assert figs["sweep_infer_sparsity"].axes[0].get_xscale() == "linear"
    assert figs["sweep_finetune_fraction"].axes[0].get_xscale() == "linear"
    assert plot_style.geometric([2, 8, 32, 64]) and not plot_style.geometric([0.1, 0.3, 0.5, 0.7, 0.9])
