"""Each run on the device's measured roofline: the FLOP/s it achieved, its arithmetic intensity,
its fraction of the ceiling at that intensity, and what bounds it.

The ceiling is the result set's `ceiling` (effbench.child.ceiling, measured on the suite's device
before its runs): P, the matmul FLOP/s at the run's matmul dtype, and B, the bandwidth of a large
copy. A figure of intensity I (FLOPs per byte of memory traffic) can reach at most
min(P, I x B); the ridge P / B separates the two roofs.

FLOPs per figure, with F = forward_matmul_flops_per_token split into its body and output-head
parts (flops.forward_shape), L layers, attention width a, prompt length p, d decode steps, batch b:

- decode at batch b: per token 2 x (body + head) + 4 x L x c x a, with c = p + (d + 1) / 2 the
  mean context a step attends to; per step b tokens.
- prefill at batch b: per token 2 x body + 4 x L x p x a (the full p x p score matrix, as
  torch.utils.flop_counter counts it), plus the head once per sequence where the prefill keeps
  only the last position's logits (every position otherwise).
- a fine-tuning step: train_executed_flops_per_token x the mean tokens per step.

Bytes are the least traffic the figure must move, each tensor once: decode reads every weight
and the KV cache (b x c x kv bytes per token) and writes the new keys and values; prefill reads
the weights and writes the prompt's KV cache; a training step reads the weights in forward and
backward (2 x weight_bytes), writes and reads the gradients and reads and writes the optimizer
state. Activations are left out, so I is an upper bound on the true intensity, the roof at I is
an upper bound on what the figure could reach, and the fraction is a lower bound on how close it
came. Bound: below OVERHEAD_BELOW of the roof the figure is `overhead`-bound (neither roof
explains its time: kernel launches, Python, unfused small ops, traffic the count leaves out);
otherwise `memory` where I < ridge, `compute` where I >= ridge.
"""

from __future__ import annotations

import math

from effbench.read import replicates

OVERHEAD_BELOW = 0.3  # fraction of the roof under which a figure is called overhead-bound
BOUNDS = ("compute", "memory", "overhead")


def _value(run: dict, name: str):
    v = (run.get("metrics", {}).get(name) or {}).get("value")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def matmul_dtype(spec: dict) -> str:
    """effbench.runspec.matmul_dtype on a spec as a result file holds it (a dict)."""
    device = spec.get("device", "cpu")
    if spec.get("scenario") == "finetune" and device == "cuda":
        return "bfloat16"
    return spec.get("dtype") or ("bfloat16" if device == "cuda" and spec.get("scenario") != "finetune" else "float32")


def roof(ceiling: dict, dtype: str) -> tuple[float | None, float | None, str]:
    """(P, B, why): the measured matmul FLOP/s at `dtype` and copy bandwidth; None with the reason."""
    mm = (ceiling.get("matmul") or {}).get(dtype) or {}
    p, b = mm.get("value"), (ceiling.get("bandwidth") or {}).get("value")
    if not p:
        return None, b, f"no {dtype} matmul ceiling measured (measured: {sorted(ceiling.get('matmul') or {})})"
    if not b:
        return p, None, "no bandwidth ceiling measured"
    return float(p), float(b), ""


def place(achieved: float, intensity: float, peak: float, bandwidth: float) -> dict:
    """A figure on the roofline: its roof min(P, I x B), fraction of it, and bound."""
    ridge = peak / bandwidth
    attainable = min(peak, intensity * bandwidth)
    frac = achieved / attainable
    bound = "overhead" if frac < OVERHEAD_BELOW else ("memory" if intensity < ridge else "compute")
    return {
        "achieved_flops_per_s": achieved,
        "intensity": intensity,
        "ridge": ridge,
        "attainable_flops_per_s": attainable,
        "fraction": frac,
        "bound": bound,
    }


