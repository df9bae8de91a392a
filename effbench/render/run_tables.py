"""The fine-tuning and inference tables of the summary: every column of a run (effbench.render.columns),
and the split of those columns into tables per concern (techniques, speed and memory, quality, cost),
each led by the run id, so that a line fits columns.WIDTH. Derived figures come from effbench.read.cost;
timings and peak memory carry their spread over replicates (columns.with_spread).
"""

from __future__ import annotations

import statistics

from effbench.read import cost, replicates
from effbench.read.runinfo import (
    fmt,
    mib,
    peak_bytes,
    pm,
    price,
    techniques_label,
    unchanged_layers,
)
from effbench.read.runinfo import value as _v
from effbench.render import columns
from effbench.render.columns import Column


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


FINETUNE_TABLES = [
    ("Techniques", ["techniques", "trainable %", "setup s", "layers unchanged"]),
    ("Speed and memory", ["train tok/s", "peak MiB", "train s", "MFU %"]),
    ("Quality", ["acc before %", "acc after %", "gain pts", "HellaSwag before %", "HellaSwag after %"]),
    ("Cost", ["cost $", "$/point", "time-to-target s", "cost-to-target $"]),
]
INFER_TABLES = [
    ("Techniques", ["techniques", "setup s", "layers unchanged"]),
    ("Speed", ["prefill tok/s b1", "decode tok/s b1", "decode tok/s", "p50 ms/tok b1"]),
    ("Memory and bytes", ["peak MiB", "weights MiB"]),
    (
        "Generation (generate(), batch 1; greedy interleaved in the same process)",
        [
            "copy tok/s",
            "copy greedy tok/s",
            "copy speed-up",
            "novel tok/s",
            "novel greedy tok/s",
            "novel speed-up",
            "tokens = greedy",
        ],
    ),
    ("Public tasks (acc_norm)", ["HellaSwag %", "ARC-E %", "ARC-C %", "PIQA %", "pooled %", "pts > chance", "items"]),
    ("Quality", ["probe acc %", "probe pts > chance", "arith acc %", "ppl", "KLD", "top-1 agree %"]),
    ("Cost", ["$/Mtok", "$/Mtok/pt"]),
]


def _public_items(r) -> str:
    """Items each public task's accuracy rests on, e.g. "4x100" (or the counts, where they differ)."""
    d = (r.get("data") or {}).get("public") or {}
    ns = [v["n_items"] for k, v in d.items() if isinstance(v, dict) and not k.endswith("_card")]
    if not ns:
        return "–"
    return f"{len(ns)}x{ns[0]}" if len(set(ns)) == 1 else "/".join(map(str, ns))


def _peak(rs, r) -> str:
    name = "peak_allocated_bytes" if "peak_allocated_bytes" in r.get("metrics", {}) else "peak_rss_bytes"
    return columns.with_spread(members_of(rs, r), r, name, ".0f", 1 / 2**20) if peak_bytes(r) is not None else "–"


def _timed(rs, name, spec):
    return lambda r: columns.with_spread(members_of(rs, r), r, name, spec)


def _pct(name, spec):
    return lambda r: fmt(_v(r, name) and 100 * _v(r, name), spec)


def _setup(r):
    return r.get("setup", {}).get("wall_s")


def common_columns(rs) -> list[Column]:
    """The run, its techniques, their set-up and layers left unchanged; peak memory."""
    return [
        Column("run", lambda r: r["id"], lambda r: True),
        Column("techniques", techniques_label, lambda r: True),
        Column("setup s", lambda r: fmt(_setup(r), ".1f"), lambda r: columns.nonzero(_setup(r))),
        Column("layers unchanged", unchanged_layers, lambda r: unchanged_layers(r) != "–"),
        Column("peak MiB", lambda r: _peak(rs, r), lambda r: columns.nonzero(peak_bytes(r))),
    ]


