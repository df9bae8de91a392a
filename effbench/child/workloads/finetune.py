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
from dataclasses import dataclass, field

import torch

from effbench.child import measure
from effbench.child.log import log
from effbench.child.measure import metric
from effbench.child.workloads import flops
from effbench.child.workloads.common import (
    collate,
    encode,
    grad_bytes,
    input_tokens,
    logical_numel,
    optimizer_state_bytes,
    weight_bytes,
)
from effbench.tasks import lmeval


def evaluate_accuracy(model, tokenizer, examples, device: str, batch_size: int, seed: int, task: str = "arith") -> dict:
    """The task's accuracy on `examples` through lm-eval, with per-item scores in their order: arith by
    exact match (generate_until) on tasks written from the examples; a real-data task (`sst2`) by
    lm-eval's own multiple-choice task on the pinned file, scoring exactly the examples' items."""
    from effbench import tasks

    if task not in tasks.HELD_OUT:
        task_dir, sha = lmeval.write_arith(examples)
        r = lmeval.evaluate(model, tokenizer, lmeval.ARITH_TASK, task_dir, device, batch_size=batch_size, seed=seed)
        m = r["exact_match"]
    else:
        from effbench.tasks import heldout, public

        ids = [e.uid for e in examples]
        if ids != sorted(set(ids)):
            raise ValueError(f"{task}: eval items must be distinct and in file order")
        name = f"effbench_{task}"
        r = lmeval.evaluate_many(
            model, tokenizer, [name], lmeval.write_heldout(task), device, batch_size, samples={name: ids}, seed=seed
        )[name]
        if r["doc_ids"] != ids:
            raise RuntimeError(f"lm-eval scored other items of {task} than the eval split asked for")
        m, sha = r["acc"], public.ids_sha256(ids) + ":" + heldout.HELD_OUT[task].sha256
    return {
        "value": m["value"],
        "stderr": m["stderr"],
        "n": m["n"],
        "items": r["items"][ITEM_METRIC.get(task, "acc")],
        "data_sha256": sha,
    }


ITEM_METRIC = {"arith": "exact_match", "arith-noisy": "exact_match"}  # the per-item score behind `accuracy`


def items_key(task: str) -> str:
    """The `items` entry of a fine-tuning run's final accuracy: `arith.exact_match` for the generated
    tasks (every set before the real-data tasks), `<task>.acc` for a real-data one."""
    return "arith.exact_match" if task in ITEM_METRIC else f"{task}.acc"


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
        "train_flops_per_token": metric(
            f["model"],
            "FLOP/token",
            parts=f["model_parts"],
            method="6N + 12*L*seq*a: N every matmul weight incl. the output head (full fine-tuning)",
        ),
        "train_executed_flops_per_token": metric(
            f["executed"],
            "FLOP/token",
            parts=f["executed_parts"],
            method="matmul FLOPs this run executes per token: forward + input and weight "
            "gradients where needed + recomputed forward (effbench.child.workloads.flops)",
        ),
    }
    out["mfu"] = (
        metric(
            f["executed"] * tokens_per_s / peak,
            "fraction",
            True,
            method=f"train_executed_flops_per_token x train_tokens_per_s / {why}",
        )
        if (peak and tokens_per_s)
        else measure.missing(why if not peak else "no training speed measured")
    )
    return out


def _n_steps(b, n_examples: int) -> int:
    if b.epochs is not None:
        return max(1, min(b.max_steps, math.ceil(b.epochs * n_examples / b.batch_size)))
    return b.max_steps


def _optimizer(params: list, techniques, ctx, lr: float):
    """The last technique's optimizer that offers one (adam8bit), else AdamW; every group at `lr`."""
    opt = None
    for t in techniques:
        opt = t.make_optimizer(params, ctx) or opt
    opt = opt or torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for g in opt.param_groups:
        g["lr"] = lr
    return opt


class _Batches:
    """Seeded batches of example indices: a fresh shuffle of every example each time one pass ends."""

    def __init__(self, n: int, seed: int):
        self.n, self.rng, self.order = n, random.Random(seed), []

    def next(self, size: int) -> list[int]:
        idx = []
        while len(idx) < size:
            if not self.order:
                self.order = list(range(self.n))
                self.rng.shuffle(self.order)
            idx.append(self.order.pop())
        return idx


@dataclass
class _Log:
    """What the training loop measured; evaluations are outside every clock and region but eval_s."""

    curve: list = field(default_factory=list)  # accuracy checkpoints: step, train_wall_s, tokens, accuracy
    losses: list = field(default_factory=list)
    step_s: list = field(default_factory=list)  # synchronized time of each step
    step_tokens: list = field(default_factory=list)  # non-pad tokens of each step
    train_wall: float = 0.0
    tokens_seen: int = 0
    eval_s: float = 0.0
    grad_bytes: int = 0  # .grad tensors after the first backward
    peak: dict = field(default_factory=dict)  # peak memory over the training segments (measure.Memory.read)

    def point(self, r: dict) -> None:
        self.curve.append(
            {
                "step": len(self.losses),
                "train_wall_s": self.train_wall,
                "train_tokens": self.tokens_seen,
                "accuracy": r["value"],
                "stderr": r["stderr"],
                "n": r["n"],
            }
        )


