"""The measured roofline: `effbench ceiling` (effbench.child.ceiling) times matmuls and a large copy
on this device; effbench.read.roofline places each run's prefill, decode and training figures on
it. Measurements against their formulas, the read side against hand-computed cases, and the
ceiling in a smoke suite's result set and summary."""

from __future__ import annotations

import itertools
import json
import statistics

import pytest
import torch

from effbench import runspec
from effbench.child import ceiling
from effbench.child.workloads import flops
from effbench.cli.main import main as cli
from effbench.read import results, roofline, schema
from effbench.render import report
from tests._resultsets import infer_run, make_set


def test_matmul_ceiling_is_2n3_over_the_median_time():
    r = ceiling.matmul_flops("cpu", "float32", sizes=(64, 128), min_s=0.0, max_reps=5)
    for n, s in r["sizes"].items():
        assert 3 <= len(s["samples"]) <= 5
        secs = [2 * int(n) ** 3 / x for x in s["samples"]]
        assert s["flops_per_s"] == pytest.approx(2 * int(n) ** 3 / statistics.median(secs))
    assert r["value"] == max(s["flops_per_s"] for s in r["sizes"].values()) and r["size"] in (64, 128)
    with pytest.raises(ValueError, match=r"int3.*valid: \['bfloat16', 'float16', 'float32'\]"):
        ceiling.matmul_flops("cpu", "int3")


def test_copy_bandwidth_counts_read_and_write():
    r = ceiling.copy_bandwidth("cpu", nbytes=4 * 2**20, min_s=0.0, max_reps=4)
    secs = [2 * 4 * 2**20 / x for x in r["samples"]]
    assert r["value"] == pytest.approx(2 * 4 * 2**20 / statistics.median(secs)) and r["bytes"] == 4 * 2**20


def test_the_ceiling_record_is_what_the_schema_accepts():
    rec = ceiling.measure("cpu", ["float32"], quick=True)
    assert not schema.problems(rec, schema.Ceiling)
    assert rec["quick"] and rec["threads"] == torch.get_num_threads() and "reason" in rec["table"]
    bad = {**rec, "bandwidth": {**rec["bandwidth"], "value": -1.0}}
    assert any(p.startswith("bandwidth.value") for p in schema.problems(bad, schema.Ceiling))


@pytest.mark.parametrize(
    "achieved,intensity,bound,frac",
    [
        (5.0, 1.0, "memory", 0.5),  # roof 1 x 10 = 10
        (2.0, 1.0, "overhead", 0.2),
        (80.0, 100.0, "compute", 0.8),  # roof min(100, 1000) = 100
        (25.0, 100.0, "overhead", 0.25),
        (12.0, 1.0, "memory", 1.2),  # above the roof: shown as it is, not clipped
    ],
)
def test_place_on_a_hand_made_roofline(achieved, intensity, bound, frac):
    r = roofline.place(achieved, intensity, peak=100.0, bandwidth=10.0)
    assert r["ridge"] == 10.0 and r["bound"] == bound and r["fraction"] == pytest.approx(frac)


def _infer_run(**metrics) -> dict:
    m = {
        "weight_bytes": {"value": 1000.0, "unit": "B"},
        "kv_cache_bytes_per_token": {"value": 10.0, "unit": "B"},
        "forward_matmul_flops_per_token": {
            "value": 2.0 * 150,
            "unit": "FLOP/token",
            "parts": {"body_matmul_weights": 100, "head_matmul_weights": 50, "layers": 2, "attn_width": 4},
        },
        "decode_tokens_per_s.b2": {"value": 8.0, "unit": "tokens/s", "higher_is_better": True},
        "prefill_tokens_per_s.b2": {
            "value": 40.0,
            "unit": "tokens/s",
            "higher_is_better": True,
            "method": "batch 2 x 8 prompt tokens / median prefill time, last position's logits only",
        },
        **metrics,
    }
    r = infer_run("infer-x")
    r["spec"]["budget"] = {"prompt_len": 8, "decode_tokens": 3}
    r["metrics"] = m
    return r


def test_infer_figures_by_hand():
    figs, why = roofline.figures(_infer_run())
    assert not why
    got = {name: (a, i) for name, a, i in figs}
    # decode: mean context c = 8 + (3 + 1) / 2 = 10; per token 2*150 + 4*2*10*4 = 620 FLOPs;
    # per step (batch 2) 1240 FLOPs over 1000 + 2 * 11 * 10 = 1220 bytes
    assert got["decode b2"] == pytest.approx((8.0 * 620, 1240 / 1220))
    # prefill: 2*8 tokens x (2*100 + 4*2*8*4) = 7296, + the head once per sequence (2*50*2) = 7496
    # FLOPs, over 1000 + 16 * 10 bytes; 40 tokens/s of 16 tokens
    assert got["prefill b2"] == pytest.approx((40.0 * 7496 / 16, 7496 / 1160))
    run = _infer_run()
    run["metrics"]["prefill_tokens_per_s.b2"]["method"] = "logits at every position (no logits_to_keep)"
    got = {name: (a, i) for name, a, i in roofline.figures(run)[0]}
    assert got["prefill b2"][1] == pytest.approx((7296 + 2 * 50 * 16) / 1160)  # the head at all 16 positions


