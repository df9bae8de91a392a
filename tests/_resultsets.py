"""Hand-built result sets for the compare and plot tests: valid per results.validate_set, shaped
like a smoke-suite set (a finetune run with an accuracy curve, an infer run), with known numbers."""

from __future__ import annotations

import copy

import numpy as np

from effbench.read import results

W_SHA = "a" * 64
DATA = {"task": "arith", "n_train": 64, "n_eval": 100, "train_sha256": "b" * 64, "eval_sha256": "c" * 64}


def spec(rid: str, scenario: str, techniques=()) -> dict:
    return {
        "id": rid,
        "scenario": scenario,
        "model": "tiny",
        "task": "arith",
        "techniques": [dict(t) for t in techniques],
        "budget": {"max_steps": 4},
        "seed": 0,
        "device": "cpu",
        "dtype": None,
        "text": None,
        "timeout_s": 3600,
        "group": rid,
        "replicate": 0,
        "threads": None,
        "timing_only": False,
    }


def timing(value_scale: float, n: int, seed: int, unit="tokens/s", hib=True, cv=0.01) -> dict:
    s = list(value_scale * np.random.default_rng(seed).lognormal(0, cv, n))
    return {"value": float(np.median(s)), "unit": unit, "higher_is_better": hib, "samples": s}


def acc(items: list[float]) -> dict:
    v = float(np.mean(items))
    return {
        "value": v,
        "stderr": float(np.sqrt(v * (1 - v) / len(items))),
        "n": len(items),
        "unit": "fraction",
        "higher_is_better": True,
    }


def finetune_run(
    rid="finetune-full",
    techniques=(),
    items=None,
    tps=1000.0,
    peak=800 * 2**20,
    seed=1,
    n_train_kept=None,
    curve_acc=(0.1, 0.3, 0.5),
) -> dict:
    items = items if items is not None else [1.0] * 50 + [0.0] * 50
    r = results.new_run(rid, spec(rid, "finetune", techniques))
    r["model"] = {"name": "tiny", "weights_sha256": W_SHA}
    r["data"] = dict(DATA, **({"n_train_kept": n_train_kept, "train_kept_sha256": "d" * 64} if n_train_kept else {}))
    r["env"] = {"device": "cpu", "device_name": "Test CPU", "torch_threads": 2, "cpu_count": 2}
    r["setup"] = {"wall_s": 1.0, "per_technique": {}}
    r["metrics"] = {
        "train_tokens_per_s": timing(tps, 10, seed),
        "accuracy": acc(items),
        "accuracy_unmodified": acc([0.0] * 100),
        "train_wall_s": {"value": 10.0, "unit": "s", "higher_is_better": False, "samples": [1.0] * 10},
        "peak_rss_bytes": {"value": peak, "unit": "B", "higher_is_better": False},
        "weight_bytes": {"value": 12_952_896, "unit": "B", "higher_is_better": False},
        "final_loss": {"value": 2.5, "unit": "nats", "higher_is_better": False},
        "steps": {"value": 4, "unit": "steps"},
        "mfu": {"value": None, "reason": "CUDA only"},
    }
    r["items"] = {"arith.exact_match": items, "arith.exact_match.unmodified": [0.0] * 100}
    r["curves"] = {
        "accuracy_vs_time": [
            {"step": 2 * i, "train_wall_s": 5.0 * i, "train_tokens": 100 * i, "accuracy": a, "stderr": 0.05, "n": 100}
            for i, a in enumerate(curve_acc)
        ],
        "loss": [3, 2.5],
    }
    return r


def infer_run(rid="infer-baseline", techniques=(), dec=500.0, seed=2, probe=None) -> dict:
    probe = probe if probe is not None else [1.0, 0.0, 0.0, 0.0] * 10
    r = results.new_run(rid, spec(rid, "infer", techniques))
    r["model"] = {"name": "tiny", "weights_sha256": W_SHA}
    r["data"] = dict(DATA, probe_sha256="e" * 64, reftext={"sha256": "f" * 64})
    r["env"] = {"device": "cpu", "device_name": "Test CPU", "torch_threads": 2, "cpu_count": 2}
    r["metrics"] = {
        "decode_tokens_per_s.b1": timing(dec, 6, seed),
        "decode_tokens_per_s.b8": timing(4 * dec, 6, seed + 1),
        "speed_wall_s": {"value": 1.0, "unit": "s", "higher_is_better": False},
        "peak_rss_bytes": {"value": 700 * 2**20, "unit": "B", "higher_is_better": False},
        "perplexity": {"value": 40.0, "unit": "ppl", "higher_is_better": False, "samples": [3.6, 3.8]},
        "probe_acc": acc(probe),
    }
    r["items"] = {"probe.acc": probe}
    return r


