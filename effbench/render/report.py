"""Summary tables of a result set (markdown through tabulate), with derived figures computed here.

One row per suite run: where a run has several members (seeds, replicates; effbench.read.replicates),
timings are medians over replicates (± their sd) and accuracies means over seeds (± per-item stderr,
with the across-seed sd). Each workload's columns are split into tables per concern, led by the run id
(effbench.render.run_tables), and every line fits columns.WIDTH (120) characters: prose is wrapped,
long failure reasons cut (results.json has every figure and reason in full). The replication section
says how many seeds and replicates each figure has, and the trade-off section puts each technique's
speed and quality against its baseline in one line.
"""

from __future__ import annotations

from effbench.read import cost, replicates, tradeoff
from effbench.read.runinfo import (
    fmt,
    is_pruning_run,
    pm,
    price,
    techniques_label,
    unchanged_layers,  # noqa: F401  (callers' name: report.unchanged_layers)
    unpruned_twin,
    vocab_size,
)
from effbench.read.runinfo import value as _v
from effbench.render import columns, mdtable, sections
from effbench.render.run_tables import (  # noqa: F401  (callers' names: report.infer_rows, ...)
    finetune_rows,
    infer_rows,
    members_of,
    target_cells,
    workload_sections,
)


# -- data pruning (self-contained: the records come from techniques/_data_pruning.py) --------------
def pruning_rows(rs, runs):
    """One row per pruning run: what was kept and removed (by injected kind), what it cost, what it bought.
    removed columns: removed / injected; precision and recall of noise removal as defined in
    techniques/_data_pruning.py; Δ acc against the unpruned twin, ± sqrt(se^2 + se_twin^2)."""
    p, _ = price(rs)
    target = cost.target_accuracy(rs)
    runs = [r for r in runs if is_pruning_run(r)]
    rows = []
    for r in runs:
        pr = (r.get("technique_records") or {}).get("pruning") or {}
        inj, rem = pr.get("kinds_before") or (r.get("data") or {}).get("kinds") or {}, pr.get("removed_by_kind") or {}
        d = cost.derived(r, p, target)
        ttt, ctt = target_cells(rs, r, p, target)
        per = r.get("setup", {}).get("per_technique", {})
        twin = unpruned_twin(r, runs) if pr else None
        a, ta = r["metrics"].get("accuracy") or {}, ((twin or {}).get("metrics") or {}).get("accuracy") or {}
        if twin is not None and a.get("value") is not None and ta.get("value") is not None:
            se = ((a.get("stderr") or 0) ** 2 + (ta.get("stderr") or 0) ** 2) ** 0.5
            delta = f"{100 * (a['value'] - ta['value']):+.1f} ± {100 * se:.1f} vs {twin['id']}"
        else:
            delta = "(reference)" if not pr else "–"
        kept_frac = pr.get("kept_fraction", 1.0 if not pr else None)
        kept_tok = pr.get("kept_tokens") if pr else None
        rows.append(
            [
                r["id"],
                " + ".join(pr.get("strategies", [])) or "(none)",
                fmt(kept_frac and 100 * kept_frac, ".1f"),
                fmt(kept_tok, "d"),
                *[
                    f"{rem.get(k, 0) if pr else 0}/{inj.get(k, 0)}"
                    for k in ("duplicate", "near_duplicate", "wrong", "junk")
                ],
                f"{rem.get('clean', 0) if pr else 0}/{inj.get('clean', 0)}",
                fmt(pr.get("precision") and 100 * pr["precision"], ".1f"),
                fmt(pr.get("recall") and 100 * pr["recall"], ".1f"),
                fmt(pr.get("scoring_tokens"), "d"),
                fmt(sum(per.get(n, 0.0) for n in pr.get("strategies", [])), ".1f"),
                fmt(_v(r, "train_wall_s"), ".0f"),
                fmt(d.get("cost_usd"), ".4f"),
                pm(r, "accuracy"),
                delta,
                ttt,
                ctt,
            ]
        )
    head = [
        "run",
        "strategies",
        "kept %",
        "kept tokens",
        "dup",
        "near-dup",
        "wrong",
        "junk",
        "clean lost",
        "precision %",
        "recall %",
        "scoring tokens",
        "pruning s",
        "train s",
        "cost $ (incl. setup)",
        "acc %",
        "Δ acc pts vs unpruned",
        "time-to-target s",
        "cost-to-target $",
    ]
    return head, rows


