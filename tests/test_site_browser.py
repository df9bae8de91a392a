"""The built site in a real browser: headless Chromium opens the pages from file:// and the DOM it
dumps must hold Plotly's drawing (`main-svg`) and no #site-error (the marker each page's
window.onerror writes). Skipped, with the reason, where no chromium is installed (`make test`
installs Debian's where it can). Three page loads, about 3 s each."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from effbench.render import site
from tests._resultsets import write
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