def finetune_columns(rs, runs=None) -> list[Column]:
    p, _ = price(rs)
    target = cost.target_accuracy(rs)
    d = {}

    def der(r):
        if r["id"] not in d:
            d[r["id"]] = cost.derived(r, p, target)
        return d[r["id"]]

    def cells(r):
        if ("t", r["id"]) not in d:
            d["t", r["id"]] = target_cells(rs, r, p, target)
        return d["t", r["id"]]

    return common_columns(rs) + [
        Column("acc before %", lambda r: pm(r, "accuracy_unmodified"), columns.accuracy_shows("accuracy_unmodified")),
        Column("acc after %", lambda r: pm(r, "accuracy"), columns.accuracy_shows("accuracy")),
        Column(
            "gain pts",
            lambda r: fmt(der(r).get("gain_points"), ".1f"),
            lambda r: columns.nonzero(der(r).get("gain_points")),
        ),
        Column(
            "HellaSwag before %",
            lambda r: pm(r, "hellaswag_acc_norm_before"),
            columns.accuracy_shows("hellaswag_acc_norm_before"),
        ),
        Column(
            "HellaSwag after %",
            lambda r: pm(r, "hellaswag_acc_norm_after"),
            columns.accuracy_shows("hellaswag_acc_norm_after"),
        ),
        Column("train tok/s", _timed(rs, "train_tokens_per_s", ".1f"), columns.metric_shows("train_tokens_per_s")),
        Column("trainable %", _pct("trainable_fraction", ".2f"), columns.metric_shows("trainable_fraction")),
        Column("train s", _timed(rs, "train_wall_s", ".0f"), columns.metric_shows("train_wall_s")),
        Column("time-to-target s", lambda r: cells(r)[0], lambda r: target is not None),
        Column(
            "cost $", lambda r: fmt(der(r).get("cost_usd"), ".4f"), lambda r: columns.nonzero(der(r).get("cost_usd"))
        ),
        Column("cost-to-target $", lambda r: cells(r)[1], lambda r: target is not None),
        Column(
            "$/point",
            lambda r: fmt(der(r).get("usd_per_point"), ".5f"),
            lambda r: columns.nonzero(der(r).get("usd_per_point")),
        ),
        Column("MFU %", _pct("mfu", ".1f"), columns.metric_shows("mfu")),
    ]


def infer_columns(rs, runs) -> list[Column]:
    p, _ = price(rs)
    d = {}

    def der(r):
        if r["id"] not in d:
            d[r["id"]] = cost.derived(r, p, None)
        return d[r["id"]]

    def batched(r) -> tuple[float | None, str | None]:
        """The decode throughput at the run's largest batch, where that batch is above 1 (batch 1 has
        its own column: a suite that times batch 1 alone would show it twice)."""
        value, key = cost.largest_batch_decode(r)
        return (value, key) if key and int(key.rsplit(".b", 1)[1]) > 1 else (None, None)

    keys = {batched(r)[1] for r in runs}
    one = next(iter(keys)) if len(keys) == 1 and None not in keys else None  # every run's largest batch alike

    def decode(r):
        _, key = batched(r)
        if key is None:
            return "–"
        cell = columns.with_spread(members_of(rs, r), r, key, ".1f")
        return cell if one else f"{cell} (b{key.rsplit('.b', 1)[1]})"

    dec_head = f"decode tok/s b{one.rsplit('.b', 1)[1]}" if one else "decode tok/s"
    return common_columns(rs) + [
        Column(
            "prefill tok/s b1",
            _timed(rs, "prefill_tokens_per_s.b1", ".0f"),
            columns.metric_shows("prefill_tokens_per_s.b1"),
        ),
        Column(
            "decode tok/s b1",
            _timed(rs, "decode_tokens_per_s.b1", ".1f"),
            columns.metric_shows("decode_tokens_per_s.b1"),
        ),
        Column(dec_head, decode, lambda r: columns.nonzero(batched(r)[0]), "decode tok/s"),
        Column(
            "p50 ms/tok b1",
            _timed(rs, "decode_latency_p50_ms.b1", ".1f"),
            columns.metric_shows("decode_latency_p50_ms.b1"),
        ),
        Column("weights MiB", lambda r: mib(_v(r, "weight_bytes")), columns.metric_shows("weight_bytes")),
        *generation_columns(rs),
        *[
            Column(head, lambda r, k=f"{task}_acc_norm": pm(r, k), columns.accuracy_shows(f"{task}_acc_norm"))
            for head, task in (
                ("HellaSwag %", "hellaswag"),
                ("ARC-E %", "arc_easy"),
                ("ARC-C %", "arc_challenge"),
                ("PIQA %", "piqa"),
                ("pooled %", "public"),
            )
        ],
        Column(
            "pts > chance",
            lambda r: fmt(der(r).get("public_points"), ".1f"),
            lambda r: columns.nonzero(der(r).get("public_points")),
        ),
        Column("items", _public_items, lambda r: bool(_public_items(r).strip("–"))),
        Column("probe acc %", lambda r: pm(r, "probe_acc"), columns.accuracy_shows("probe_acc")),
        Column(
            "probe pts > chance",
            lambda r: fmt(der(r).get("probe_points"), ".1f"),
            lambda r: columns.nonzero(der(r).get("probe_points")),
        ),
        Column("arith acc %", lambda r: pm(r, "arith_accuracy"), columns.accuracy_shows("arith_accuracy")),
        Column("ppl", columns.perplexity, lambda r: _v(r, "perplexity") is not None),
        Column("KLD", lambda r: fmt(_v(r, "kld_mean"), ".4f"), columns.metric_shows("kld_mean")),
        Column("top-1 agree %", _pct("top1_agreement", ".1f"), columns.metric_shows("top1_agreement")),
        Column(
            "$/Mtok",
            lambda r: fmt(der(r).get("usd_per_mtok"), ".3f"),
            lambda r: columns.nonzero(der(r).get("usd_per_mtok")),
        ),
        Column(
            "$/Mtok/pt",
            lambda r: fmt(der(r).get("usd_per_mtok_per_point"), ".4f"),
            lambda r: columns.nonzero(der(r).get("usd_per_mtok_per_point")),
        ),
    ]


