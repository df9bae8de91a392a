"""Summary tables of a result set (markdown through tabulate), with derived figures computed here.

One row per suite run: where a run has several members (seeds, replicates; effbench.read.replicates),
timings are medians over replicates and accuracies means over seeds (± per-item stderr, with the
across-seed sd). The replication section says how many seeds and replicates each figure has, and
the trade-off section puts each technique's speed and quality against its baseline in one line.
"""

from __future__ import annotations

from effbench.read import cost, replicates, tradeoff
from effbench.read.runinfo import (
    fmt,
    is_pruning_run,
    mib,
    peak_bytes,
    pm,
    price,
    techniques_label,
    unchanged_layers,
    unpruned_twin,
)
from effbench.read.runinfo import value as _v
from effbench.render import mdtable, sections


def members_of(rs: dict, rep: dict) -> list[dict]:
    """The member runs a representative stands for (itself where it has none)."""
    ids = set(rep.get("members") or ())
    return [r for r in rs["runs"] if r["id"] in ids] or [rep]


def target_cells(rs: dict, rep: dict, p, target) -> tuple[str, str]:
    """Time- and cost-to-target: one seed as measured; several seeds: the median of those that
    reached the target, how many did, and their range."""
    t = cost.to_target(members_of(rs, rep), p, target)
    if t["seeds"] == 1:
        return fmt(t["median_s"], ".0f", "not reached"), fmt(t["median_usd"], ".4f", "not reached")
    k, n = sum(x is not None for x in t["times_s"]), t["seeds"]
    if not k:
        return f"not reached (0/{n} seeds)", f"not reached (0/{n} seeds)"
    spread = f", {t['min_s']:.0f}–{t['max_s']:.0f}" if k > 1 else ""
    return f"{t['median_s']:.0f} ({k}/{n} seeds{spread})", f"{fmt(t['median_usd'], '.4f')} ({k}/{n} seeds)"


def finetune_rows(rs, runs):
    p, _ = price(rs)
    target = cost.target_accuracy(rs)
    rows = []
    for r in runs:
        d = cost.derived(r, p, target)
        ttt, ctt = target_cells(rs, r, p, target)
        rows.append(
            [
                r["id"],
                techniques_label(r),
                pm(r, "accuracy_unmodified"),
                pm(r, "accuracy"),
                fmt(d.get("gain_points"), ".1f"),
                fmt(_v(r, "train_tokens_per_s"), ".1f"),
                mib(peak_bytes(r)),
                fmt(_v(r, "trainable_fraction") and 100 * _v(r, "trainable_fraction"), ".2f"),
                fmt(_v(r, "train_wall_s"), ".0f"),
                fmt(r.get("setup", {}).get("wall_s"), ".1f"),
                ttt,
                fmt(d.get("cost_usd"), ".4f"),
                ctt,
                fmt(d.get("usd_per_point"), ".5f"),
                fmt(_v(r, "mfu") and 100 * _v(r, "mfu"), ".1f"),
                unchanged_layers(r),
            ]
        )
    head = [
        "run",
        "techniques",
        "acc before %",
        "acc after %",
        "gain pts",
        "train tok/s",
        "peak MiB",
        "trainable %",
        "train s",
        "setup s",
        "time-to-target s",
        "cost $",
        "cost-to-target $",
        "$/point",
        "MFU %",
        "layers unchanged",
    ]
    return head, rows