PRUNING_TABLES = [
    ("Kept", ["strategies", "kept %", "kept tokens", "scoring tokens", "pruning s"]),
    (
        "Noise removed (removed / injected)",
        ["dup", "near-dup", "wrong", "junk", "clean lost", "precision %", "recall %"],
    ),
    ("What it cost and bought", ["train s", "cost $ (incl. setup)", "acc %", "Δ acc pts vs unpruned"]),
]


def pruning_section(rs, ok) -> list[str]:
    head, rows = pruning_rows(rs, [r for r in ok if r["spec"]["scenario"] == "finetune"])
    if not rows:
        return []
    lines = ["", "## Data pruning"]
    for title, heads in PRUNING_TABLES:
        idx = [0] + [head.index(h) for h in heads]
        lines += [
            "",
            f"### {title}",
            "",
            mdtable.table([[row[i] for i in idx] for row in rows], [head[i] for i in idx]),
        ]
    return lines + [
        "",
        "Noise removed: injected examples of that kind removed / injected (copies of one problem are "
        "interchangeable; `clean lost` = problems with no copy left). Precision = injected noise removed / all "
        "removed; recall = injected noise removed / injected noise. Kept % and tokens are of the generated train "
        "split; `pruning s` (scoring included) is part of setup and of the cost; the runs' time- and cost-to-target "
        "(the suite's target) are in the fine-tuning cost table.",
    ]


def replication_section(rs: dict) -> list[str]:
    """Seeds and replicates per run, and which figures rest on one seed or one replicate."""
    rows, one_rep, one_seed = [], [], []
    for ms in replicates.groups(rs).values():
        p = replicates.primary(ms)
        if p["status"] != "ok":
            continue
        seeds = sorted({r["spec"].get("seed", 0) for r in replicates.ok(ms)})
        reps = max(sum(r["spec"].get("seed", 0) == s for r in replicates.ok(ms)) for s in seeds)
        quality = sum(not r["spec"].get("timing_only") for r in replicates.ok(ms))
        rows.append([p["id"], ",".join(map(str, seeds)), reps, quality])
        timed = any(
            m.get("unit") in replicates.TIME_UNITS and m.get("value") is not None for m in p["metrics"].values()
        )  # a quality-only run (batch_sizes = []) has no timing to replicate
        (one_rep if len(replicates.ok(ms)) < 2 and timed else []).append(p["id"])
        (one_seed if len(seeds) < 2 else []).append(p["id"])
    lines = ["", "## Replication", "", mdtable.table(rows, ["run", "seeds", "replicates per seed", "quality runs"]), ""]
    if one_rep:
        lines.append(f"Timings with one replicate (compare shows them as `info`, not tested): {', '.join(one_rep)}.")
    if one_seed:
        lines.append(f"Accuracies from one seed (no seed-to-seed spread in the figure): {', '.join(one_seed)}.")
    return lines


def summary_markdown(rs: dict) -> str:
    env = rs.get("env", {})
    p, src = price(rs)
    lines = [
        f"# effbench result set: suite `{rs.get('suite')}`",
        "",
        f"- created: {rs.get('created_utc')}  git: {(rs.get('git') or {}).get('sha', '?')}"
        f"{' (dirty tree)' if (rs.get('git') or {}).get('dirty') else ''}",
        f"- device: {env.get('device_name', '?')} ({env.get('device', '?')}), torch {env.get('libraries', {}).get('torch')}, "
        f"threads {env.get('torch_threads')}",
        f"- price: {fmt(p, '.2f')} USD/device-hour ({src})",
    ]
    models = {
        (r.get("model") or {}).get("name"): (r.get("model") or {}).get("weights_sha256", "")[:16]
        for r in rs["runs"]
        if r.get("model")
    }
    for name, sha in models.items():
        lines.append(f"- model: {name} (weights sha256 {sha}…)")
    t = cost.target_accuracy(rs)
    if t is not None:
        n = len(cost.reference_accuracies(rs))
        tgt = rs.get("target") or {}
        lines.append(
            f"- fine-tuning target: {100 * t:.1f}% = {tgt.get('fraction', 0.9)} x final accuracy of `{tgt.get('reference')}`"
            f"{f' (mean over {n} seeds)' if n > 1 else ''}"
        )
    ok = [r for r in replicates.representatives(rs) if r["status"] == "ok"]
    tables, dropped = workload_sections(rs, ok)
    lines += tables
    lines += pruning_section(rs, ok)
    lines += replication_section(rs)
    trade = tradeoff.lines(rs)
    if trade:
        lines += ["", "## Quality and speed against the baseline", ""] + trade

    lines += sections.public_deltas_section(rs)
    lines += sections.card_section(rs)
    lines += sections.finetune_deltas_section(rs)
    lines += sections.distillation_section(rs)
    lines += sections.sweeps_section(rs)
    lines += sections.interactions_section(rs)
    lines += sections.compile_section(ok)
    lines += sections.roofline_section(rs)
    if rs.get("kernels"):
        from effbench.render.kernel_report import kernel_markdown

        lines += ["", kernel_markdown(rs["kernels"]).rstrip()]
    elif rs.get("kernels_missing"):
        lines += ["", f"Kernel micro-benchmark not measured: {rs['kernels_missing']}"]
    lines += not_measured_section(rs)
    lines += ["", *notes(rs, ok, dropped)]
    return "\n".join(out for line in lines for out in _fit(line)) + "\n"