def _speedup(rs, prompt: str):
    """Median over a run's replicates of generate() tok/s / plain greedy tok/s on `prompt`."""

    def cell(r):
        a = replicates.values(members_of(rs, r), f"generate_tokens_per_s.{prompt}")
        b = replicates.values(members_of(rs, r), f"generate_greedy_tokens_per_s.{prompt}")
        if not a or not b or len(a) != len(b):
            return "–"
        ratios = sorted(x / y for x, y in zip(a, b) if y)
        return f"{statistics.median(ratios):.2f}x" + ("" if len(ratios) > 1 else " (1 rep)")

    return cell


def _identity(r):
    vals = [_v(r, f"token_identity.{p}") for p in ("repeat", "novel")]
    vals = [v for v in vals if v is not None]
    return "–" if not vals else ("yes" if all(v == 1.0 for v in vals) else f"no ({100 * min(vals):.0f}%)")


def generation_columns(rs) -> list[Column]:
    """generate() on a passage to copy (`repeat`) and one to continue (`novel`), a technique's
    decoding and plain greedy interleaved in one process (workloads.generation), and their ratio."""
    cols = []
    for label, prompt in (("copy", "repeat"), ("novel", "novel")):
        cols += [
            Column(
                f"{label} tok/s",
                _timed(rs, f"generate_tokens_per_s.{prompt}", ".1f"),
                columns.metric_shows(f"generate_tokens_per_s.{prompt}"),
            ),
            Column(
                f"{label} greedy tok/s",
                _timed(rs, f"generate_greedy_tokens_per_s.{prompt}", ".1f"),
                columns.metric_shows(f"generate_greedy_tokens_per_s.{prompt}"),
            ),
            Column(
                f"{label} speed-up",
                _speedup(rs, prompt),
                lambda r, p=prompt: _v(r, f"generate_greedy_tokens_per_s.{p}") is not None,
            ),
        ]
    return cols + [
        Column("tokens = greedy", _identity, lambda r: _v(r, "token_identity.repeat") is not None),
    ]


def finetune_rows(rs, runs):
    """Every fine-tuning column of every run (the summary splits them into tables per concern)."""
    return columns.full(runs, finetune_columns(rs, runs))


def infer_rows(rs, runs):
    """Every inference column of every run (the summary splits them into tables per concern)."""
    return columns.full(runs, infer_columns(rs, runs))


def workload_sections(rs, ok) -> tuple[list[str], list[str]]:
    """The fine-tuning and inference tables, split per concern; (lines, columns left out)."""
    lines, dropped = [], []
    for scen, title, cols, tables in (
        ("finetune", "Fine-tuning", finetune_columns, FINETUNE_TABLES),
        ("infer", "Inference", infer_columns, INFER_TABLES),
    ):
        runs = [r for r in ok if r["spec"]["scenario"] == scen]
        if not runs:
            continue
        parts, gone = columns.split(runs, cols(rs, runs), tables)
        lines += ["", f"## {title}"]
        for name, table in parts:
            lines += ["", f"### {name}", "", table]
        dropped += [f"{h} ({title.lower()})" for h in gone]
    return lines, dropped