def _infer_figures(run: dict) -> tuple[list[tuple[str, float, float]], str]:
    """(figure, achieved FLOP/s, intensity) for each prefill and decode batch of an infer run."""
    m = run.get("metrics", {})
    fwd = m.get("forward_matmul_flops_per_token") or {}
    parts = fwd.get("parts") or {}
    wbytes, kv = _value(run, "weight_bytes"), _value(run, "kv_cache_bytes_per_token")
    if not parts or wbytes is None or kv is None:
        return [], fwd.get("reason") or "no forward FLOP count in this run (measured before effbench counted them)"
    b_ = run["spec"].get("budget") or {}
    p, d = b_.get("prompt_len"), b_.get("decode_tokens")
    if not (isinstance(p, int) and isinstance(d, int)):
        return [], "the run's budget names no prompt_len / decode_tokens"
    body, head = float(parts["body_matmul_weights"]), float(parts["head_matmul_weights"])
    layers, width = float(parts["layers"]), float(parts["attn_width"])
    out = []
    for name in sorted(m, key=lambda n: (n.split(".b")[0], int(n.rsplit(".b", 1)[1]) if ".b" in n else 0)):
        kind, _, bs = name.partition(".b")
        if kind not in ("prefill_tokens_per_s", "decode_tokens_per_s") or not bs.isdigit():
            continue
        rate, b = _value(run, name), int(bs)
        if not rate:
            continue
        if kind == "decode_tokens_per_s":
            c = p + (d + 1) / 2
            per_tok = 2 * (body + head) + 4 * layers * c * width
            step_bytes = wbytes + b * (c + 1) * kv
            out.append((f"decode b{b}", rate * per_tok, b * per_tok / step_bytes))
        else:
            last_only = "last position" in ((m.get(name) or {}).get("method") or "")
            flops = b * p * (2 * body + 4 * layers * p * width) + 2 * head * b * (1 if last_only else p)
            out.append((f"prefill b{b}", rate * flops / (b * p), flops / (wbytes + b * p * kv)))
    return out, ""


def _train_figures(run: dict) -> tuple[list[tuple[str, float, float]], str]:
    f, rate = _value(run, "train_executed_flops_per_token"), _value(run, "train_tokens_per_s")
    tokens, steps = _value(run, "train_tokens"), _value(run, "steps")
    wbytes = _value(run, "weight_bytes")
    grads, opt = _value(run, "grad_bytes") or 0.0, _value(run, "optimizer_state_bytes") or 0.0
    if not (f and rate and tokens and steps and wbytes):
        why = (run.get("metrics", {}).get("train_executed_flops_per_token") or {}).get("reason")
        return [], why or "no executed-FLOP count or training speed in this run"
    step_flops = f * tokens / steps
    return [("train step", f * rate, step_flops / (2 * wbytes + 2 * grads + 2 * opt))], ""


def figures(run: dict) -> tuple[list[tuple[str, float, float]], str]:
    if run.get("status") != "ok":
        return [], f"run {run.get('status')}"
    scen = run["spec"].get("scenario")
    return _train_figures(run) if scen == "finetune" else _infer_figures(run)


def rows(rs: dict) -> tuple[list[dict], str]:
    """Every representative run's figures on the set's ceiling, or [] and why there are none."""
    ceiling = rs.get("ceiling")
    if not ceiling:
        why = "this result set records no measured ceiling (it predates effbench ceiling, or its suite measured none)"
        return [], rs.get("ceiling_missing") or why
    out = []
    for run in replicates.representatives(rs):
        if run["spec"].get("device", "cpu") != ceiling.get("device"):
            continue
        figs, why = figures(run)
        dtype = matmul_dtype(run["spec"])
        peak, bw, why_roof = roof(ceiling, dtype)
        for name, achieved, intensity in figs:
            row = {"run": run["id"], "figure": name, "dtype": dtype}
            if peak and bw and achieved > 0 and intensity > 0:
                row.update(place(achieved, intensity, peak, bw))
            else:
                row["reason"] = why_roof or "nothing achieved"
            out.append(row)
    return out, ""
