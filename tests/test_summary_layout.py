"""The summary's layout rules (effbench.render.columns), on hand-made result sets: every line fits
120 characters, a replicated timing or peak memory carries its spread and a one-replicate figure
says so, an absurd perplexity is a marker and never digits, a column no run fills is left out and
named, and counts read as words ("1 replicate vs 3", "100%", not "3/1", "1 fraction")."""

from __future__ import annotations

import copy
import re

import numpy as np
from _resultsets import finetune_run, infer_run, make_set, real_infer, replicated

from effbench.read import tradeoff
from effbench.read.runinfo import fmt, mib
from effbench.render import columns, compare_format, report


def _table(md: str, section: str, title: str) -> list[dict]:
    """The rows (header -> cell) of table `### title` under `## section`."""
    part = md.split(f"## {section}\n", 1)[1].split(f"### {title}\n", 1)[1].strip().split("\n\n")[0]
    lines = [ln for ln in part.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    return [dict(zip(split[0], row)) for row in split[2:]]


def _wide_set() -> dict:
    """Long run ids and technique labels, replicates and seeds, pruning, a failed run, every workload."""
    probe = [1.0, 0.0, 0.0, 0.0] * 50
    stack = [{"name": "magnitude", "params": {"sparsity": 0.5}}, {"name": "nf4", "params": {}}]
    runs = replicated(real_infer(probe=probe), 3, 1) + replicated(
        real_infer("infer-magnitude-sparsity0.5-nf4-b", stack, dec=13.0, probe=probe), 3, 2
    )
    for i, ts in enumerate(
        [
            [{"name": "semi_structured_2_4", "params": {"score": "wanda"}}],
            [{"name": "torchao_int8wo", "params": {}}],
        ]
    ):
        runs.append(real_infer(f"infer-long-technique-name-{i}", ts, dec=20.0 + i, probe=probe))
    pruning = [{"name": "dedup", "params": {}}, {"name": "perplexity", "params": {"fraction": 0.5}}]
    runs += [
        finetune_run(),
        finetune_run(
            "finetune-qlora-nf4-r8-double-quant", [{"name": "qlora", "params": {"r": 8, "quant_type": "nf4"}}]
        ),
        finetune_run("prune-dedup-perplexity50", pruning + [{"name": "lora", "params": {"r": 16}}], n_train_kept=20),
    ]
    for r in runs:
        m = r["metrics"]
        if r["spec"]["scenario"] == "infer":
            m["arith_accuracy"] = {"value": 0.0, "stderr": 0.0, "n": 200, "unit": "fraction", "higher_is_better": True}
            m["weight_bytes"] = {"value": 513 * 2**20, "unit": "B", "higher_is_better": False}
            m["kld_mean"] = {"value": 0.25, "unit": "nats", "higher_is_better": False}
            m["top1_agreement"] = {"value": 0.75, "unit": "fraction", "higher_is_better": True}
    fail = infer_run("infer-that-failed-with-a-long-name", [{"name": "fused", "params": {}}])
    fail.update(status="failed", metrics={}, error="RuntimeError: " + "a very long reason | with pipes " * 8)
    return make_set(runs + [fail], suite="wide")


def test_every_line_of_a_wide_set_fits_120_characters():
    md = report.summary_markdown(_wide_set())
    long = [ln for ln in md.splitlines() if len(ln) > columns.WIDTH]
    assert not long, long
    for section in ("## Fine-tuning", "### Speed", "### Quality", "### Cost", "## Inference", "## Not measured"):
        assert section in md
    # wrapped prose never starts a line with a word markdown would read as a list marker or heading
    assert not [ln for ln in md.splitlines() if re.match(r"(\+|\*|>|#+|\d+[.)]) ", ln) and not ln.startswith("#")]


def test_a_suite_timing_batch_1_alone_shows_its_decode_column_once():
    """The largest-batch decode column is batch 1's own where a suite times no other batch (qlora-base,
    card): it once printed "decode tok/s b1" twice, side by side."""
    rs = make_set(replicated(real_infer(), 2, 1), suite="b1-only")
    for r in rs["runs"]:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if not re.search(r"\.b(?!1$)\d+$", k)}
    md = report.summary_markdown(rs)
    head = md.split("### Speed\n", 1)[1].strip().splitlines()[0]
    cells = [c.strip() for c in head.strip("|").split("|")]
    assert "decode tok/s b1" in cells and len(cells) == len(set(cells)), cells
    assert not [c for c in cells if c.startswith("decode tok/s") and c != "decode tok/s b1"], cells