def _collate_of(techniques, ctx):
    """The last technique's batch builder that offers one (packing), else the padded collate."""
    fn = collate
    for t in techniques:
        fn = t.batching(ctx) or fn
    return fn


def _loss_of(techniques, ctx, model, batch, out):
    """The last technique's training loss that offers one (distillation), else out.loss."""
    loss = None
    for t in techniques:
        own = t.train_loss(model, batch, out, ctx)
        loss = own if own is not None else loss
    return out.loss if loss is None else loss


def _train(
    model,
    pairs,
    pad_id,
    opt,
    spec,
    b,
    n_steps: int,
    checkpoint,
    mem,
    energy,
    collate_fn=collate,
    techniques=(),
    ctx=None,
) -> _Log:
    """Steps until max_steps, the token budget or the epochs run out; `checkpoint(log, step)` every
    eval_every. Backpropagates `_loss_of(techniques, ...)` (a technique's own loss, else the model's);
    the logged losses stay the model's answer-token cross-entropy, comparable across runs."""
    device = spec.device
    # bf16 autocast on CUDA over fp32 master weights; plain fp32 on CPU.
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    )
    batches = _Batches(len(pairs), spec.seed)
    log_ = _Log()
    model.train()
    mem.reset()
    segment_peaks: list[dict] = []
    with energy:
        for step in range(1, n_steps + 1):
            if b.train_tokens is not None and log_.tokens_seen >= b.train_tokens:
                break
            batch = collate_fn([pairs[i] for i in batches.next(b.batch_size)], pad_id, device)
            for g in opt.param_groups:
                g["lr"] = b.lr * min(1.0, step / max(1, b.warmup_steps))
            measure.sync(device)
            t0 = time.perf_counter()
            with autocast:
                out = model(**batch)
                loss = _loss_of(techniques, ctx, model, batch, out)
            loss.backward()
            if step == 1:
                log_.grad_bytes = grad_bytes(model)
            opt.step()
            opt.zero_grad(set_to_none=True)
            measure.sync(device)
            dt = time.perf_counter() - t0
            ntok = input_tokens(batch)
            log_.train_wall += dt
            log_.tokens_seen += ntok
            log_.step_s.append(dt)
            log_.step_tokens.append(ntok)
            log_.losses.append(float(out.loss.detach()))  # the answer tokens' cross-entropy, whatever was trained
            bad = [v for v in (log_.losses[-1], float(loss.detach())) if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(f"training loss became {bad[0]} at step {step}")
            if step % b.eval_every == 0 and step != n_steps:
                # Evaluations lie outside the memory and energy regions, as they lie outside train_wall_s.
                segment_peaks.append(mem.read())
                energy.pause()
                model.eval()
                checkpoint(log_, step)
                model.train()
                mem.reset()
                energy.resume()
    segment_peaks.append(mem.read())
    log_.peak = {
        k: (max(p[k] for p in segment_peaks) if k != "method" else segment_peaks[-1][k]) for k in segment_peaks[-1]
    }
    return log_


ACCURACY_METHOD = {
    "arith": "exact match on the full eval split (lm-eval generate_until)",
    "sst2": "lm-eval sst2 acc (log-likelihood of ' positive' vs ' negative') on the held-out eval side",
}


def _metrics(model, params, opt, log_: _Log, b, final: dict | None, no_quality: str, energy, task: str) -> dict:
    """The run's figures, each with its unit, direction and method."""
    w = b.timing_warmup_steps
    tps = [n / s for n, s in zip(log_.step_tokens[w:], log_.step_s[w:])] or [
        n / s for n, s in zip(log_.step_tokens, log_.step_s)
    ]
    n_all = sum(logical_numel(p) for p in model.parameters())  # 4-bit weights count as weights, not bytes
    n_train = sum(p.numel() for p in params)
    losses = log_.losses
    metrics = {
        "train_tokens_per_s": metric(
            measure.stats(tps)["median"],
            "tokens/s",
            True,
            samples=tps,
            method=f"median over steps after {w} warm-up steps",
        ),
        # The total (warm-up included) is what cost is computed from; comparisons judge speed on
        # train_tokens_per_s, whose samples exclude the warm-up steps. Step times are kept here.
        "train_wall_s": metric(
            log_.train_wall,
            "s",
            False,
            step_s=log_.step_s,
            method="sum of synchronized step times, warm-up included (evaluation excluded)",
        ),
        "eval_wall_s": metric(log_.eval_s, "s", False),
        "steps": metric(len(losses), "steps"),
        "train_tokens": metric(log_.tokens_seen, "tokens"),
        "final_loss": metric(
            sum(losses[-5:]) / len(losses[-5:]), "nats", False, method="mean training loss over the last 5 steps"
        ),
        "accuracy": (
            metric(
                final["value"],
                "fraction",
                True,
                stderr=final["stderr"],
                n=final["n"],
                method=ACCURACY_METHOD.get(task, ACCURACY_METHOD["arith"]),
            )
            if final is not None
            else measure.missing(no_quality)
        ),
        "trainable_params": metric(n_train, "params"),
        "trainable_fraction": metric(n_train / n_all, "fraction"),
        "weight_bytes": metric(
            weight_bytes(model)["total"],
            "B",
            False,
            method="bytes of stored parameters, buffers and quantization constants",
        ),
        "grad_bytes": metric(log_.grad_bytes, "B", False, method="bytes of .grad tensors after the first backward"),
        "optimizer_state_bytes": metric(
            optimizer_state_bytes(opt), "B", False, method="bytes of tensors in optimizer.state"
        ),
        "energy_j": energy.result(),
    }
    for k, v in log_.peak.items():
        if k != "method":
            metrics[k] = metric(v, "B", False, method=log_.peak["method"])
    return metrics


def run(model, tokenizer, data, spec, budget, ctx, techniques, quality: bool = True) -> dict:
    """Fine-tune `model` on data.train within `budget`, with accuracy checkpoints on data.eval.
    `quality=False` (random-weight `arch:` models): no evaluations, accuracy recorded as missing."""
    device, b = spec.device, budget
    torch.manual_seed(spec.seed)
    pairs = encode(tokenizer, data.train)
    if not pairs:
        raise ValueError("the train split is empty (did data pruning remove everything?)")
    pad_id = tokenizer.pad_token_id
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters after applying the techniques")
    opt = _optimizer(params, techniques, ctx, b.lr)
    n_steps = _n_steps(b, len(pairs))
    eval_subset = data.eval[: b.eval_limit] if b.eval_limit else data.eval

    def evaluate(log_: _Log, examples=eval_subset) -> dict:
        t0 = time.perf_counter()
        r = evaluate_accuracy(model, tokenizer, examples, device, b.eval_batch_size, spec.seed, spec.task)
        log_.eval_s += time.perf_counter() - t0
        log_.point(r)
        return r

    def checkpoint(log_: _Log, step: int) -> None:
        if not quality:
            return
        r = evaluate(log_)
        losses = log_.losses
        loss = f", loss {sum(losses[-5:]) / len(losses[-5:]):.3f}" if losses else ""
        log(
            f"step {step}/{n_steps}: accuracy {100 * r['value']:.1f}% on {r['n']} items{loss}, "
            f"{log_.train_wall:.0f}s trained"
        )

    mem, energy = measure.Memory(device), measure.Energy(device)
    start = _Log()
    checkpoint(start, 0)
    collate_fn = _collate_of(techniques, ctx)
    log_ = _train(model, pairs, pad_id, opt, spec, b, n_steps, checkpoint, mem, energy, collate_fn, techniques, ctx)
    log_.curve[:0], log_.eval_s = start.curve, log_.eval_s + start.eval_s
    log(f"trained {len(log_.losses)} steps, {log_.tokens_seen} tokens in {log_.train_wall:.0f}s; final evaluation")
    model.eval()
    final = evaluate(log_, data.eval) if quality else None
    no_quality = f"model {spec.model!r} has random weights: accuracy is not reported"
    metrics = _metrics(model, params, opt, log_, b, final, no_quality, energy, spec.task)
    metrics.update(
        flop_metrics(
            model, pairs, pad_id, device, log_.step_tokens, b.batch_size, metrics["train_tokens_per_s"]["value"]
        )
    )
    items = {items_key(spec.task): final["items"]} if quality else {}
    data_out = {"eval_lmeval_sha256": final["data_sha256"]} if quality else {}
    if quality and b.retention_items:
        log(f"retention: HellaSwag on {b.retention_items} items after fine-tuning")
        rm, ri, rd = retention(model, tokenizer, spec, b)
        metrics.update({f"{k}_after": v for k, v in rm.items()})
        items.update({f"{k}.after": v for k, v in ri.items()})
        data_out["retention"] = rd
    return {
        "metrics": metrics,
        "curves": {"accuracy_vs_time": log_.curve, "loss": log_.losses},
        "items": items,
        "data": data_out,
    }


RETENTION_TASKS = ("hellaswag",)


def retention(model, tokenizer, spec, b) -> tuple[dict, dict, dict]:
    """HellaSwag acc and acc_norm on the public tasks' fixed sample of `retention_items` items (the
    infer runs' scoring, effbench.child.workloads.public_eval.public_quality): measured on the unmodified
    model before any technique and on the fine-tuned one after, paired per item."""
    from types import SimpleNamespace

    from effbench.child.workloads.public_eval import public_quality

    sub = SimpleNamespace(
        public_tasks=RETENTION_TASKS,
        public_items=b.retention_items,
        public_sample_seed=0,
        eval_batch_size=b.eval_batch_size,
    )
    m, i, d = public_quality(model, tokenizer, spec, sub)
    return (
        {k: v for k, v in m.items() if not k.startswith("public_")},
        {k: v for k, v in i.items() if not k.startswith("public.")},
        d,
    )