def _fit(line: str) -> list[str]:
    """A line of prose or a bullet wrapped to columns.WIDTH; tables, headings and blank lines as they are."""
    if not line or line.startswith(("|", "#")) or "\n" in line or len(line) <= columns.WIDTH:
        return [line]
    return columns.wrap(line)


def not_measured_section(rs) -> list[str]:
    """Runs that were skipped or failed, each reason cut to keep its line within columns.WIDTH."""
    other = [r for r in rs["runs"] if r["status"] != "ok"]
    if not other:
        return []
    rows = [[r["id"], techniques_label(r), r["status"]] for r in other]
    head = ["run", "techniques", "status", "reason"]
    # a github table column is max(cells, header + 2) wide, plus "| " and " " around it; "|" ends the line
    used = sum(max(max(len(mdtable.cell(row[i])) for row in rows), len(head[i]) + 2) + 3 for i in range(3)) + 4
    room = max(columns.WIDTH - used, 30)
    for row, r in zip(rows, other):
        why = " ".join((r.get("reason") or r.get("error") or "")[:200].splitlines())
        cut = why[: room - 1]
        while len(mdtable.cell(cut)) > room - 1:  # escaping (`|` as `\|`) lengthens the cell
            cut = cut[:-1]
        row.append(why if len(mdtable.cell(why)) <= room else cut + "…")
    return [
        "",
        "## Not measured",
        "",
        mdtable.table(rows, head),
        "",
        "Each reason in full: results.json.",
    ]


def notes(rs, ok, dropped) -> list[str]:
    """The footnotes: what ± means for each kind of figure, the markers, and the columns left out."""
    out = [
        "Accuracies are percentages ± one standard error over eval items; `–` marks a figure not measured "
        "(its reason is in results.json). Throughputs, latencies, train s and peak memory: the median over a run's "
        "replicates (each one process) ± the sample standard deviation of the replicates; `(1 rep)`: measured "
        "by one replicate, so no spread (the Replication section counts them). Peak MiB: CUDA max allocated, "
        "or on CPU the peak RSS of the workload region. Quality points are above a floor: $/point per point "
        "gained over the unmodified model, $/Mtok/pt per probe point above chance (the mean of 1 / choices over "
        "its items, 25% for four choices); a run at or below the floor has no cost per point (`–`). MFU: executed "
        "FLOP/s (adapters, frozen weights and recomputation counted as they run) over the GPU's dense bf16 peak.",
    ]
    ppl = [r for r in ok if columns.perplexity(r).startswith(">")]
    if ppl:
        vocabs = sorted({v for v in (vocab_size(r) for r in ppl) if v})
        out += [
            "",
            "ppl `> V (broken)`: a perplexity above the vocabulary size V"
            f"{' (' + ', '.join(map(str, vocabs)) + ' tokens)' if vocabs else ''}, worse than guessing uniformly "
            f"over every token; `> {columns.ABSURD_TEXT} (broken)` where V is not known. Its value is in results.json.",
        ]
    if dropped:
        out += [
            "",
            f"Left out, as no run's figure says anything (every one empty or zero; an accuracy at most "
            f"{columns.ZERO_SE:g} standard errors above zero): {', '.join(dropped)}. results.json has them.",
        ]
    return out
