"""`finetune`: causal-LM fine-tuning on the task's train split, loss on the answer tokens only.

AdamW (or a technique's optimizer), constant learning rate after a linear warm-up, seeded batch
order, bf16 autocast on CUDA and fp32 on CPU. Training stops at the first of: `max_steps`, the
`train_tokens` budget, or `epochs` passes. Every `eval_every` steps the clock pauses and the eval
split is scored through lm-eval, giving the accuracy-vs-training-time curve; the final evaluation
uses the whole eval split and keeps per-item correctness for paired comparisons.
"""

from __future__ import annotations

import math
import random
import time

import torch

from effbench.child import measure
from effbench.child.log import log
from effbench.child.workloads import flops
from effbench.child.workloads.common import (
    collate,
    encode,
    grad_bytes,
    logical_numel,
    optimizer_state_bytes,
    weight_bytes,
)
from effbench.tasks import lmeval


def evaluate_accuracy(model, tokenizer, examples, device: str, batch_size: int, seed: int) -> dict:
    task_dir, sha = lmeval.write_arith(examples)
    r = lmeval.evaluate(model, tokenizer, lmeval.ARITH_TASK, task_dir, device, batch_size=batch_size, seed=seed)
    return {
        "value": r["exact_match"]["value"],
        "stderr": r["exact_match"]["stderr"],
        "n": r["exact_match"]["n"],
        "items": r["items"]["exact_match"],
        "data_sha256": sha,
    }


def flop_metrics(
    model, pairs, pad_id: int, device: str, step_tokens: list[int], batch_size: int, tokens_per_s: float | None
) -> dict:
    """train_flops_per_token (the model's, full fine-tuning's count), train_executed_flops_per_token
    (what this run's step runs: frozen weights, adapters, recomputation) and mfu from the latter."""
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "num_hidden_layers"):
        why = f"no transformers config on {type(model).__name__}: layers and widths unknown"
        return {k: measure.missing(why) for k in ("train_flops_per_token", "train_executed_flops_per_token", "mfu")}
    seq_len = sum(step_tokens) / max(1, len(step_tokens)) / batch_size  # mean non-pad tokens per sequence
    probe = collate(pairs[:1], pad_id, device)["input_ids"]
    f = flops.per_token(flops.census(model, probe), cfg, seq_len)
    peak, why = measure.peak_flops(device)
    out = {
        "train_flops_per_token": {
            "value": f["model"],
            "unit": "FLOP/token",
            "parts": f["model_parts"],
            "method": "6N + 12*L*seq*a: N every matmul weight incl. the output head (full fine-tuning)",
        },
        "train_executed_flops_per_token": {
            "value": f["executed"],
            "unit": "FLOP/token",
            "parts": f["executed_parts"],
            "method": "matmul FLOPs this run executes per token: forward + input and weight "
            "gradients where needed + recomputed forward (effbench.child.workloads.flops)",
        },
    }
    out["mfu"] = (
        {
            "value": f["executed"] * tokens_per_s / peak,
            "unit": "fraction",
            "higher_is_better": True,
            "method": f"train_executed_flops_per_token x train_tokens_per_s / {why}",
        }
        if (peak and tokens_per_s)
        else measure.missing(why if not peak else "no training speed measured")
    )
    return out


def _n_steps(b, n_examples: int) -> int:
    if b.epochs is not None:
        return max(1, min(b.max_steps, math.ceil(b.epochs * n_examples / b.batch_size)))
    return b.max_steps


