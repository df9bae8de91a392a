"""Sweep curves and readable plots: one figure per swept parameter (pruning apart from training),
baseline line, knee, error bars; no two series on one axis share colour and marker; titles name
model, device and suite; PNG and SVG written."""

from __future__ import annotations

import gc

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pytest
from _resultsets import write
from _sweepset import sweep_set

from effbench.render import plot


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
    # bits: nf4 and fp4 share 4.14 bits; the lower one's name goes under its point, the other's above
    names = {t.get_text(): t.xyann[1] for t in figs["sweep_infer_bits"].axes[0].texts}
    assert names["fp4"] < 0 < names["nf4"] and names["int8"] > 0
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
