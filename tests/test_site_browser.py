"""The built site in a real browser: headless Chromium opens the pages from file:// and the DOM it
dumps must hold Plotly's drawing (`main-svg`) and no #site-error (the marker each page's
window.onerror writes). Skipped, with the reason, where no chromium is installed (`make test`
installs Debian's where it can). The explorer writes what it drew (indices of the points shown and
on the front) on its #explorer element, so the batch filter and the front's rule are checked
against the page's own data. About a dozen page loads, 2-3 s each."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from effbench.read import tradeoff
from effbench.render import site
from tests._resultsets import finetune_run, infer_run, make_set, replicated, write
from tests._sitesets import history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; `make test` tries it)"
)


def dom(path, fragment: str = "") -> str:
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=5000"]
    cmd += ["--window-size=1400,900", "--dump-dom", path.as_uri() + fragment]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    for i, rs in enumerate(history(8, step_at=4)):
        write(rs, tmp / "results" / "hist" / f"set{i}")
    site.build(tmp / "results", tmp / "site")
    return tmp / "site"


def test_history_page_draws(built):
    d = dom(next((built / "suites").glob("*.html")))
    assert 'id="history-0"' in d and "main-svg" in d and 'id="site-error"' not in d
    assert "04cccccc" in d  # the change point's annotation, drawn
    first = d[d.index('id="history-0"') : d.index('id="history-1"')]
    assert first.count('class="point"') == 8  # one point per result set of the history


def test_explorer_and_index_draw(built):
    d = dom(next((built / "sets").glob("*.html")))
    assert "main-svg" in d and 'id="site-error"' not in d and "Pareto front" in d
    assert "runs shown" in d
    assert 'id="site-error"' not in dom(built / "index.html")


def test_choosing_other_axes_redraws_the_explorer(built):
    """The axis selects' change handler redraws: chosen through the page's link fragment, which
    applies each choice through that handler, the figure's title and axis names follow."""
    page = next((built / "sets").glob("*.html"))
    before = dom(page)
    after = dom(page, "#x-metric=memory&y-metric=bytes")
    assert "accuracy (%) against throughput (tokens/s)" in before
    assert "weight bytes (MiB) against peak memory (MiB)" in after and 'id="site-error"' not in after
    assert "peak memory (MiB) (lower is better)" in after


def _explorer_set() -> dict:
    """Finetune at two batch sizes and infer runs of two families: int8 is a little slower and one
    probe item worse than the baseline, inside the intervals (on the front by the interval rule, off
    it by the classic one); wanda is worse beyond them on both axes."""
    ft = [
        finetune_run(),
        finetune_run(
            rid="finetune-lora", techniques=[{"name": "lora", "params": {}}], tps=1300.0, items=[1.0] * 40 + [0.0] * 60
        ),
        finetune_run(rid="finetune-lora-b8", techniques=[{"name": "lora", "params": {}}], tps=900.0),
    ]
    for r, b in zip(ft, (16, 16, 8)):
        r["spec"]["budget"] = {"max_steps": 4, "batch_size": b}
    inf = [
        infer_run(probe=[1.0] * 36 + [0.0] * 4),
        infer_run(
            rid="infer-int8", techniques=[{"name": "int8", "params": {}}], dec=480.0, probe=[1.0] * 35 + [0.0] * 5
        ),
        infer_run(
            rid="infer-wanda", techniques=[{"name": "wanda", "params": {}}], dec=300.0, probe=[1.0] * 10 + [0.0] * 30
        ),
    ]
    runs = [x for i, r in enumerate(ft + inf) for x in replicated(r, 3, seed=10 + i)]
    return make_set(runs, suite="explore", sha="e" * 40)


