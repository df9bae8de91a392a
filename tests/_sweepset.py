"""A hand-made result set with sweeps (sparsity x2, bits, LoRA rank, pruning fraction) and 15
fine-tuning runs, for the plot tests; `python tests/_sweepset.py DIR` writes it (README figures'
layout check)."""

from __future__ import annotations

import sys
from pathlib import Path

from _resultsets import finetune_run, infer_run, make_set, write


def probe(p):
    return [1.0] * p + [0.0] * (100 - p)


def sweep_set(suite="cpu-sweeps") -> dict:
    runs = [infer_run(probe=probe(84))]
    for fam, accs in (("magnitude", [83, 80, 70, 45, 30]), ("wanda", [84, 83, 78, 62, 40])):
        for v, a in zip([0.1, 0.3, 0.5, 0.7, 0.9], accs):
            r = infer_run(
                f"infer-{fam}-sparsity{v}",
                [{"name": fam, "params": {"sparsity": v}}],
                dec=500 * (1 + 0.02 * v),
                probe=probe(a),
            )
            r["spec"]["sweep"] = {"id": f"infer-{fam}", "axis": f"{fam}.sparsity", "value": v, "aggressive": "higher"}
            r["metrics"]["weight_bytes"] = {"value": 513 * 2**20, "unit": "B", "higher_is_better": False}
            runs.append(r)
    r = infer_run(
        "infer-2of4", [{"name": "semi_structured_2_4", "params": {"score": "wanda"}}], dec=510, probe=probe(60)
    )
    r["technique_records"] = {"semi_structured_2_4": {"achieved_sparsity": 0.5000046, "requested_sparsity": 0.5}}
    runs.append(r)  # a plain run at a fixed sparsity: a one-point series on the sparsity figure
    for q, bits, a, dec in (("int8", 8.05, 84, 470), ("nf4", 4.14, 77, 400), ("fp4", 4.14, 70, 400)):
        r = infer_run(f"infer-bits-{q}", [{"name": q}], dec=dec, probe=probe(a))
        r["spec"]["sweep"] = {"id": "infer-bits", "axis": "technique", "value": q, "aggressive": "lower"}
        r["technique_records"] = {q: {"bits_per_weight": bits}}
        r["metrics"]["weight_bytes"] = {"value": 513 * 2**20 * bits / 32, "unit": "B", "higher_is_better": False}
        runs.append(r)
    runs[0]["metrics"]["weight_bytes"] = {"value": 513 * 2**20, "unit": "B", "higher_is_better": False}
    for r in runs:  # four choices per probe item, as real runs record it
        r["metrics"]["probe_acc"]["chance"] = 0.25
    fts = [finetune_run()]
    for i, rr in enumerate([2, 4, 8, 16, 32, 64]):
        items = [1.0] * (30 + i * 2) + [0.0] * (70 - i * 2)
        r = finetune_run(
            f"finetune-lora-r{rr}",
            [{"name": "lora", "params": {"r": rr}}],
            items=items,
            tps=1500 - 10 * rr,
            curve_acc=(0.1, 0.2, 0.3 + 0.01 * i),
        )
        r["spec"]["sweep"] = {"id": "finetune-lora", "axis": "lora.r", "value": rr, "aggressive": "lower"}
        fts.append(r)
    for i in range(8):
        fts.append(
            finetune_run(
                f"finetune-x{i}",
                [{"name": "grad_ckpt", "params": {"every_n_layers": i + 1}}],
                tps=900 + 20 * i,
                curve_acc=(0.1, 0.2 + 0.01 * i, 0.4),
            )
        )
    pr = []

    def noisy(r):
        r["spec"]["task"] = r["data"]["task"] = "arith-noisy"
        return r

    pn = noisy(finetune_run("prune-none", [{"name": "lora", "params": {"r": 16}}], items=[1.0] * 40 + [0.0] * 60))
    pr.append(pn)
    for f, a in ((0.3, 30), (0.5, 38), (0.7, 40), (0.9, 41)):
        r = noisy(
            finetune_run(
                f"prune-perplexity-fraction{f}",
                [{"name": "perplexity", "params": {"fraction": f}}, {"name": "lora", "params": {"r": 16}}],
                items=[1.0] * a + [0.0] * (100 - a),
                n_train_kept=int(64 * f),
                tps=1500,
            )
        )
        r["technique_records"] = {"pruning": {"strategies": ["perplexity"], "kept_fraction": f}}
        r["spec"]["sweep"] = {
            "id": "prune-perplexity",
            "axis": "perplexity.fraction",
            "value": f,
            "aggressive": "lower",
        }
        pr.append(r)
    return make_set(runs + fts + pr, suite=suite)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    write(sweep_set(), folder)
