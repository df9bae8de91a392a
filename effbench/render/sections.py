"""The report's tables of sweeps, of stacked techniques' interactions and of compilation's
break-even (markdown lines).

The figures come from the read side (effbench.read.sweep_curves, effbench.read.interactions,
effbench.read.breakeven);
this module only lays them out, through mdtable, which escapes text from result files.
"""

from __future__ import annotations

from effbench.read import breakeven, card, distill, interactions, roofline, runinfo, sweep_curves, tradeoff
from effbench.render import mdtable


def sweeps_section(rs: dict) -> list[str]:
    """The report's sweep table: each sweep's points, their non-inferiority and the knee."""
    recs = sweep_curves.sweeps(rs)
    if not recs:
        return []
    rows = []
    for s in recs:
        for q in s["points"]:
            rows.append(
                [
                    s["id"],
                    runinfo.fmt(q["value"], "g") if not isinstance(q["value"], str) else q["value"],
                    runinfo.fmt(q["x"], ".3g"),
                    runinfo.fmt(None if q["quality"] is None else 100 * q["quality"], ".1f")
                    + ("" if q["stderr"] is None else f" ± {100 * q['stderr']:.1f}"),
                    runinfo.fmt(q["noninferior_p"], ".3g"),
                    "**knee**" if q is s["knee"] else "",
                ]
            )
    margins = sorted({s["margin"] for s in recs})
    return [
        "",
        "## Sweeps",
        "",
        mdtable.table([[s["id"], s["axis"], len(s["points"])] for s in recs], ["sweep", "axis", "points"]),
        "",
        mdtable.table(rows, ["sweep", "value", "x", "quality %", "non-inferiority p", "knee"]),
        "",
        f"Quality: {', '.join(sorted({s.get('quality_label') or '?' for s in recs}))} (each sweep's headline: the "
        "task accuracy after fine-tuning; for inference the public tasks' pooled acc_norm, or the probe in sets "
        "measured before them). Non-inferiority: one-sided paired test "
        f"against the run without techniques at a margin of {', '.join(f'{100 * m:g}' for m in margins)} pt; the knee is "
        "the most aggressive point with p < 0.05. x: the swept value, or the measured bits per weight on a technique axis; "
        "a plain run at a fixed sparsity (2:4) is a one-point row at the sparsity it recorded.",
    ]


def interactions_section(rs: dict) -> list[str]:
    """The report's interactions (markdown lines): per stack, its singles and a table of quantities,
    notes below the table; empty where the set has no stacks."""
    recs = interactions.interactions(rs)
    if not recs:
        return []
    lines = ["", "## Interactions of stacked techniques"]
    for stack in dict.fromkeys(r["stack"] for r in recs):
        mine = [r for r in recs if r["stack"] == stack]
        singles = next((r["singles"] for r in mine if r.get("singles")), [])
        if not singles:  # nothing to predict from: the reason, on one line
            why = "; ".join(x for r in mine for x in (r.get("reason"), r.get("note")) if x) or "no single runs"
            lines += ["", f"`{mdtable.cell(stack)}`: not predicted ({mdtable.cell(why)})"]
            continue
        lines += ["", f"`{mdtable.cell(stack)}` = " + " x ".join(f"`{mdtable.cell(x)}`" for x in singles)]
        rows, notes = [], []
        for r in mine:
            extra = "; ".join(x for x in (r.get("note"), r.get("reason")) if x)
            spec = ".3f" if "(x)" in r["quantity"] else "+.1f"
            pred = runinfo.fmt(r.get("predicted"), spec) + (
                f" [{runinfo.fmt(r['pred_lo'], spec)}, {runinfo.fmt(r['pred_hi'], spec)}]" if "pred_lo" in r else ""
            )
            inter = runinfo.fmt(r.get("interaction"), spec) + (
                f" [{runinfo.fmt(r['d_lo'], spec)}, {runinfo.fmt(r['d_hi'], spec)}]" if "d_lo" in r else ""
            )
            verdict = {"worse": "**worse than predicted**", "better": "**better than predicted**"}.get(
                r.get("verdict"), r.get("verdict") or "–"
            )
            if extra:
                notes.append(f"{r['quantity']}: {extra}")
                verdict += f" ({len(notes)})"
            rows.append([r["quantity"], runinfo.fmt(r.get("measured"), spec), pred, inter, verdict])
        if rows:
            head = ["quantity", "measured", "predicted [95% CI]", "interaction [95% CI]", "verdict"]
            lines += ["", mdtable.table(rows, head)]
        if notes:
            lines += [""] + [
                f"- ({i}) {mdtable.cell(n)}" if rows else f"- {mdtable.cell(n)}" for i, n in enumerate(notes, 1)
            ]
    return lines + [
        "",
        "Ratios are to the run without techniques (below 1: a saving); the prediction multiplies the singles' ratios "
        "(time, memory, bytes) or adds their quality losses in points. Interaction: measured / predicted (ratios) or "
        "measured - predicted (points); `worse`/`better than predicted` where its 95% CI excludes 1 (ratios) or 0 (points). "
        "Time and memory CIs pool the replicates' log-sd; quality CIs use the per-item stderr and the seed spread.",
    ]