def make_set(runs: list, suite="smoke", device_name="Test CPU", sha="0" * 40) -> dict:
    rs = {
        "schema": results.SET_SCHEMA,
        "suite": suite,
        "description": "test",
        "created_utc": "2026-01-01T00:00:00Z",
        "git": {"sha": sha, "dirty": False},
        "env": {"device": "cpu", "device_name": device_name},
        "price_per_hour": 0.10,
        "price_source": "test",
        "target": {"fraction": 0.9, "reference": "finetune-full"},
        "runs": copy.deepcopy(runs),
    }
    return results.validate_set(rs, "test set")


def write(rs: dict, folder) -> str:
    results.write_json_atomic(folder / "results.json", rs)
    return str(folder)


# Sample names and counts as real default-model runs store them (results/cpu*/…/results.json):
# 100 training steps with 2 warm-up steps -> 98 tokens/s samples; 3 repeats x 32 decode tokens ->
# 96 per-token latencies and 3 decode/prefill throughputs per batch size.
REAL_SHAPE = {
    "train_tokens_per_s": (98, "tokens/s", True),
    "prefill_tokens_per_s.b1": (3, "tokens/s", True),
    "decode_tokens_per_s.b1": (3, "tokens/s", True),
    "decode_latency_p50_ms.b1": (96, "ms", False),
    "decode_tokens_per_s.b8": (3, "tokens/s", True),
    "decode_latency_p50_ms.b8": (96, "ms", False),
}


def replicated(
    run: dict,
    n: int,
    seed: int,
    drift_cv: float = 0.03,
    step_cv: float = 0.02,
    shift: float = 1.0,
    seeds=(0,),
    quality_replicates: int = 1,
) -> list[dict]:
    """`n` replicates per seed of `run`: each replicate's timings move together by a run-level factor
    (lognormal, `drift_cv`) with per-sample noise `step_cv` inside; `shift` scales every time
    (shift 1.1: 10% slower, throughputs / 1.1). Replicates >= quality_replicates are timing only."""
    rng = np.random.default_rng(seed)
    out = []
    for s in seeds:
        for i in range(n):
            r = copy.deepcopy(run)
            g = run["id"]
            r["id"] = g if (s, i) == (seeds[0], 0) else f"{g}@s{s}r{i}"
            r["spec"].update(group=g, replicate=i, seed=s, timing_only=i >= quality_replicates)
            f = shift * rng.lognormal(0, drift_cv)
            for name, (k, unit, hib) in REAL_SHAPE.items():
                if name in r["metrics"]:
                    base = r["metrics"][name]["value"]
                    samp = base * (1 / f if hib else f) * rng.lognormal(0, step_cv, k)
                    r["metrics"][name] = {
                        "value": float(np.median(samp)),
                        "unit": unit,
                        "higher_is_better": hib,
                        "samples": list(map(float, samp)),
                    }
            if r["spec"]["timing_only"]:
                r["items"] = {}
                for name in ("accuracy", "probe_acc", "accuracy_unmodified"):
                    if name in r["metrics"]:
                        r["metrics"][name] = {"value": None, "reason": "timing-only replicate"}
            out.append(r)
    return out


def real_infer(rid="infer-baseline", techniques=(), dec=26.0, probe=None) -> dict:
    """An infer run with the real sample counts of REAL_SHAPE."""
    r = infer_run(rid, techniques, probe=probe)
    r["metrics"].update(
        {
            name: timing(dec * (1 if unit == "tokens/s" else 1.5), k, 0, unit, hib)
            for name, (k, unit, hib) in REAL_SHAPE.items()
            if name != "train_tokens_per_s"
        }
    )
    return r


def real_finetune(rid="finetune-full", techniques=(), items=None) -> dict:
    r = finetune_run(rid, techniques, items=items)
    r["metrics"]["train_tokens_per_s"] = timing(127.0, 98, 0)
    del r["metrics"]["train_wall_s"]["samples"]  # fresh runs keep step times under step_s, not samples
    r["metrics"]["train_wall_s"]["step_s"] = [1.0] * 100
    return r
