"""effbench plot / report / the PR entry: figures hold one point per run (counted from the artists),
the Pareto frontier is right, optional plots appear only with their data, files land in the
result set's folder, and README.md embeds them by relative path."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pytest
from _resultsets import finetune_run, infer_run, make_set, real_infer, replicated, write

from effbench import cli
from effbench.read import results, tradeoff
from effbench.render import plot, plot_curves, pr_report, report


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _points(fig, prefix="points:"):
    return sum(
        len(c.get_offsets()) for ax in fig.axes for c in ax.collections if (c.get_gid() or "").startswith(prefix)
    )


def _lines(fig, prefix):
    return [ln for ax in fig.axes for ln in ax.lines if (ln.get_gid() or "").startswith(prefix)]


def smoke_like():
    return make_set(
        [
            finetune_run(),
            finetune_run(
                "finetune-lora", [{"name": "lora", "params": {"r": 8}}], tps=1500.0, curve_acc=(0.1, 0.2, 0.4)
            ),
            infer_run(),
            infer_run("infer-int8", [{"name": "int8", "params": {}}], dec=700.0),
        ]
    )


def _label_texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("label:")]


def _bars(fig, kind):
    """Panels that hold error bars of `kind` ('xerr' or 'yerr')."""
    return [ax for ax in fig.axes if any((c.get_gid() or "").startswith(kind + ":") for c in ax.collections)]


def test_frontier_keeps_only_undominated_points():
    pts = [(100, 50), (200, 40), (150, 60), (50, 55), (300, 10)]  # (throughput, quality)
    assert plot.frontier(pts, x_higher_better=True) == [4, 1, 2]
    assert plot.frontier([(10, 50), (5, 40), (20, 60)], x_higher_better=False) == [1, 0, 2]  # memory: lower better


def test_frontier_counts_a_point_dominated_only_beyond_the_intervals():
    pts = [(100, 80), (90, 78)]  # b is worse on both axes by its point values
    assert plot.frontier(pts, True) == [0]
    # quality 80 ± 2 against 78 ± 2: the intervals overlap, so b may be as good: it stays
    assert plot.frontier(pts, True, [((100, 100), (78, 82)), ((90, 90), (76, 80))]) == [0, 1]
    # throughput ranges 95-105 and 88-96 overlap: b stays too
    assert plot.frontier(pts, True, [((95, 105), (79, 81)), ((88, 96), (77, 79))]) == [0, 1]
    # separated on both axes: dominated
    assert plot.frontier(pts, True, [((98, 102), (79, 81)), ((88, 92), (77, 79))]) == [0]
    # an exact tie on one axis (weight bytes) and beyond the interval on the other: dominated
    assert plot.frontier([(5, 80), (5, 70)], False, [((5, 5), (79, 81)), ((5, 5), (69, 71))]) == [0]


def test_frontier_with_a_lower_is_better_y_is_the_same_rule_mirrored():
    """The site's explorer may put memory or cost on y: tradeoff.frontier(y_higher_better=False)
    is the front of the points with y negated."""
    pts = [(100, 50), (200, 40), (150, 60), (50, 55), (300, 70)]  # (throughput, memory)
    got = tradeoff.frontier(pts, True, y_higher_better=False)
    assert got == [4, 1] and got == plot.frontier([(x, -y) for x, y in pts], True)
    iv = [((x - 130, x + 130), (y - 1, y + 1)) for x, y in pts]  # every two throughputs overlap: none dominated
    assert sorted(tradeoff.frontier(pts, True, iv, y_higher_better=False)) == [0, 1, 2, 3, 4]
    assert plot.frontier is tradeoff.frontier  # the static figures use the one rule


def test_pareto_has_one_point_per_run_in_each_panel_and_a_titled_frontier():
    rs = smoke_like()
    fig = plot.pareto_figure([rs], "infer")
    assert len(fig.axes) == 3 and _points(fig) == 3 * 2
    assert len(_lines(fig, "frontier:")) == 3
    assert all(ln.get_linestyle() == "None" for ln in _lines(fig, "frontier:"))  # rings, not a line through noise
    title = fig._suptitle.get_text()
    assert "model tiny" in title and "device Test CPU" in title and "suite smoke" in title
    assert all(re.search(r"\(.+\)", ax.get_xlabel()) for ax in fig.axes)  # units on every axis
    labels = _label_texts(fig)
    assert "baseline, int8" in labels  # equal peak memory: one shared label, not two on top of each other
    assert {n for t in labels for n in t.split(", ")} == {"baseline", "int8"}  # short names on the points


def test_pareto_labels_are_whole_short_names_that_do_not_overlap():
    def qlora(r):
        return [{"name": "qlora", "params": {"r": r, "quant_type": "nf4", "double_quant": True}}]

    runs = [finetune_run()] + [
        finetune_run(f"finetune-qlora-nf4-r{r}", qlora(r), tps=1000 + r, items=[1.0] * (40 + r) + [0.0] * (60 - r))
        for r in range(1, 18)
    ]
    fig = plot.pareto_figure([make_set(runs)], "finetune")
    labels = _label_texts(fig)
    want = {"full"} | {f"qlora-nf4-r{r}" for r in range(1, 18)}
    assert {n for t in labels for n in t.split(", ")} == want  # every run named in full: no cut, no number key
    assert not [t.get_text() for t in fig.texts if "double_qu" in t.get_text()]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if (t.get_gid() or "").startswith("label:")]
        frame = ax.get_window_extent(renderer)
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes)
        overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert not overlaps, ax.get_xlabel()


def test_pareto_x_and_y_error_bars_where_replicates_exist():
    one = smoke_like()
    fig = plot.pareto_figure([one], "infer")
    assert len(_bars(fig, "yerr")) == 3 and _bars(fig, "xerr") == []  # one replicate: no x interval drawn
    runs = [*replicated(real_infer(), 3, 1), *replicated(real_infer("infer-int8", [{"name": "int8"}]), 3, 2)]
    for i, r in enumerate(runs):  # resident memory differs a little between processes
        r["metrics"]["peak_rss_bytes"]["value"] = (700 + i % 3) * 2**20
    rep = make_set(runs)
    fig = plot.pareto_figure([rep], "infer")
    assert _points(fig) == 3 * 2  # one point per suite run, not per replicate
    assert len(_bars(fig, "yerr")) == 3 and len(_bars(fig, "xerr")) == 3  # throughput, memory, cost
    members = [r for r in rep["runs"] if r["spec"]["group"] == "infer-int8"]
    lo, hi = (
        min(results.metric(r, "decode_tokens_per_s.b8") for r in members),
        max(results.metric(r, "decode_tokens_per_s.b8") for r in members),
    )
    bars = next(c for c in fig.axes[0].collections if c.get_gid() == f"xerr:{plot.label(rep)}|seed 0")
    ends = sorted({round(float(x), 6) for seg in bars.get_segments() for x, _ in seg})
    assert round(lo, 6) in ends and round(hi, 6) in ends  # the bar spans the replicates' range


def test_one_front_per_task_data_and_budget():
    noisy = finetune_run("prune-random", [{"name": "random", "params": {"fraction": 0.5}}], tps=2000.0)
    noisy["spec"]["task"] = noisy["data"]["task"] = "arith-noisy"
    noisy["data"]["train_sha256"] = "9" * 64
    longer = finetune_run("finetune-long", tps=3000.0, items=[1.0] * 90 + [0.0] * 10)
    longer["spec"]["budget"] = {"max_steps": 400}
    lora = finetune_run("finetune-lora", [{"name": "lora", "params": {"r": 8}}], tps=1500.0)
    lora["spec"]["budget"] = {"max_steps": 4, "lr": 1e-3}  # its own learning rate: still comparable
    fig = plot.pareto_figure([make_set([finetune_run(), lora, noisy, longer])], "finetune")
    fronts = {ln.get_gid() for ln in fig.axes[0].lines if (ln.get_gid() or "").startswith("frontier:")}
    assert len(fronts) == 3, fronts  # arith at 4 steps (full + lora), arith at 400 steps, arith-noisy
    # the much better 400-step run does not push the 4-step runs off their front
    pts = {
        c.get_gid(): len(c.get_offsets()) for c in fig.axes[0].collections if (c.get_gid() or "").startswith("points:")
    }
    assert sorted(pts.values()) == [1, 1, 2]
    assert any("max_steps=400" in g for g in fronts) and any("arith-noisy" in g for g in fronts)


def test_chance_line_on_probe_accuracy_axes_only():
    rs = smoke_like()
    for r in rs["runs"]:
        if "probe_acc" in r["metrics"]:
            r["metrics"]["probe_acc"]["chance"] = 0.25
    fig = plot.pareto_figure([rs], "infer")
    chance = _lines(fig, "chance")
    assert len(chance) == 3 and all(list(ln.get_ydata()) == [25, 25] for ln in chance)
    assert all(ax.get_ylim()[0] <= 25 for ax in fig.axes)  # the floor is in view
    assert _lines(plot.pareto_figure([rs], "finetune"), "chance") == []  # exact match records no chance level


def test_pareto_with_two_sets_draws_each_in_its_colour():
    base, head = smoke_like(), smoke_like()
    base["_path"], head["_path"] = "/x/base/results.json", "/x/head/results.json"
    fig = plot.pareto_figure([base, head], "finetune")
    assert _points(fig, "points:base") == 3 * 2 and _points(fig, "points:head") == 3 * 2
    colours = {
        tuple(c.get_facecolor()[0]) for c in fig.axes[0].collections if (c.get_gid() or "").startswith("points:")
    }
    assert len(colours) == 2


def test_finetune_curves_one_line_per_technique_and_target():
    rs = smoke_like()
    fig = plot_curves.finetune_figure([rs])
    assert len(_lines(fig, "curve:")) == 2 * 2  # two runs, two panels (time, dollars)
    target = _lines(fig, "target")
    assert target and target[0].get_ydata()[0] == pytest.approx(
        100 * 0.9 * 0.5
    )  # 0.9 x final accuracy of the reference
    assert plot_curves.pruning_figure([rs]) is None and plot_curves.kernels_figure([rs]) is None


def test_pruning_curve_per_strategy():
    runs = [finetune_run()] + [
        finetune_run(f"prune-{s}-{f}", [{"name": s, "params": {"fraction": f}}], n_train_kept=int(64 * f))
        for s in ("random", "el2n")
        for f in (0.25, 0.5)
    ]
    fig = plot_curves.pruning_figure([make_set(runs)])
    lines = _lines(fig, "strategy:")
    assert sorted(ln.get_gid() for ln in lines) == ["strategy:el2n", "strategy:random"]
    assert all(list(ln.get_xdata()) == [0.25, 0.5] for ln in lines)
    assert all(ln.get_linestyle() == "None" for ln in lines)  # one seed each: points, never a trend
    rs = make_set(runs)
    for r in rs["runs"]:  # representatives of two seeds each: a line may join them
        r["metrics"]["accuracy"].update(n_seeds=2, seed_sd=0.01)
    lines = _lines(plot_curves.pruning_figure([rs]), "strategy:")
    assert all(ln.get_linestyle() == "-" for ln in lines)


def test_kernel_speedups_over_eager_and_liger():
    rs = make_set([])
    rs["kernels"] = [
        {
            "kernel": k,
            "impl": impl,
            "pass": "fwdbwd",
            "tokens": t,
            "hidden": 576,
            "dtype": "bfloat16",
            "median_ms": ms * t / 1024,
            "samples_ms": [],
            "gbps": None,
            "frac_peak_bw": None,
            "peak_bytes": None,
        }
        for k in ("rmsnorm", "swiglu")
        for t in (1024, 4096)
        for impl, ms in (("effbench", 1.0), ("eager", 2.0), ("liger", 1.25))
    ]
    fig = plot_curves.kernels_figure([rs])
    assert len(fig.axes) == 2
    for ax in fig.axes:
        ys = {ln.get_gid(): list(ln.get_ydata()) for ln in ax.lines if ln.get_gid()}
        assert ys == {"speedup:eager": [2.0, 2.0], "speedup:liger": [1.25, 1.25]}


def test_plot_command_writes_png_and_svg_into_the_set_folder(tmp_path):
    path = write(smoke_like(), tmp_path / "set")
    assert cli.main(["plot", path]) == 0
    names = sorted(p.name for p in (tmp_path / "set").iterdir() if p.suffix in (".png", ".svg"))
    assert names == sorted(
        f"{n}.{e}" for n in ("pareto_finetune", "pareto_infer", "finetune_curves") for e in ("png", "svg")
    )


def test_report_readme_and_pr_entry(tmp_path):
    base_rs, head_rs = smoke_like(), smoke_like()  # finetune-full with 3 replicates a side, -30% in head
    base_rs["runs"][:1] = replicated(finetune_run(), 3, 1, drift_cv=0.01)
    head_rs["runs"][:1] = replicated(finetune_run(tps=700.0), 3, 2, drift_cv=0.01)
    base = write(base_rs, tmp_path / "base" / "smoke" / "20260101T000000Z_aaaa")
    write(head_rs, tmp_path / "head" / "smoke" / "20260101T010000Z_bbbb")
    comment = tmp_path / "comment.md"
    assert pr_report.main([str(tmp_path / "base"), str(tmp_path / "head"), "--comment", str(comment)]) == 1
    text = comment.read_text()
    assert text.startswith(pr_report.MARKER) and "1 worse, 0 better" in text
    folder = tmp_path / "head" / "smoke" / "20260101T010000Z_bbbb"
    readme = (folder / "README.md").read_text()
    assert "# effbench result set" in readme and "## Compared with the baseline" in readme
    for rel in re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme):
        assert not rel.startswith("/") and (folder / rel).is_file(), rel
    assert "pareto_finetune.png" in readme and not list(folder.glob("*.svg")) and not (folder / "vs_baseline").exists()
    assert (
        cli.main(["report", base]) == 0
        and (tmp_path / "base" / "smoke" / "20260101T000000Z_aaaa" / "README.md").is_file()
    )
    bfold = tmp_path / "base" / "smoke" / "20260101T000000Z_aaaa"  # summary.md: this code's figures, as in README.md
    assert (bfold / "summary.md").read_text() == report.summary_markdown(results.load(bfold))
    assert pr_report.main([str(tmp_path / "nothing"), str(tmp_path / "head"), "--comment", str(comment)]) == 2


def test_no_tradeoff_figure_for_lone_points_and_the_readme_says_why(tmp_path):
    one = make_set([finetune_run()])
    assert plot.pareto_figure([one], "finetune") is None  # one run: nothing to trade off
    other = finetune_run("finetune-long", tps=3000.0)
    other["spec"]["budget"] = {"max_steps": 400}  # another group: still one point each
    assert plot.pareto_figure([make_set([finetune_run(), other])], "finetune") is None
    base, head = make_set([finetune_run()]), make_set([finetune_run(tps=700.0)])
    base["_path"], head["_path"] = "/x/base/results.json", "/x/head/results.json"
    fig = plot.pareto_figure([base, head], "finetune")  # one group's run in two sets: compared
    assert _points(fig, "points:base") == 3 and _points(fig, "points:head") == 3
    folder = tmp_path / "set"
    write(one, folder)
    (folder / "pareto_finetune.png").write_bytes(b"stale")  # drawn by an older report
    pr_report.write_readme(folder)
    readme = (folder / "README.md").read_text()
    assert "No `pareto_finetune` trade-off figure" in readme and "pareto_finetune.png" not in readme
    assert not (folder / "pareto_finetune.png").exists()


def test_the_quality_axis_names_every_fine_tuning_task_it_plots():
    sst2, lora = finetune_run(), finetune_run("finetune-lora", [{"name": "lora", "params": {"r": 8}}], tps=1500.0)
    for r in (sst2, lora):
        r["spec"]["task"] = r["data"]["task"] = "sst2"
    noisy = finetune_run("prune-none", tps=2000.0)
    noisy["spec"]["task"] = noisy["data"]["task"] = "arith-noisy"
    noisy["data"]["train_sha256"] = "9" * 64
    fig = plot.pareto_figure([make_set([sst2, lora, noisy])], "finetune")
    ylabel = fig.axes[0].get_ylabel()
    assert "SST-2 accuracy" in ylabel and "arith-noisy exact match" in ylabel, ylabel  # not "arith" for all
    lora8 = finetune_run("finetune-lora", [{"name": "lora", "params": {"r": 8}}], tps=1500.0)
    arith = plot.pareto_figure([make_set([finetune_run(), lora8])], "finetune")
    assert arith.axes[0].get_ylabel() == plot.QUALITY["finetune"][1]  # arith alone keeps its label