def compile_section(runs: list[dict]) -> list[str]:
    """Each torch_compile run: its compile time, recompilations, and the tokens after which it has
    paid for the compile against the same run uncompiled (effbench.read.breakeven)."""
    pairs = breakeven.compiled_pairs(runs)
    if not pairs:
        return []
    rows = []
    for r, base, rate in pairs:
        rec = r["technique_records"][breakeven.TECHNIQUE]
        if base is None:
            pays = "no uncompiled partner run"
        else:
            n, why = breakeven.tokens_to_break_even(r, base, rate)
            pays = f"{n:,.0f} tokens" if n is not None else why
        rows.append(
            [
                r["id"],
                runinfo.fmt(rec.get("compile_s"), ".1f"),
                runinfo.fmt(rec.get("recompilations"), "d"),
                base["id"] if base else "-",
                pays,
            ]
        )
    head = ["run", "compile s", "recompilations", "vs", "pays after"]
    return [
        "",
        "## Compilation",
        "",
        mdtable.table(rows, head),
        "",
        "pays after: compile_s / (uncompiled - compiled seconds per token), from train_tokens_per_s (fine-tuning) or "
        "the largest batch's decode_tokens_per_s (inference); recompilations: graphs compiled after the warm-up.",
    ]


def public_deltas_section(rs: dict) -> list[str]:
    """Paired quality differences on the public tasks (read.tradeoff.public_deltas), one row per
    technique run and task: what the technique costs on HellaSwag, ARC and PIQA, on the same items."""
    rows = tradeoff.public_deltas(rs)
    if not rows:
        return []
    table = [
        [
            f"`{r['run']}`",
            r["task"],
            r["n"],
            f"{100 * r['base_value']:.1f}",
            f"{100 * r['head_value']:.1f}",
            f"{100 * r['diff']:+.1f} [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}]",
            f"{r['p']:.3g}",
        ]
        for r in rows
    ]
    return [
        "",
        "## Quality on the public tasks, paired against the unmodified model",
        "",
        mdtable.table(table, ["run", "task (acc_norm)", "items", "base %", "run %", "diff pts [95% CI]", "p"]),
        "",
        "Each technique run and its baseline scored the same items (the suite's fixed sample, recorded by id "
        "in results.json); diff = run - base in points, with the exact McNemar interval over the discordant "
        "items (conditional binomial), two-sided; `public` pools every scored item of the lm-eval tasks.",
        "",
    ]


