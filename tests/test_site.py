"""`effbench site`: a static site from result sets (effbench.render.site). Pages link only inside
the site, assets are local (no network), change points appear on the history page, the compare
page renders compare's rows, and a result set full of hostile strings leaves none of them live in
the HTML written."""

from __future__ import annotations

import re
from pathlib import Path

from effbench import cli
from effbench.read import results
from effbench.render import site
from tests._resultsets import finetune_run, infer_run, make_set, write
from tests._sitesets import history

HOSTILE = [
    "<script>alert(1)</script>",
    '"onerror="alert(2)',
    "<img src=x onerror=alert(3)>",
    "[click](javascript:alert(4))",
    "</script><!--",
    "<a href='javascript:alert(5)'>x</a>",
]
# live markup: a hostile tag, an event handler or javascript: URL inside any tag, a comment opener
LIVE = re.compile(r"<script>alert|<img|<a href='|<[^>]*\bonerror\s*=|<[^>]*javascript:|<!--|</script><", re.I)


def _write_history(tmp_path: Path, sets: list[dict]) -> Path:
    root = tmp_path / "results"
    for i, rs in enumerate(sets):
        write(rs, root / str(rs["suite"])[:20].replace("/", "_") / f"set{i:02d}")
    return root


def test_site_pages_assets_and_change_point(tmp_path):
    root = _write_history(tmp_path, history(12, step_at=6))
    out = tmp_path / "site"
    assert cli.main(["site", str(root), "--out", str(out)]) == 0
    pages = sorted(out.rglob("*.html"))
    assert {p.parent.name for p in pages} == {"site", "sets", "suites"} and len(pages) == 12 + 1 + 1
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    for p in pages:
        text = p.read_text()
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # nothing fetched
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            assert (p.parent / ref).resolve().is_file(), (p, ref)
    hist = next((out / "suites").glob("*.html")).read_text()
    assert "06cccccc" in hist and "05cccccc \\u2192 06cccccc" in hist.replace("→", "\\u2192")


def test_compare_page_renders_compare_rows(tmp_path):
    sets = history(2, step_at=1, step=1.3)
    root = _write_history(tmp_path, sets)
    a, b = sorted((root / "hist").iterdir())
    out = tmp_path / "site"
    assert cli.main(["site", str(root), "--out", str(out), "--compare", str(a), str(b)]) == 0
    page = (out / "compare.html").read_text()
    assert "train_tokens_per_s" in page and "worse" in page and "<table" in page
    assert 'href="compare.html"' in (out / "index.html").read_text()


def test_hostile_strings_are_escaped_everywhere(tmp_path):
    h = " ".join(HOSTILE)
    ft = finetune_run(rid="finetune-x", techniques=[{"name": h, "params": {"r": h}}])
    skipped = infer_run(rid="infer-x")  # run ids are held to [A-Za-z0-9._+=@-] by the schema
    skipped.update(status="skipped", reason=h)
    rs = make_set([finetune_run(), infer_run(), ft, skipped], suite=h, device_name=h, sha=HOSTILE[0] + HOSTILE[2])
    rs["description"] = h
    rs["created_utc"] = h
    root = tmp_path / "results"
    write(results.validate_set(rs, "hostile"), root / "evil" / "set")
    out = tmp_path / "site"
    done = site.build(root, out)
    assert all(LIVE.search(x) for x in HOSTILE if "<" in x)  # the check would see them unescaped
    assert done["sets"] == 1 and not done["errors"]
    pages = list(out.rglob("*.html"))
    assert len(pages) == 3
    for p in pages:
        text = p.read_text()
        bad = LIVE.findall(text)
        assert not bad, (p.name, bad)
        assert sum(1 for _ in re.finditer(r"<script\b", text)) == (3 if p.name != "index.html" else 0) + 1
    setpage = next((out / "sets").glob("*.html")).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in setpage  # shown, as text
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))


def test_history_page_has_the_kernel_speedups(tmp_path):
    from tests.test_history import _kernel_records

    sets = history(4)
    for i, rs in enumerate(sets):
        rs["kernels"] = _kernel_records(0.010 + 0.001 * i)
    root = _write_history(tmp_path, sets)
    site.build(root, tmp_path / "site")
    page = next((tmp_path / "site" / "suites").glob("*.html")).read_text()
    assert '<option value="kernel rmsnorm fwd bfloat16">' in page
    assert "kernel speed-up over eager PyTorch" in page and "kernel speed-up over liger-kernel" in page
    assert "4096 tokens x 576" in page  # the shape names the line
