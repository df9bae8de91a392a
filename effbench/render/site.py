"""`effbench site RESULTS_DIR --out SITE_DIR`: one static site of every result set under a folder.

Plain files that work from file:// and any static host, nothing fetched from the network: Plotly's
own plotly.min.js (from the `plotly` package, extra `site`) is written once into SITE_DIR/assets/
beside site.js (this folder) and site.css, and every page refers to them relatively.

- index.html: every suite, its result sets by date and commit, the device of each, links.
- suites/<suite>.html: history of each suite run and metric (throughput, peak memory, accuracy,
  cost per point; a kernel micro-benchmark's speed-ups, one group per kernel case), one point per
  result set with its 95% interval, commits in time order on the x axis, one line per device,
  model and thread count, change points (effbench.read.history) marked with the commits on either
  side.
- sets/<set>.html: the trade-off explorer (x and y metric chosen on the page, filters by scenario,
  technique family and batch size, Pareto front by the static figures' rule, error bars, baseline
  marked) and the runs of the set.
- compare.html (`--compare BASE HEAD`): what `effbench compare` computes, as tables.
Pages and their strings are made safe in effbench.render.site_pages.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from effbench.read import cost, history, replicates, results, runinfo, tradeoff
from effbench.render import site_pages as pages
from effbench.render.site_pages import esc

HERE = Path(__file__).resolve().parent
AXES = {  # explorer metric -> (title, higher is better)
    "speed": ("throughput (tokens/s)", True),
    "memory": ("peak memory (MiB)", False),
    "bytes": ("weight bytes (MiB)", False),
    "accuracy": ("accuracy (%)", True),
    "cost": ("cost (USD per run; infer: per Mtok)", False),
    "cost_per_point": ("cost per quality point (USD)", False),
}
FROM_HISTORY = {
    "speed": "throughput",
    "memory": "peak_memory",
    "accuracy": "accuracy",
    "cost_per_point": "cost_per_point",
}


def slug(text: str) -> str:
    """A file name from any text: safe characters, and a hash of the text so that two never collide."""
    h = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "x") + "-" + h


def find_sets(root: Path, skip: Path) -> tuple[list[tuple[dict, str]], list[str]]:
    """[(result set, its path relative to root)] under root, and a message per file not read."""
    found, errors = [], []
    for p in sorted(root.rglob("results.json")):
        if p.resolve().is_relative_to(skip):
            continue
        rel = str(p.parent.relative_to(root))
        try:
            found.append((results.load(p), rel))
        except results.ResultError as e:
            errors.append(f"{rel}: {e}")
    return found, errors


def _families(run: dict) -> list[str]:
    from effbench.techniques import registry

    reg = registry()
    return sorted({getattr(reg.get(t["name"]), "family", "other") for t in run["spec"].get("techniques") or []})


DECODE = "decode_tokens_per_s.b"  # infer's decode throughput at batch N: DECODE + str(N)


def batch_sizes(run: dict) -> list[int]:
    """The batch sizes a run was measured at: finetune, its budget's batch_size; infer, every N of
    a decode_tokens_per_s.bN metric it records."""
    if run["spec"]["scenario"] == "finetune":
        b = (run["spec"].get("budget") or {}).get("batch_size")
        return [int(b)] if isinstance(b, int) else []
    return sorted(int(k[len(DECODE) :]) for k in run.get("metrics") or {} if k.startswith(DECODE))


def _at_batch(run: dict, n: int) -> dict:
    """The run as if it had decoded at batch n only, so that cost.derived prices that batch."""
    return {
        **run,
        "metrics": {k: v for k, v in run["metrics"].items() if not k.startswith(DECODE) or k == f"{DECODE}{n}"},
    }


def _iv(v: dict) -> dict:
    return {"value": v["value"], "lo": v["lo"], "hi": v["hi"]}


def _exact(v) -> dict | None:
    return {"value": v, "lo": v, "hi": v} if v else None


def explorer(rs: dict) -> str:
    """The set page: explorer data (every string escaped) and the runs table. Each point carries
    its metrics with 95% intervals (`m`), its comparable group (`group`: tradeoff.comparable; a
    front never spans two), its batch (`batch`, finetune) or its figures at each decode batch
    (`mb`, infer: throughput, cost per Mtok and cost per point at that batch)."""
    price, _ = runinfo.price(rs)
    target = cost.target_accuracy(rs)
    scenarios, families, groups, batches, points, rows = [], [], [], set(), [], []
    for members in replicates.groups(rs).values():
        p = replicates.primary(members)
        fams = _families(p)
        rows.append(
            [
                esc(p["id"]),
                esc(runinfo.techniques_label(p)),
                esc(", ".join(fams)),
                esc(p["status"]),
                esc(p.get("reason")),
            ]
        )
        if p["status"] != "ok":
            continue
        scen = p["spec"]["scenario"]
        scenarios += [scen] if scen not in scenarios else []
        families += [f for f in fams if f not in families]
        key = tradeoff.comparable(members)
        groups += [key] if key not in groups else []
        hv = history.metric_values(rs, members)
        m = {k: _iv(hv[h]) for k, h in FROM_HISTORY.items() if h in hv}
        rep = replicates.representative(members)
        d = cost.derived(rep, price, target)
        wb = runinfo.value(p, "weight_bytes")
        for k, v in (
            ("bytes", wb / 2**20 if wb else None),
            ("cost", d.get("cost_usd") if scen == "finetune" else d.get("usd_per_mtok")),
        ):
            if _exact(v):
                m[k] = _exact(v)
        pt = {
            "label": f"{esc(p['id'])}<br>{esc(runinfo.techniques_label(p))}",
            "scenario": scenarios.index(scen),
            "families": [families.index(f) for f in fams],
            "group": groups.index(key),
            "baseline": not p["spec"].get("techniques"),
            "m": m,
        }
        sizes = batch_sizes(p)
        batches.update(sizes)
        if scen == "finetune":
            pt["batch"] = sizes[0] if sizes else None
        else:
            pt["mb"] = {}
            for n in sizes:
                vals = replicates.values(members, f"{DECODE}{n}")
                db = cost.derived(_at_batch(rep, n), price, target)
                at = {"speed": _iv(history.interval(vals)) if vals else None, "cost": _exact(db.get("usd_per_mtok"))}
                at["cost_per_point"] = _exact(db.get("usd_per_mtok_per_point"))
                pt["mb"][str(n)] = {k: v for k, v in at.items() if v}
        points.append(pt)
    axes = {k: {"title": esc(t), "higher": h} for k, (t, h) in AXES.items()}
    body = pages.explorer_body(rs, axes, families, scenarios, sorted(batches), rows)
    data = {"page": "explorer", "points": points, "axes": axes}
    return pages.page(f"result set {pages.set_label(rs)} ({rs.get('suite')})", body, "../", data)


def history_figures(sets: list[dict]) -> dict[str, list[dict]]:
    """group id -> one Plotly figure per metric (escaped strings), lines per device, model and threads."""
    order = sorted(sets, key=lambda s: (s.get("created_utc") or "", (s.get("git") or {}).get("sha") or ""))
    names: dict[int, str] = {}
    for s in order:  # unique labels: an A/A's two sides share commit and minute
        lab = pages.set_label(s) + ((" " + str((s.get("ab") or {}).get("side") or "")) if s.get("ab") else "")
        names[id(s)] = esc(lab if lab not in names.values() else f"{lab} #{len(names) + 1}")
    cats = [names[id(s)] for s in order]
    figs: dict[str, dict[str, dict]] = {}
    for (gid, metric, dev, model, threads), pts in history.lines(sets).items():
        title, unit, _ = history.METRICS[metric]
        fig = figs.setdefault(gid, {}).setdefault(
            metric,
            {
                "data": [],
                "layout": {
                    "title": {"text": esc(f"{gid}: {title}")},
                    "xaxis": {
                        "type": "category",
                        "categoryorder": "array",
                        "categoryarray": cats,
                        "title": {"text": "commit, time (UTC)"},
                    },
                    "yaxis": {"title": {"text": esc(f"{pts[0][1]['what']} ({unit})")}},
                    "shapes": [],
                    "annotations": [],
                    "margin": {"t": 50, "b": 120},
                    "legend": {"orientation": "h", "y": -0.45},
                },
            },
        )
        xs = [names[id(rs)] for rs, _ in pts]
        # a line joins the sets only where every point carries its noise (an interval: two or more
        # replicates or seeds, or an accuracy's item stderr): one-value timings are points, not a trend
        joined = all(pt["hi"] > pt["lo"] for _, pt in pts)
        fig["data"].append(
            {
                "type": "scatter",
                "mode": "lines+markers" if joined else "markers",
                "name": esc(" · ".join(x for x in (dev, model, threads) if x)),
                "x": xs,
                "y": [pt["value"] for _, pt in pts],
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [pt["hi"] - pt["value"] for _, pt in pts],
                    "arrayminus": [pt["value"] - pt["lo"] for _, pt in pts],
                },
                "text": [
                    esc(f"commit {(rs.get('git') or {}).get('sha')}")
                    + "<br>"
                    + esc(f"created {rs.get('created_utc')}")
                    + "<br>"
                    + esc(f"device {pages.device(rs)}")
                    + "<br>"
                    + esc(f"{pt['n']} value(s)")
                    for rs, pt in pts
                ],
                "hovertemplate": "%{text}<br>%{y:.4g}<extra></extra>",
            }
        )
        for i, cp in enumerate(history.change_points([pt["values"] for _, pt in pts])):
            before, after = xs[cp["index"] - 1], xs[cp["index"]]
            fig["layout"]["shapes"].append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": after,
                    "x1": after,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "#d62728", "dash": "dash"},
                }
            )
            fig["layout"]["annotations"].append(
                {
                    "x": after,
                    "xref": "x",
                    "y": 1 - 0.07 * (i % 4),
                    "yref": "paper",
                    "showarrow": False,
                    "xanchor": "left",
                    "text": f"{100 * cp['change']:+.1f}%: {before.split()[0]} → {after.split()[0]}",
                    "hovertext": f"change point between {before} and {after}",
                    "font": {"color": "#d62728"},
                }
            )
    return {g: list(ms.values()) for g, ms in figs.items()}


def history_page(suite: str, sets: list[dict]) -> str:
    figs = history_figures(sets)
    opts = "".join(f'<option value="{esc(g)}">{esc(g)}</option>' for g in figs)
    body = (
        f'<p>run <select id="run">{opts}</select> · {len(sets)} result set(s), oldest first. One line per '
        "device, model and CPU thread count; bars: 95% interval over the replicates (accuracy: seeds, or ± 1.96 stderr); dashed "
        f"red: a change point (p x splits &lt; {history.ALPHA}, change ≥ {100 * history.MIN_EFFECT:g}%: "
        'effbench/read/history.py).</p>\n<div id="history"></div>'
    )
    data = {"page": "history", "figures": {esc(g): f for g, f in figs.items()}}
    return pages.page(f"history of suite {suite}", body, "../", data)


def write_assets(out: Path) -> None:
    import plotly

    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for src in (js, HERE / "site.js", HERE / "site.css"):
        (assets / src.name).write_bytes(src.read_bytes())


def build(root: str | Path, out: str | Path, compare_pair: tuple[str, str] | None = None) -> dict:
    """Write the site of every result set under `root` into `out`; returns what was written."""
    root, out = Path(root), Path(out).resolve()
    found, errors = find_sets(root, out)
    if not found:
        raise results.ResultError(f"no result set under {root} (expected <suite>/<stamp>/results.json)")
    write_assets(out)
    suites: dict[str, list[tuple[dict, str]]] = {}
    for rs, rel in sorted(found, key=lambda x: (str(x[0].get("suite")), x[0].get("created_utc") or "")):
        href = f"sets/{slug(rel)}.html"
        (out / "sets").mkdir(exist_ok=True)
        (out / href).write_text(explorer(rs), encoding="utf-8")
        suites.setdefault(str(rs.get("suite")), []).append((rs, href))
    hist = {}
    (out / "suites").mkdir(exist_ok=True)
    for suite, items in suites.items():
        hist[suite] = f"suites/{slug(suite)}.html"
        (out / hist[suite]).write_text(history_page(suite, [rs for rs, _ in items]), encoding="utf-8")
    cmp_href = None
    if compare_pair:
        from effbench.read import compare

        base, head = (results.load(p) for p in compare_pair)
        body = pages.compare_body(compare.compare(base, head), *compare_pair)
        (out / "compare.html").write_text(pages.page("effbench compare", body, ""), encoding="utf-8")
        cmp_href = "compare.html"
    (out / "index.html").write_text(pages.index(suites, hist, errors, cmp_href), encoding="utf-8")
    return {"sets": len(found), "suites": len(suites), "errors": errors, "index": out / "index.html"}