@pytest.fixture(scope="module")
def explore(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explore")
    write(_explorer_set(), tmp / "results" / "explore" / "set")
    site.build(tmp / "results", tmp / "site")
    page = next((tmp / "site" / "sets").glob("*.html"))
    text = page.read_text()
    data = json.loads(re.search(r'<script id="effbench-data" type="application/json">(.*?)</script>', text).group(1))
    return page, data


def _drawn(d: str) -> tuple[list[int], list[int]]:
    """(indices of the points shown, of those on the front) as site.js wrote them on #explorer."""
    tag = re.search(r'<div id="explorer"[^>]*>', d).group(0)
    get = lambda a: [int(i) for i in re.search(f'{a}="([0-9,]*)"', tag).group(1).split(",") if i]  # noqa: E731
    return get("data-shown"), get("data-front")


def _at(p: dict, batch: str) -> dict | None:
    """A point's metrics under the batch filter, as the page states it (finetune: its own batch;
    infer: throughput and cost at that decode batch)."""
    if batch == "":
        return p["m"]
    if "mb" not in p:
        return p["m"] if str(p["batch"]) == batch else None
    return {**p["m"], **p["mb"][batch]} if batch in p["mb"] else None


def _python_front(data: dict, shown: list[int], xm: str, ym: str, batch: str) -> list[int]:
    """The front of the shown points by effbench.read.tradeoff.frontier, one front per group."""
    ax, out = data["axes"], []
    for g in {data["points"][i]["group"] for i in shown}:
        idx = [i for i in shown if data["points"][i]["group"] == g]
        ms = [_at(data["points"][i], batch) for i in idx]
        pts = [(m[xm]["value"], m[ym]["value"]) for m in ms]
        iv = [((m[xm]["lo"], m[xm]["hi"]), (m[ym]["lo"], m[ym]["hi"])) for m in ms]
        out += [idx[k] for k in tradeoff.frontier(pts, ax[xm]["higher"], iv, ax[ym]["higher"])]
    return sorted(out)


def test_batch_filter_changes_the_points_drawn(explore):
    page, data = explore
    ids = [re.match(r"[\w-]+", p["label"]).group(0) for p in data["points"]]
    names = lambda d: sorted(ids[i] for i in _drawn(d)[0])  # noqa: E731
    assert names(dom(page)) == ["finetune-full", "finetune-lora", "finetune-lora-b8"]
    assert names(dom(page, "#batch=8")) == ["finetune-lora-b8"]  # the baseline trained at 16
    assert names(dom(page, "#batch=16")) == ["finetune-full", "finetune-lora"]
    # infer: the same runs, their decode throughput at batch 1 instead of the largest (8, 4x faster here)
    ticks = lambda d: [float(t.replace(",", "")) for t in re.findall(r'class="xtick"[^>]*>.*?>([0-9.,]+)<', d)]  # noqa: E731
    largest, b1 = dom(page, "#scenario=1"), dom(page, "#scenario=1&batch=1")
    assert names(largest) == names(b1) == ["infer-baseline", "infer-int8", "infer-wanda"]
    assert max(ticks(largest)) > 1000 > max(ticks(b1)) and 'id="site-error"' not in b1


def test_explorer_front_follows_the_static_figures_rule(explore):
    """The front site.js draws is tradeoff.frontier's (intervals, groups) on the same points, for
    several axis pairs; int8, slower and one item worse inside the noise, stays on it."""
    page, data = explore
    ids = [re.match(r"[\w-]+", p["label"]).group(0) for p in data["points"]]
    for frag, xm, ym, batch in [
        ("#scenario=1", "speed", "accuracy", ""),
        ("#scenario=1&batch=1&x-metric=cost&y-metric=accuracy", "cost", "accuracy", "1"),
        ("#x-metric=memory&y-metric=speed", "memory", "speed", ""),
    ]:
        shown, fr = _drawn(dom(page, frag))
        assert shown and fr == _python_front(data, shown, xm, ym, batch), frag
        if frag == "#scenario=1":
            assert sorted(ids[i] for i in fr) == ["infer-baseline", "infer-int8"]
            pts = [
                (data["points"][i]["m"]["speed"]["value"], data["points"][i]["m"]["accuracy"]["value"]) for i in shown
            ]
            assert len(tradeoff.frontier(pts, True)) == 1  # without the intervals only the baseline is left