def test_a_replicated_throughput_shows_its_spread_and_one_replicate_says_so():
    rs = _wide_set()
    md = report.summary_markdown(rs)
    speed = {row["run"]: row for row in _table(md, "Inference", "Speed")}
    base = [r for r in rs["runs"] if r["spec"]["group"] == "infer-baseline"]
    vals = [r["metrics"]["decode_tokens_per_s.b1"]["value"] for r in base]
    assert speed["infer-baseline"]["decode tok/s b1"] == f"{np.median(vals):.1f} ± {np.std(vals, ddof=1):.1f}"
    assert speed["infer-long-technique-name-0"]["decode tok/s b1"].endswith("(1 rep)")
    assert "± the sample standard deviation of the replicates" in " ".join(md.split())
    memory = {row["run"]: row for row in _table(md, "Inference", "Memory and bytes")}
    assert re.fullmatch(r"\d+ ± \d+", memory["infer-baseline"]["peak MiB"])
    assert memory["infer-long-technique-name-1"]["peak MiB"] == "700 (1 rep)"
    ft = {row["run"]: row for row in _table(md, "Fine-tuning", "Speed and memory")}
    assert ft["finetune-full"]["train tok/s"].endswith("(1 rep)")


def test_an_absurd_perplexity_is_a_marker_not_digits():
    rs = _wide_set()
    ok = [r for r in rs["runs"] if r["status"] == "ok" and r["spec"]["scenario"] == "infer"]
    ok[-1]["metrics"]["perplexity"]["value"] = 33134341.83  # magnitude 0.9: worse than uniform over 49152 tokens
    ok[-2]["metrics"]["perplexity"]["value"] = 9944.88  # bad but below V: a number
    md = report.summary_markdown(rs)
    quality = {row["run"]: row for row in _table(md, "Inference", "Quality")}
    assert quality[ok[-1]["id"]]["ppl"] == "> V (broken)" and "33134341" not in md
    assert quality[ok[-2]["id"]]["ppl"] == "9944.88"
    assert "vocabulary size V (49152 tokens)" in " ".join(md.split())
    # a model of unknown vocabulary: the fixed threshold; nan and inf as words
    run = copy.deepcopy(ok[-1])
    run["model"]["name"], run["spec"]["model"] = "hf:some/model", "hf:some/model"
    assert columns.perplexity(run) == "> 1e6 (broken)"
    run["metrics"]["perplexity"]["value"] = 5000.0
    assert columns.perplexity(run) == "5000.00"
    for x, word in ((float("nan"), "nan"), (float("inf"), "inf")):
        run["metrics"]["perplexity"]["value"] = x
        assert columns.perplexity(run) == word
        assert fmt(x, ".1f") == word and mib(x) == word


def test_a_column_no_run_fills_is_left_out_and_named():
    rs = _wide_set()
    md = report.summary_markdown(rs)
    assert "arith acc %" not in md.split("Left out")[0]  # 0.0 ± 0.0 in every inference row
    assert "MFU %" not in md.split("Left out")[0]  # CUDA only: empty everywhere
    notes = " ".join(md.split("Left out")[1].split())
    assert "arith acc % (inference)" in notes and "MFU % (fine-tuning)" in notes
    # one run within 2 standard errors of zero (0.5 ± 0.5): still nothing to show
    infer = [r for r in rs["runs"] if r["status"] == "ok" and r["spec"]["scenario"] == "infer"]
    infer[0]["metrics"]["arith_accuracy"].update(value=0.005, stderr=0.005)
    assert "arith acc %" not in report.summary_markdown(rs).split("Left out")[0]
    # one run clearly above zero: the column is back, for every run
    infer[0]["metrics"]["arith_accuracy"].update(value=0.30, stderr=0.03)
    md = report.summary_markdown(rs)
    quality = _table(md, "Inference", "Quality")
    assert all("arith acc %" in row for row in quality) and quality[0]["arith acc %"] == "30.0 ± 3.0"
    # the fuller view (every column) is still there for callers
    head, rows = report.infer_rows(rs, [r for r in rs["runs"] if r["spec"]["scenario"] == "infer"][:1])
    assert "arith acc %" in head and "MFU %" not in head and len(rows[0]) == len(head)


def test_counts_read_as_words():
    probe = [1.0, 0.0, 0.0, 0.0] * 50
    rs = make_set(
        replicated(real_infer(probe=probe), 3, 1)
        + [real_infer("infer-int8", [{"name": "int8", "params": {}}], dec=13.0, probe=probe)]
    )
    (line,) = tradeoff.lines(rs, 0.01)
    assert "(1 replicate vs 3)" in line and "3/1" not in line
    assert tradeoff.replicate_counts(3, 3) == "3 replicates each"
    assert compare_format.value(1.0, "fraction", "info") == "100%"
    assert compare_format.value(0.01783, "fraction", "info") == "1.783%"
    row = {"kind": "timing", "replicates": [3, 1], "mde": 0.05}
    assert compare_format.mde(row) == "±5.0% (3 vs 1)"