def card_section(rs: dict) -> list[str]:
    """The unmodified model on whole public splits beside the SmolLM2 card (read.card), and what
    the weights' dtype changes where a split was scored in two."""
    rows = card.rows(rs)
    if not rows:
        return []

    def fig(r, label):
        f = r["figures"].get(label)
        return "–" if f is None else f"{100 * f['value']:.1f} [{100 * f['lo']:.1f}, {100 * f['hi']:.1f}]"

    table = [
        [r["task"], f"{r['split']} ({r['n']})", r["dtype"], *(fig(r, label) for label, _, _ in card.FIGURES),
         "–" if r["card"] is None else f"{r['card']:.1f}", "–" if r["card_diff"] is None else f"{r['card_diff']:+.1f}"]
        for r in rows
    ]  # fmt: skip
    out = [
        "",
        "## The unmodified model on whole splits, beside the SmolLM2 card",
        "",
        mdtable.table(
            table,
            [
                "task",
                "split (items)",
                "weights",
                *(f"{label} % [95% CI]" for label, _, _ in card.FIGURES),
                "card %",
                "card prompts - card pts",
            ],
        ),  # fmt: skip
        "",
        "Zero-shot, every item of the split; card prompts: the SmolLM2 card's cloze formulation "
        "(effbench.tasks.card_prompts), acc_norm the answer with the highest log-likelihood per character; "
        "Wilson intervals (ARC's mean: normal, from the two standard errors). The card's figures come from "
        "lighteval on the original bf16 weights, ARC on its test split: these weights are dequantised from "
        "Q4_1 and ARC here is its validation split, so a difference is one of the whole pipeline.",
    ]
    effects = card.dtype_effects(rs)
    if effects:
        out += [
            "",
            mdtable.table(
                [
                    [
                        e["task"],
                        e["figure"],
                        e["n"],
                        f"{100 * e['bf16']:.1f}",
                        f"{100 * e['fp32']:.1f}",
                        f"{100 * e['diff']:+.1f} [{100 * e['lo']:+.1f}, {100 * e['hi']:+.1f}]",
                        f"{e['p']:.3g}",
                        e["changed"],
                    ]
                    for e in effects
                ],  # fmt: skip
                ["task", "figure", "items", "bf16 %", "fp32 %", "fp32 - bf16 pts [95% CI]", "p", "items changed"],
            ),
            "",
            "The same items with the weights in float32 and in bfloat16, paired (exact McNemar).",
        ]
    return out + [""]


def finetune_deltas_section(rs: dict) -> list[str]:
    """Fine-tuning on real data (read.tradeoff.finetune_deltas): the held-out gain and the HellaSwag
    retention of each run, paired on the same items, and the gain's spread across seeds."""
    rows = tradeoff.finetune_deltas(rs)
    if not rows:
        return []
    table = [
        [
            f"`{r['run']}`",
            r["what"],
            r["n"],
            f"{100 * r['before']:.1f}",
            f"{100 * r['after']:.1f}",
            f"{100 * r['diff']:+.1f} [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}]",
            f"{r['p']:.3g}",
        ]
        for r in rows
    ]
    out = [
        "",
        "## Fine-tuning on held-out items, paired against the unmodified model",
        "",
        mdtable.table(table, ["run", "figure", "items", "before %", "after %", "diff pts [95% CI]", "p"]),
        "",
        "before: the unmodified model, after: the fine-tuned one, on the same items (the task's held-out side, "
        "which shares no sentence with the train side; HellaSwag: the public tasks' fixed sample); diff in "
        "points with the exact McNemar interval, two-sided.",
    ]
    spread = tradeoff.seed_spread(rows)
    if spread:
        out += [
            "",
            mdtable.table(
                [
                    [f"`{s['group']}`", s["what"], s["seeds"], f"{100 * s['mean']:+.1f}", f"{100 * s['sd']:.1f}"]
                    for s in spread
                ],
                ["run", "figure", "seeds", "mean diff pts", "sd across seeds pts"],
            ),
        ]
    return out + [""]


def distillation_section(rs: dict) -> list[str]:
    """Each distilled student against the same student trained without a teacher (read.distill)."""
    rows = distill.pairs(rs)
    if not rows:
        return []

    def diff(d):
        if d is None:
            return "–"
        return f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] ({d['n']} items, p {d['p']:.3g})"

    table = [
        [
            f"`{r['run']}`",
            f"`{r['control']}`",
            r["keep_every"],
            r["alpha"],
            diff(r["accuracy"]),
            diff(r["retention"]),
            runinfo.fmt(r["train_s"], ".0f"),
            runinfo.fmt(r["control_train_s"], ".0f"),
            runinfo.fmt(r["acc_points_per_extra_s"], ".3f"),
        ]
        for r in rows
    ]
    head = ["run", "control (no teacher)", "keep every", "alpha", "task acc diff pts [95% CI]",
            "HellaSwag after diff pts [95% CI]", "train s", "control train s", "acc pts per extra train s"]  # fmt: skip
    return [
        "",
        "## Distillation against the same student without a teacher",
        "",
        mdtable.table(table, head),
        "",
        "diff = student with teacher - student without, on the same items (exact McNemar interval); the "
        "teacher's forward runs inside every timed step, so train s includes it; points per extra second = "
        "task accuracy diff / (train s - control train s), blank where the teacher made training no slower.",
        "",
    ]


