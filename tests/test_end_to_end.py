"""End to end through child processes: the smoke suite, determinism, and crash isolation."""

from __future__ import annotations

import pytest

from effbench import cli
from effbench.read import results, roofline


def _only(rs):
    return {r["id"]: r for r in rs["runs"]}


@pytest.fixture(scope="module")
def smoke(smoke_serial):
    return smoke_serial  # one serial smoke run per session (conftest), shared with test_scale_out


def test_smoke_suite_runs_every_technique(smoke):
    code, rs, folder = smoke
    bad = [(r["id"], r["status"], r.get("error")) for r in rs["runs"] if r["status"] not in ("ok", "skipped")]
    assert not bad and code == 0
    for r in rs["runs"]:
        if r["status"] == "skipped":
            assert r["reason"], r["id"]
            continue
        assert r["model"]["weights_sha256"] and r["data"]["eval_sha256"] and r["env"]["libraries"]["torch"]
        assert r["setup"]["wall_s"] >= 0
        if r["spec"]["scenario"] == "finetune":
            m = r["metrics"]
            assert m["steps"]["value"] >= 1 and len(m["train_tokens_per_s"]["samples"]) >= 1
            assert len(r["items"]["arith.exact_match"]) == m["accuracy"]["n"]
            assert r["curves"]["accuracy_vs_time"][0]["step"] == 0
        else:
            m = r["metrics"]
            assert m["prefill_tokens_per_s.b1"]["value"] > 0 and m["weight_bytes"]["value"] > 0
            assert len(r["items"]["probe.acc"]) == m["probe_acc"]["n"]
    summary = (folder / "summary.md").read_text()
    assert "## Fine-tuning" in summary and "## Inference" in summary
    # the ceiling was measured before the runs, and every ok run is on the roofline
    assert rs["ceiling"]["device"] == "cpu" and rs["ceiling"]["matmul"]["float32"]["value"] > 0
    rows, why = roofline.rows(rs)
    placed = {r["run"] for r in rows if "bound" in r}
    ok_runs = {r["spec"]["group"] for r in rs["runs"] if r["status"] == "ok"}
    assert not why and placed == ok_runs, (why, ok_runs - placed, [r for r in rows if "reason" in r][:3])
    assert "## Roofline" in summary and (folder / "ceiling.log.gz").is_file()


def test_baseline_kld_against_itself_is_zero(smoke):
    r = _only(smoke[1])["infer-baseline"]
    assert r["metrics"]["kld_mean"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert r["metrics"]["top1_agreement"]["value"] == 1.0


def test_same_suite_twice_gives_identical_quality_and_hashes(smoke, tmp_path):
    code = cli.main(
        [
            "run",
            "--suite",
            "smoke",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--only",
            "finetune-full",
            "infer-baseline",
        ]
    )
    assert code == 0
    again = _only(results.load(next((tmp_path / "smoke").iterdir())))
    first = _only(smoke[1])
    for rid in ("finetune-full", "infer-baseline"):
        a, b = first[rid], again[rid]
        assert a["model"]["weights_sha256"] == b["model"]["weights_sha256"]
        assert a["data"] == b["data"]
        assert a["items"] == b["items"]
        for k in ("accuracy", "final_loss", "perplexity", "probe_acc", "kld_mean"):
            if k in a["metrics"]:
                assert a["metrics"][k]["value"] == b["metrics"][k]["value"], k
        assert a["curves"].get("loss") == b["curves"].get("loss")


def test_a_crashing_run_does_not_lose_the_others(tmp_path):
    suite = tmp_path / "crash.toml"
    suite.write_text("""
[suite]
name = "crash"
model = "tiny"
ceiling = "none"
[defaults.infer]
batch_sizes = [1]
prompt_len = 8
decode_tokens = 2
repeats = 1
quality = false
[[run]]
id = "bad"
scenario = "finetune"
budget = {n_eval = 20000, max_steps = 1}
[[run]]
id = "good"
scenario = "infer"
""")
    code = cli.main(["run", "--suite", str(suite), "--device", "cpu", "--out", str(tmp_path / "out")])
    whole = results.load(next((tmp_path / "out" / "crash").iterdir()))
    rs = _only(whole)
    assert code == 1
    assert whole["ceiling_missing"] == "suite 'crash' ran with ceiling = \"none\""  # not "predates"
    assert rs["bad"]["status"] == "failed" and "n_eval" in rs["bad"]["error"]
    assert rs["good"]["status"] == "ok" and rs["good"]["metrics"]["decode_tokens_per_s.b1"]["value"] > 0
