"""HTML of the static site's pages (effbench.render.site builds them): the page frame, the index,
a result set's page with its trade-off explorer, and the compare page.

Result files are untrusted: every string from one reaches the HTML through `esc` (html.escape,
quotes included), the figures' strings too (Plotly reads its text as HTML-like markup), and the JSON
a page embeds goes through `safe_json`, which writes <, > and & as \\u escapes so that no `</script>`
or `<!--` can end or change the script element. Links are built from names the site chooses
(slugs), never from a result file.
"""

from __future__ import annotations

import html
import json

from effbench.render import compare_format

# The page's own error marker: an uncaught script error is written into the DOM (the browser tests
# look for #site-error). Static text, no data.
ON_ERROR = (
    "<script>window.onerror=function(m){var d=document.createElement('pre');d.id='site-error';"
    "d.textContent='site error: '+m;(document.body||document.documentElement).appendChild(d);};</script>"
)


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def safe_json(obj) -> str:
    """JSON for a <script type="application/json"> element: no `<`, `>` or `&` left as such."""
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def page(title: str, body: str, root: str, data: dict | None = None) -> str:
    """A whole page; `root` is the relative way back to the site's top ("" or "../")."""
    scripts = ""
    if data is not None:
        scripts = (
            f'<script id="effbench-data" type="application/json">{safe_json(data)}</script>\n'
            f'<script src="{root}assets/plotly.min.js"></script>\n<script src="{root}assets/site.js"></script>\n'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n{ON_ERROR}\n"
        f'<link rel="stylesheet" href="{root}assets/site.css">\n</head><body>\n'
        f'<nav><a href="{root}index.html">effbench results</a></nav>\n<h1>{esc(title)}</h1>\n'
        f"{body}\n{scripts}</body></html>\n"
    )


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape them before)."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>\n{trs}\n</tbody></table>'


def set_label(rs: dict) -> str:
    """'1aca3968 2026-11-28 22:27': commit and time of a result set (raw: escape before use)."""
    sha = str((rs.get("git") or {}).get("sha") or "nogit")[:8]
    return f"{sha} {str(rs.get('created_utc') or '')[:16].replace('T', ' ')}"


def device(rs: dict) -> str:
    env = rs.get("env") or {}
    return str(env.get("device_name") or env.get("device") or "?")


def index(suites: dict[str, list[tuple[dict, str]]], history: dict[str, str], errors: list[str], compare: str | None):
    """suites: suite -> [(result set, its page)] ; history: suite -> its history page."""
    parts = []
    if compare:
        parts.append(f'<p><a href="{compare}">Comparison of the two sets given</a></p>')
    for suite, items in suites.items():
        rows = [
            [
                esc(str(rs.get("created_utc") or "")),
                f"<code>{esc(str((rs.get('git') or {}).get('sha') or '')[:10])}</code>",
                esc(device(rs)),
                esc(str(len(rs["runs"]))),
                f'<a href="{href}">set page</a>',
            ]
            for rs, href in items
        ]
        parts.append(
            f'<h2>suite <code>{esc(suite)}</code></h2>\n<p><a href="{history[suite]}">history</a> '
            f"({len(items)} result set{'s' if len(items) != 1 else ''})</p>\n"
            + table(["created (UTC)", "commit", "device", "runs", ""], rows)
        )
    if errors:
        parts.append("<h2>Not read</h2>\n<ul>" + "".join(f"<li>{esc(e)}</li>" for e in errors) + "</ul>")
    return page("effbench results", "\n".join(parts), "")


def explorer_body(
    rs: dict, axes: dict, families: list[str], scenarios: list[str], batches: list[int], runs_rows: list[list[str]]
):
    def options(id_, items, selected):
        opts = "".join(
            f'<option value="{esc(v)}"{" selected" if v == selected else ""}>{esc(t)}</option>' for v, t in items
        )
        return f'<select id="{id_}">{opts}</select>'

    ax_items = [(k, a["title"]) for k, a in axes.items()]
    fam = "".join(
        f'<label><input type="checkbox" name="family" value="{i}" checked> {esc(f)}</label> '
        for i, f in enumerate(families)
    )
    return (
        f"<p>suite <code>{esc(rs.get('suite'))}</code> · {esc(rs.get('description'))}</p>\n"
        f"<p>created {esc(rs.get('created_utc'))} · commit <code>{esc((rs.get('git') or {}).get('sha'))}</code>"
        f" · device {esc(device(rs))}</p>\n<h2>Trade-off explorer</h2>\n"
        f'<div class="controls">x {options("x-metric", ax_items, "speed")} y '
        f"{options('y-metric', ax_items, 'accuracy')} scenario "
        f"{options('scenario', [(str(i), s) for i, s in enumerate(scenarios)], '0')} batch "
        f"{options('batch', [('', 'any (infer: largest)'), *((str(b), str(b)) for b in batches)], '')}"
        f"<br>families: {fam}"
        '<span class="note">(the baseline, a star, is always shown)</span></div>\n'
        '<p id="explorer-count"></p><div id="explorer" class="plot"></div>\n'
        "<p>Error bars: 95% interval over the replicates (throughput, memory) or seeds (accuracy; one seed: ± 1.96 "
        "per-item stderr); none where a figure was measured once. Batch: a finetune run's budget batch size; an "
        "infer run's decode throughput and cost at that batch (peak memory is the whole run's). Pareto front "
        "(rings), the rule of the static Pareto figures (effbench/read/tradeoff.py): one front per comparable "
        "group (same task, model, device, budget and data), and a point is off it only where another's interval "
        "lies wholly beyond its own on both axes; a difference inside the bars never removes a point.</p>\n"
        "<h2>Runs</h2>\n" + table(["run", "techniques", "families", "status", "reason"], runs_rows)
    )


def compare_body(res: dict, base_name: str, head_name: str) -> str:
    """What `effbench compare` computes (effbench.read.compare.compare), as HTML tables."""
    parts = [
        f"<p><strong>{esc(res['headline'])}</strong></p>",
        f"<p>base: {esc(base_name)} · head: {esc(head_name)} · device: {esc(res['head'].get('device'))}</p>",
    ]
    parts += [f'<p class="warning">{esc(w)}</p>' for w in res.get("warnings") or []]
    if res.get("failed"):
        parts.append(f"<p>Fails the gate: {esc(', '.join(res['failed']))}</p>")
    head = ["run", "metric", "base", "head", "change", "CI", "p", "MDE (reps base vs head)", "verdict", "how"]
    for scen in dict.fromkeys(r["scenario"] for r in res["rows"]):
        rows = [
            [
                esc(r["run"]),
                esc(r["metric"]),
                esc(compare_format.value(r["base"], r["unit"], r["kind"])),
                esc(compare_format.value(r["head"], r["unit"], r["kind"])),
                esc(compare_format.change(r)),
                esc(compare_format.interval(r)),
                "" if r["p"] is None else esc(f"{r['p']:.3g}"),
                esc(compare_format.mde(r)),
                f'<span class="verdict-{esc(r.get("verdict"))}">{esc(compare_format.verdict(r))}</span>',
                esc(r.get("method")),
            ]
            for r in res["rows"]
            if r["scenario"] == scen
        ]
        parts.append(f"<h2>{esc(scen)}</h2>\n" + table(head, rows, "compare"))
    for k in ("only_base", "only_head"):
        if res.get(k):
            parts.append(f"<p>Runs only in {k[5:]}: " + ", ".join(f"<code>{esc(i)}</code>" for i in res[k]) + "</p>")
    return "\n".join(parts)