def ceiling_lines(c: dict) -> list[str]:
    """The measured ceiling as a few bullet lines: matmul FLOP/s per dtype, copy bandwidth, ridge,
    and the data sheet's peaks where the device has them."""
    bw = c["bandwidth"]["value"]
    lines = [
        f"- device: {c.get('device_name') or c.get('device')} ({c.get('device')}), {c.get('threads')} threads"
        + (" (quick: small sizes, not the device's full figures)" if c.get("quick") else "")
    ]
    for dtype, mm in sorted(c["matmul"].items()):
        lines.append(
            f"- matmul {dtype}: {mm['value'] / 1e9:,.1f} GFLOP/s (n = {mm.get('size', '?')}); "
            f"ridge {mm['value'] / bw:.1f} FLOP/B"
        )
    lines.append(f"- copy bandwidth: {bw / 1e9:,.1f} GB/s ({c['bandwidth'].get('bytes', 0) / 2**20:.0f} MiB buffer)")
    t = c.get("table") or {}
    if t.get("bf16_flops_per_s") or t.get("bandwidth_bytes_per_s"):
        peak = t.get("bf16_flops_per_s")
        mm = (c["matmul"].get("bfloat16") or {}).get("value")
        tb = t.get("bandwidth_bytes_per_s")
        lines.append(
            f"- data sheet ({t.get('label')}): "
            + (
                f"bf16 {peak / 1e12:,.0f} TFLOP/s" + (f" (measured {100 * mm / peak:.0f}%)" if mm else "")
                if peak
                else ""
            )
            + (f", {tb / 1e9:,.0f} GB/s (measured {100 * bw / tb:.0f}%)" if tb else "")
        )
    elif t.get("reason"):
        lines.append(f"- data sheet: {t['reason']}")
    return lines


def roofline_section(rs: dict) -> list[str]:
    """Each run's prefill, decode and training figures on the set's measured roofline
    (effbench.read.roofline): achieved FLOP/s, intensity, fraction of the roof and the bound."""
    rows_, why = roofline.rows(rs)
    if why:
        return ["", f"Roofline not measured: {why}"]
    out = [
        "",
        "## Roofline",
        "",
        "Measured ceiling (`effbench ceiling`, before the runs):",
        "",
        *ceiling_lines(rs["ceiling"]),
    ]
    if not rows_:
        return out
    table = []
    for r in rows_:
        if "reason" in r:
            table.append([r["run"], r["figure"], r["dtype"], "–", "–", "–", r["reason"]])
            continue
        table.append(
            [
                r["run"],
                r["figure"],
                r["dtype"],
                runinfo.fmt(r["achieved_flops_per_s"] / 1e9, ",.2f"),
                runinfo.fmt(r["intensity"], ".3g"),
                runinfo.fmt(100 * r["fraction"], ".0f"),
                r["bound"],
            ]
        )
    head = ["run", "figure", "dtype", "GFLOP/s", "FLOP/B", "% of roof", "bound"]
    return out + [
        "",
        mdtable.table(table, head),
        "",
        "FLOP/B: matmul FLOPs per byte of the least memory traffic the figure must move (weights, KV cache, "
        "gradients, optimizer state; activations left out, so the roof is an upper bound and % of roof a lower "
        f"bound). % of roof: achieved / min(matmul ceiling, FLOP/B x bandwidth). bound: overhead below "
        f"{100 * roofline.OVERHEAD_BELOW:.0f}% of the roof, else memory under the ridge, compute above it "
        "(effbench.read.roofline).",
    ]