def run(model, tokenizer, data, spec, budget, ctx, techniques, quality: bool = True) -> dict:
    """`quality=False` (random-weight `arch:` models): no evaluations, accuracy recorded as missing."""
    device, b = spec.device, budget
    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    pairs = encode(tokenizer, data.train)
    if not pairs:
        raise ValueError("the train split is empty (did data pruning remove everything?)")
    pad_id = tokenizer.pad_token_id
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters after applying the techniques")
    opt = None
    for t in techniques:
        opt = t.make_optimizer(params, ctx) or opt
    opt = opt or torch.optim.AdamW(params, lr=b.lr, weight_decay=0.0)
    for g in opt.param_groups:
        g["lr"] = b.lr
    n_steps = _n_steps(b, len(pairs))
    # bf16 autocast on CUDA over fp32 master weights; plain fp32 on CPU.
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    )

    order: list[int] = []
    mem = measure.Memory(device)
    energy = measure.Energy(device)
    curve, losses, step_s, step_tokens = [], [], [], []
    train_wall, tokens_seen, eval_s = 0.0, 0, 0.0
    eval_subset = data.eval[: b.eval_limit] if b.eval_limit else data.eval

    def checkpoint(step):
        nonlocal eval_s
        if not quality:
            return
        t0 = time.perf_counter()
        r = evaluate_accuracy(model, tokenizer, eval_subset, device, b.eval_batch_size, spec.seed)
        eval_s += time.perf_counter() - t0
        curve.append(
            {
                "step": step,
                "train_wall_s": train_wall,
                "train_tokens": tokens_seen,
                "accuracy": r["value"],
                "stderr": r["stderr"],
                "n": r["n"],
            }
        )
        loss = f", loss {sum(losses[-5:]) / len(losses[-5:]):.3f}" if losses else ""
        log(
            f"step {step}/{n_steps}: accuracy {100 * r['value']:.1f}% on {r['n']} items{loss}, {train_wall:.0f}s trained"
        )

    checkpoint(0)
    model.train()
    mem.reset()
    segment_peaks: list[dict] = []
    with energy:
        for step in range(1, n_steps + 1):
            if b.train_tokens is not None and tokens_seen >= b.train_tokens:
                break
            idx = []
            while len(idx) < b.batch_size:
                if not order:
                    order = list(range(len(pairs)))
                    rng.shuffle(order)
                idx.append(order.pop())
            batch = collate([pairs[i] for i in idx], pad_id, device)
            for g in opt.param_groups:
                g["lr"] = b.lr * min(1.0, step / max(1, b.warmup_steps))
            measure.sync(device)
            t0 = time.perf_counter()
            with autocast:
                out = model(**batch)
            out.loss.backward()
            if step == 1:
                gbytes = grad_bytes(model)
            opt.step()
            opt.zero_grad(set_to_none=True)
            measure.sync(device)
            dt = time.perf_counter() - t0
            ntok = int(batch["attention_mask"].sum())
            train_wall += dt
            tokens_seen += ntok
            step_s.append(dt)
            step_tokens.append(ntok)
            losses.append(float(out.loss.detach()))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"training loss became {losses[-1]} at step {step}")
            if step % b.eval_every == 0 and step != n_steps:
                # Evaluations lie outside the memory and energy regions, as they lie outside train_wall_s.
                segment_peaks.append(mem.read())
                energy.pause()
                model.eval()
                checkpoint(step)
                model.train()
                mem.reset()
                energy.resume()
    segment_peaks.append(mem.read())
    peak = {k: (max(p[k] for p in segment_peaks) if k != "method" else segment_peaks[-1][k]) for k in segment_peaks[-1]}
    log(f"trained {len(losses)} steps, {tokens_seen} tokens in {train_wall:.0f}s; final evaluation")
    model.eval()
    no_quality = f"model {spec.model!r} has random weights: accuracy is not reported"
    final = {"value": None, "stderr": None, "n": 0, "items": [], "data_sha256": None}
    if quality:
        t0 = time.perf_counter()
        final = evaluate_accuracy(model, tokenizer, data.eval, device, b.eval_batch_size, spec.seed)
        eval_s += time.perf_counter() - t0
        curve.append(
            {
                "step": len(losses),
                "train_wall_s": train_wall,
                "train_tokens": tokens_seen,
                "accuracy": final["value"],
                "stderr": final["stderr"],
                "n": final["n"],
            }
        )

    w = b.timing_warmup_steps
    tps_samples = [n / s for n, s in zip(step_tokens[w:], step_s[w:])] or [n / s for n, s in zip(step_tokens, step_s)]
    n_all = sum(logical_numel(p) for p in model.parameters())  # 4-bit weights count as weights, not bytes
    n_train = sum(p.numel() for p in params)
    metrics = {
        "train_tokens_per_s": {
            "value": measure.stats(tps_samples)["median"],
            "unit": "tokens/s",
            "higher_is_better": True,
            "samples": tps_samples,
            "method": f"median over steps after {w} warm-up steps",
        },
        # The total (warm-up included) is what cost is computed from; comparisons judge speed on
        # train_tokens_per_s, whose samples exclude the warm-up steps. Step times are kept here.
        "train_wall_s": {
            "value": train_wall,
            "unit": "s",
            "higher_is_better": False,
            "step_s": step_s,
            "method": "sum of synchronized step times, warm-up included (evaluation excluded)",
        },
        "eval_wall_s": {"value": eval_s, "unit": "s", "higher_is_better": False},
        "steps": {"value": len(losses), "unit": "steps"},
        "train_tokens": {"value": tokens_seen, "unit": "tokens"},
        "final_loss": {
            "value": sum(losses[-5:]) / len(losses[-5:]),
            "unit": "nats",
            "higher_is_better": False,
            "method": "mean training loss over the last 5 steps",
        },
        "accuracy": (
            {
                "value": final["value"],
                "stderr": final["stderr"],
                "n": final["n"],
                "unit": "fraction",
                "higher_is_better": True,
                "method": "exact match on the full eval split (lm-eval generate_until)",
            }
            if quality
            else measure.missing(no_quality)
        ),
        "trainable_params": {"value": n_train, "unit": "params"},
        "trainable_fraction": {"value": n_train / n_all, "unit": "fraction"},
        "weight_bytes": {
            "value": weight_bytes(model)["total"],
            "unit": "B",
            "higher_is_better": False,
            "method": "bytes of stored parameters, buffers and quantization constants",
        },
        "grad_bytes": {
            "value": gbytes,
            "unit": "B",
            "higher_is_better": False,
            "method": "bytes of .grad tensors after the first backward",
        },
        "optimizer_state_bytes": {
            "value": optimizer_state_bytes(opt),
            "unit": "B",
            "higher_is_better": False,
            "method": "bytes of tensors in optimizer.state",
        },
        "energy_j": energy.result(),
    }
    for k, v in peak.items():
        if k != "method":
            metrics[k] = {"value": v, "unit": "B", "higher_is_better": False, "method": peak["method"]}
    metrics.update(
        flop_metrics(model, pairs, pad_id, device, step_tokens, b.batch_size, metrics["train_tokens_per_s"]["value"])
    )
    return {
        "metrics": metrics,
        "curves": {"accuracy_vs_time": curve, "loss": losses},
        "items": {"arith.exact_match": final["items"]} if quality else {},
        "data": {"eval_lmeval_sha256": final["data_sha256"]} if quality else {},
    }