def infer_rows(rs, runs):
    p, _ = price(rs)
    rows = []
    for r in runs:
        d = cost.derived(r, p, None)
        dec, key = cost.largest_batch_decode(r)
        b = key.rsplit(".b", 1)[1] if key else "?"
        rows.append(
            [
                r["id"],
                techniques_label(r),
                fmt(_v(r, "prefill_tokens_per_s.b1"), ".0f"),
                fmt(_v(r, "decode_tokens_per_s.b1"), ".1f"),
                f"{fmt(dec, '.1f')} (b{b})",
                fmt(_v(r, "decode_latency_p50_ms.b1"), ".1f"),
                mib(peak_bytes(r)),
                mib(_v(r, "weight_bytes")),
                pm(r, "probe_acc"),
                fmt(d.get("probe_points"), ".1f"),
                pm(r, "arith_accuracy"),
                fmt(_v(r, "perplexity"), ".2f"),
                fmt(_v(r, "kld_mean"), ".4f"),
                fmt(_v(r, "top1_agreement") and 100 * _v(r, "top1_agreement"), ".1f"),
                fmt(r.get("setup", {}).get("wall_s"), ".1f"),
                fmt(d.get("usd_per_mtok"), ".3f"),
                fmt(d.get("usd_per_mtok_per_point"), ".4f"),
                unchanged_layers(r),
            ]
        )
    head = [
        "run",
        "techniques",
        "prefill tok/s b1",
        "decode tok/s b1",
        "decode tok/s",
        "p50 ms/tok b1",
        "peak MiB",
        "weights MiB",
        "probe acc %",
        "probe pts > chance",
        "arith acc %",
        "ppl",
        "KLD",
        "top-1 agree %",
        "setup s",
        "$/Mtok",
        "$/Mtok/pt",
        "layers unchanged",
    ]
    return head, rows


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
        "dup removed",
        "near-dup removed",
        "wrong removed",
        "junk removed",
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


def pruning_section(rs, ok) -> list[str]:
    head, rows = pruning_rows(rs, [r for r in ok if r["spec"]["scenario"] == "finetune"])
    if not rows:
        return []
    return [
        "",
        "## Data pruning",
        "",
        mdtable.table(rows, head),
        "",
        "Removed columns: injected examples of that kind removed / injected (copies of one problem are "
        "interchangeable; `clean lost` = problems with no copy left). Precision = injected noise removed / all "
        "removed; recall = injected noise removed / injected noise. Kept % and tokens are of the generated train "
        "split; `pruning s` (scoring included) is part of setup and of the cost; time-to-target uses the suite's target.",
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
        (one_rep if len(replicates.ok(ms)) < 2 else []).append(p["id"])
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
        lines.append(
            f"- fine-tuning target: {100 * t:.1f}% = {rs['target']['fraction']} x final accuracy of `{rs['target']['reference']}`"
            f"{f' (mean over {n} seeds)' if n > 1 else ''}"
        )
    ok = [r for r in replicates.representatives(rs) if r["status"] == "ok"]
    for scen, fn, title in (("finetune", finetune_rows, "Fine-tuning"), ("infer", infer_rows, "Inference")):
        runs = [r for r in ok if r["spec"]["scenario"] == scen]
        if runs:
            head, rows = fn(rs, runs)
            lines += ["", f"## {title}", "", mdtable.table(rows, head)]
    lines += pruning_section(rs, ok)
    lines += replication_section(rs)
    trade = tradeoff.lines(rs)
    if trade:
        lines += ["", "## Quality and speed against the baseline", ""] + trade

    lines += sections.sweeps_section(rs)
    lines += sections.interactions_section(rs)
    if rs.get("kernels"):
        from effbench.render.kernel_report import kernel_markdown

        lines += ["", kernel_markdown(rs["kernels"]).rstrip()]
    elif rs.get("kernels_missing"):
        lines += ["", f"Kernel micro-benchmark not measured: {rs['kernels_missing']}"]
    other = [r for r in rs["runs"] if r["status"] != "ok"]
    if other:
        rows = [
            [r["id"], techniques_label(r), r["status"], (r.get("reason") or r.get("error") or "")[:200]] for r in other
        ]
        lines += ["", "## Not measured", "", mdtable.table(rows, ["run", "techniques", "status", "reason"])]
    lines += [
        "",
        "Accuracies are percentages ± one standard error over eval items; `–` marks a figure not measured "
        "(its reason is in results.json). Peak MiB: CUDA max allocated, or on CPU the peak RSS of the workload region. "
        "Quality points are above a floor: $/point per point gained over the unmodified model, $/Mtok/pt per probe "
        "point above chance (the mean of 1 / choices over its items, 25% for four choices); a run at or below "
        "the floor has no cost per point (`–`). MFU: executed FLOP/s (adapters, frozen weights and recomputation "
        "counted as they run) over the GPU's dense bf16 peak.",
    ]
    return "\n".join(lines) + "\n"