def test_finetune_figure_by_hand():
    run = {
        "id": "ft",
        "status": "ok",
        "spec": {"id": "ft", "scenario": "finetune", "device": "cpu"},
        "metrics": {
            k: {"value": v}
            for k, v in {
                "train_executed_flops_per_token": 600.0,
                "train_tokens_per_s": 10.0,
                "train_tokens": 400.0,
                "steps": 4.0,
                "weight_bytes": 100.0,
                "grad_bytes": 50.0,
                "optimizer_state_bytes": 100.0,
            }.items()
        },
    }
    ((name, achieved, intensity),) = roofline.figures(run)[0]
    assert name == "train step" and achieved == 6000.0
    assert intensity == pytest.approx(600 * 100 / (200 + 100 + 200))


def test_a_run_without_counts_says_why():
    run = _infer_run()
    del run["metrics"]["forward_matmul_flops_per_token"]
    figs, why = roofline.figures(run)
    assert figs == [] and "no forward FLOP count" in why


def test_read_and_run_sides_agree_on_the_matmul_dtype():
    for scen, dev, dt in itertools.product(
        ("finetune", "infer"), ("cpu", "cuda"), (None, "float32", "bfloat16", "float16")
    ):
        spec = runspec.RunSpec(id="x", scenario=scen, device=dev, dtype=dt)
        assert roofline.matmul_dtype(spec.to_dict()) == runspec.matmul_dtype(spec), (scen, dev, dt)


def test_forward_shape_of_the_tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    s = flops.forward_shape(model, torch.bfloat16)
    per_layer = 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48  # q, k and v (2 kv heads of 8), o, mlp
    assert s["body_matmul_weights"] == 2 * per_layer and s["head_matmul_weights"] == 64 * 32
    assert s["kv_bytes_per_token"] == 2 * 2 * (2 * 8) * 2  # keys + values, 2 layers, 2 heads x 8, bf16
    assert (s["layers"], s["attn_width"]) == (2, 32)
    with pytest.raises(ValueError, match="no transformers config"):
        flops.forward_shape(torch.nn.Linear(2, 2), torch.float32)


def _set_with_ceiling() -> dict:
    rs = make_set([_infer_run()])
    rs["ceiling"] = {
        "device": "cpu",
        "threads": 2,
        "matmul": {"float32": {"value": 1000.0, "size": 512}},
        "bandwidth": {"value": 100.0, "bytes": 2**28},
    }
    return rs


def test_summary_shows_the_roofline_and_older_sets_say_why_not():
    rs = _set_with_ceiling()
    rows, why = roofline.rows(rs)
    assert not why and [r["figure"] for r in rows] == ["decode b2", "prefill b2"]
    assert {r["bound"] for r in rows} <= set(roofline.BOUNDS)
    md = report.summary_markdown(rs)
    assert "## Roofline" in md and "matmul float32: 0.0 GFLOP/s" in md and "ridge 10.0 FLOP/B" in md
    old = make_set([_infer_run()])
    assert "Roofline not measured: this result set records no measured ceiling" in report.summary_markdown(old)


def test_a_corrupt_ceiling_is_refused_where_it_is(tmp_path):
    rs = _set_with_ceiling()
    rs["ceiling"]["matmul"]["float32"]["value"] = "fast"
    results.write_json_atomic(tmp_path / "results.json", rs)
    with pytest.raises(results.ResultError, match=r"ceiling\.matmul\.float32\.value"):
        results.load(tmp_path)


def test_cli_ceiling_prints_and_writes_the_record(tmp_path, capsys):
    assert cli(["ceiling", "--quick", "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "matmul float32:" in out and "copy bandwidth:" in out
    assert not schema.problems(json.loads((tmp_path / "c.json").read_text()), schema.Ceiling)
    assert cli(["ceiling", "--dtype", "int3"]) == 2
    assert "int3" in capsys.readouterr().err


def test_a_bad_ceiling_setting_is_refused_before_any_run(tmp_path):
    from effbench.run import suites

    p = tmp_path / "s.toml"
    p.write_text('[suite]\nname = "s"\nceiling = "always"\n[[run]]\nid = "a"\nscenario = "infer"\n')
    with pytest.raises(runspec.ConfigError, match=r"ceiling='always'; valid: \['full', 'quick', 'none'\]"):
        suites.load_suite(str(p))
