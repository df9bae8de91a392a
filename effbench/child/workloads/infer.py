"""`infer`: prefill and decode speed with a KV cache, memory, weight bytes, and the quality suite.

Speed: for each batch size, `prompt_len` tokens of the reference text are prefilled in one
forward pass (timed) that computes the logits of the last position only (`logits_to_keep=1`, as
`generate()` does: the output head at every prompt position would add 2*V*d FLOPs per token and a
batch x prompt x vocabulary tensor to the memory peak), then `decode_tokens` greedy steps reuse
the KV cache, each step timed on its own (per-token latency). One warm-up repeat is excluded,
`repeats` are kept with all samples.

Quality (skipped with the reason for random-weight models): probe accuracy (acc, acc_norm, with
the chance level of its items), arith exact match, perplexity on the reference text, and mean /
p99 KL divergence and top-1 agreement of next-token distributions against the unmodified model on
the same tokens. Logits for perplexity and KLD are fp32: a head whose weights are in a 16-bit
dtype is recomputed in fp32 from the upcast hidden state, so KLD has no bf16 rounding floor.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from effbench.child import measure
from effbench.child.log import log
from effbench.child.measure import metric
from effbench.child.workloads import flops, generation
from effbench.child.workloads.common import weight_bytes
from effbench.child.workloads.public_eval import public_metric_names, public_quality
from effbench.tasks import lmeval, probe, reftext
from effbench.techniques import Technique


def last_logits_kwargs(model) -> dict:
    """{"logits_to_keep": 1} when the model's forward takes it (transformers' causal LMs do), so
    prefill computes the head for the last position only; else {} (and the method says so)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return {}
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


@dataclass
class Decoding:
    """How the run decodes, from its techniques' hooks (the last one offering each wins):
    `new_cache(batch, max_len)` -> an empty KV cache or None (the model's dynamic cache), `step` the
    one-token decode call, `generate_kwargs` added to generate() (merged; one key twice is refused)."""

    new_cache: Callable[[int, int], object | None]
    step: Callable
    generate_kwargs: dict = field(default_factory=dict)
    cache_described: str = "dynamic KV cache"
    described: str = "plain greedy"


def decoding(model, techniques, ctx) -> Decoding:
    cache_from = next((t for t in reversed(techniques) if type(t).kv_cache is not Technique.kv_cache), None)
    step, kwargs, by = None, {}, {}
    for t in techniques:
        step = t.decode_call(model, ctx) or step
        for k, v in t.generate_kwargs(model, ctx).items():
            if k in kwargs:
                raise ValueError(f"generate() argument {k!r} is given by both {by[k]} and {t.name}")
            kwargs[k], by[k] = v, t.name
    dec = Decoding(new_cache=lambda b, n: None, step=step or model, generate_kwargs=kwargs)
    if cache_from is not None:
        dec.new_cache = lambda b, n: cache_from.kv_cache(model, b, n, ctx)
        dec.cache_described = f"{cache_from.name} KV cache"
    if kwargs:
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "compile_config")
        dec.described = f"{', '.join(dict.fromkeys(by.values()))}: {args}"
    return dec


@torch.no_grad()
def decode(model, prompt: torch.Tensor, steps: int, dec: Decoding, device: str, keep: dict):
    """Prefill `prompt` [batch, len] into the run's KV cache, then `steps` greedy one-token steps.
    Returns the tokens [batch, 1 + steps], the prefill time and each step's time (synchronized)."""
    cache = dec.new_cache(prompt.shape[0], prompt.shape[1] + steps)
    measure.sync(device)
    t0 = time.perf_counter()
    out = model(input_ids=prompt, past_key_values=cache, use_cache=True, **keep)
    measure.sync(device)
    t_prefill = time.perf_counter() - t0
    past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
    toks, step_s = [nxt], []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = dec.step(input_ids=nxt, past_key_values=past, use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        measure.sync(device)
        step_s.append(time.perf_counter() - t0)
        toks.append(nxt)
    return torch.cat(toks, 1), t_prefill, step_s


def _speed(model, ids: torch.Tensor, batch: int, budget, device: str, dec: Decoding | None = None) -> dict:
    dec = dec or Decoding(new_cache=lambda b, n: None, step=model)
    prompt = ids[: budget.prompt_len].unsqueeze(0).repeat(batch, 1).to(device)
    keep = last_logits_kwargs(model)
    prefill_s, token_s = [], []
    for rep in range(budget.repeats + 1):
        _, t_prefill, steps = decode(model, prompt, budget.decode_tokens, dec, device, keep)
        if rep > 0:  # the first repeat is the warm-up
            prefill_s.append(t_prefill)
            token_s.extend(steps)
    dec_per_rep = [sum(token_s[i : i + budget.decode_tokens]) for i in range(0, len(token_s), budget.decode_tokens)]
    lat = measure.stats(token_s)
    sfx = f".b{batch}"
    return {
        "prefill_tokens_per_s" + sfx: metric(
            batch * budget.prompt_len / measure.stats(prefill_s)["median"],
            "tokens/s",
            True,
            samples=[batch * budget.prompt_len / s for s in prefill_s],
            method=f"batch {batch} x {budget.prompt_len} prompt tokens / median prefill time, "
            + ("last position's logits only" if keep else "logits at every position (no logits_to_keep)"),
        ),
        "decode_tokens_per_s" + sfx: metric(
            batch * budget.decode_tokens / measure.stats(dec_per_rep)["median"],
            "tokens/s",
            True,
            samples=[batch * budget.decode_tokens / s for s in dec_per_rep],
            method=f"batch {batch} x {budget.decode_tokens} greedy steps with the {dec.cache_described} / median time",
        ),
        "decode_latency_p50_ms" + sfx: metric(lat["median"] * 1e3, "ms", False, samples=[s * 1e3 for s in token_s]),
        "decode_latency_p90_ms" + sfx: metric(lat["p90"] * 1e3, "ms", False),
    }


def _fp32_head(module, args, out):
    """Forward hook on the output head: logits recomputed in fp32 from the upcast hidden state."""
    w = module.weight
    if (
        out.dtype == torch.float32
        or type(w) is not torch.nn.Parameter
        or w.dtype not in (torch.float16, torch.bfloat16)
    ):
        return None
    b = module.bias.float() if module.bias is not None else None
    return torch.nn.functional.linear(args[0].float(), w.float(), b)


@torch.no_grad()
def _log_probs(model, window: torch.Tensor) -> torch.Tensor:
    """log P(next token) at every position but the last, from fp32 logits."""
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    handle = head.register_forward_hook(_fp32_head) if isinstance(head, torch.nn.Linear) else None
    try:
        logits = model(input_ids=window.unsqueeze(0)).logits[0, :-1]
    finally:
        if handle is not None:
            handle.remove()
    return torch.log_softmax(logits.float(), dim=-1)


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) per row, in nats, from log-probabilities [rows, vocab]; P is the reference."""
    return (log_p.exp() * (log_p - log_q)).sum(-1).clamp_min(0)


@torch.no_grad()
def perplexity_and_kld(model, ref_model, ids: torch.Tensor, window: int, device: str) -> dict:
    """Perplexity of `model` on non-overlapping windows of `ids`, and (when `ref_model` is given)
    KL(P_ref || P_model) per predicted token with top-1 agreement."""
    nll_windows, nll_sum, kld, agree, n_tok = [], 0.0, [], 0, 0
    for start in range(0, len(ids) - 1, window):
        w = ids[start : start + window].to(device)
        if len(w) < 2:
            break
        lp = _log_probs(model, w)
        tgt = w[1:]
        nll = -lp.gather(1, tgt[:, None]).squeeze(1)
        nll_windows.append(float(nll.mean()))
        nll_sum += float(nll.double().sum())
        n_tok += len(tgt)
        if ref_model is not None:
            lr = _log_probs(ref_model, w)
            kld.append(kl_divergence(lr, lp).cpu())
            agree += int((lr.argmax(-1) == lp.argmax(-1)).sum())
    out = {
        "perplexity": metric(
            math.exp(nll_sum / n_tok),
            "ppl",
            False,
            samples=nll_windows,
            n=n_tok,
            method=f"exp(mean NLL over all {n_tok} predicted tokens) of {len(nll_windows)} non-overlapping "
            f"{window}-token windows; samples: mean NLL per window",
        )
    }
    if ref_model is None:
        return out
    k = torch.cat(kld)
    out.update(
        {
            "kld_mean": metric(
                float(k.mean()), "nats", False, n=len(k), method="mean over tokens of KL(P_unmodified || P_model)"
            ),
            "kld_p99": metric(float(torch.quantile(k.double(), 0.99)), "nats", False),
            "top1_agreement": metric(
                agree / len(k),
                "fraction",
                True,
                n=len(k),
                method="fraction of positions whose argmax token equals the unmodified model's",
            ),
        }
    )
    return out


def _arith(model, tokenizer, spec, budget, items: dict, data: dict) -> dict:
    """arith exact match (generate_until) on the run's task's eval split, its per-item scores in `items`."""
    from effbench.child.workloads.finetune import evaluate_accuracy
    from effbench.tasks import load as load_task

    metrics = {}
    arith = load_task(spec.task, seed=spec.seed)
    ev = arith.eval[: budget.arith_limit] if budget.arith_limit else arith.eval
    a = evaluate_accuracy(model, tokenizer, ev, spec.device, budget.eval_batch_size, spec.seed)
    metrics["arith_accuracy"] = metric(
        a["value"], "fraction", True, stderr=a["stderr"], n=a["n"], method="exact match, lm-eval generate_until"
    )
    items["arith.exact_match"] = a["items"]
    data["arith_eval_sha256"] = a["data_sha256"]
    return metrics


def _probe(model, tokenizer, spec, budget, items: dict, data: dict) -> dict:
    """The generated probe (effbench.tasks.probe) through lm-eval: acc and acc_norm with chance."""
    items_p = probe.generate(spec.seed)[: budget.probe_limit] if budget.probe_limit else probe.generate(spec.seed)
    pdir, psha = lmeval.write_probe(items_p)
    r = lmeval.evaluate(model, tokenizer, lmeval.PROBE_TASK, pdir, spec.device, budget.eval_batch_size, seed=spec.seed)
    chance = probe.chance_level(items_p)
    metrics = {}
    for m in ("acc", "acc_norm"):
        metrics[f"probe_{m}"] = {
            **r[m],
            "unit": "fraction",
            "higher_is_better": True,
            "chance": chance,
            "method": f"lm-eval multiple_choice {m}; chance = mean over items of 1 / choices",
        }
        items[f"probe.{m}"] = r["items"][m]
    data["probe_sha256"] = psha
    return metrics


def quality(model, tokenizer, spec, budget, ctx, info) -> tuple[dict, dict, dict]:
    metrics, items, data = {}, {}, {}
    if not info.report_quality:
        why = f"model {spec.model!r} has random weights: quality figures are not reported"
        for k in ("probe_acc", "probe_acc_norm", "arith_accuracy", "perplexity", "kld_mean", "top1_agreement"):
            metrics[k] = measure.missing(why)
        for k in public_metric_names(budget.public_tasks):
            metrics[k] = measure.missing(why)
        return metrics, items, data
    ids, meta = reftext.token_ids(tokenizer, budget.ppl_tokens, spec.text)
    data["reftext"] = meta
    ref = ctx.load_reference_model() if ctx.load_reference_model else None
    metrics.update(perplexity_and_kld(model, ref, ids, budget.ppl_window, spec.device))
    del ref
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        why = "lm-eval is not installed here"
        for k in ("probe_acc", "probe_acc_norm", "arith_accuracy", *public_metric_names(budget.public_tasks)):
            metrics[k] = measure.missing(why)
        return metrics, items, data
    if budget.probe_limit == 0:
        for m in ("acc", "acc_norm"):
            metrics[f"probe_{m}"] = measure.missing("probe_limit = 0: the probe is not scored in this suite")
    else:
        metrics.update(_probe(model, tokenizer, spec, budget, items, data))
    if budget.public_tasks:
        log(f"quality: public tasks {', '.join(budget.public_tasks)} ({budget.public_items or 'all'} items each)")
        pm, pi, pd = public_quality(model, tokenizer, spec, budget)
        metrics.update(pm)
        items.update(pi)
        data["public"] = pd
    if budget.arith_limit == 0:
        metrics["arith_accuracy"] = measure.missing("arith_limit = 0: arith not evaluated in this suite")
    else:
        metrics.update(_arith(model, tokenizer, spec, budget, items, data))
    for task in budget.extra_tasks:
        try:
            r = lmeval.evaluate(model, tokenizer, task, None, spec.device, budget.eval_batch_size, seed=spec.seed)
        except Exception as e:  # the task's data may be unreachable from this machine
            metrics[f"{task}_acc"] = measure.missing(f"lm-eval task {task!r} failed: {type(e).__name__}: {e}")
            continue
        for m, v in r.items():
            if isinstance(v, dict) and "value" in v:
                metrics[f"{task}_{m}"] = {
                    **v,
                    "higher_is_better": m not in ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"),
                }
                items[f"{task}.{m}"] = r["items"][m]
    return metrics, items, data


def _roofline_inputs(model, spec) -> dict:
    """forward_matmul_flops_per_token and kv_cache_bytes_per_token, with the shape they come from
    (flops.forward_shape): what effbench.read.roofline needs to place prefill and decode on the
    device's measured roofline. Missing, with the reason, where the model's shape is unknown."""
    from effbench import runspec

    dtype = getattr(torch, runspec.matmul_dtype(spec))
    try:
        shape = flops.forward_shape(model, dtype)
    except ValueError as e:  # not a transformers model: layers and widths unknown
        why = f"forward FLOPs not counted: {type(e).__name__}: {e}"
        return {k: measure.missing(why) for k in ("forward_matmul_flops_per_token", "kv_cache_bytes_per_token")}
    return {
        "forward_matmul_flops_per_token": metric(
            2.0 * (shape["body_matmul_weights"] + shape["head_matmul_weights"]),
            "FLOP/token",
            parts=shape,
            method="2 x weights of every nn.Linear one forward runs (output head included); attention's "
            "QK^T and AV add 4 x context x attn_width per layer (effbench.child.workloads.flops.forward_shape)",
        ),
        "kv_cache_bytes_per_token": metric(
            shape["kv_bytes_per_token"],
            "B",
            False,
            method=f"keys + values of {shape['layers']} layers at {shape['cache_dtype']}",
        ),
    }


def _speed_region(model, ids, budget, device: str, dec, metrics: dict) -> list:
    """Prefill and decode at each of budget.batch_sizes, then generate() if asked, as one region whose
    wall time, energy and peak memory are recorded into `metrics`; the generation failures."""
    mem = measure.Memory(device)
    energy = measure.Energy(device)
    mem.reset()
    t0 = time.perf_counter()
    failures = []
    with energy:
        for bs in budget.batch_sizes:
            log(f"timing prefill and decode at batch {bs}")
            metrics.update(_speed(model, ids, bs, budget, device, dec))
        if budget.generate_tokens:
            log(f"timing generate() of {budget.generate_tokens} tokens: {dec.described}")
            g = generation.measure_generation(model, ids, budget, device, dec.generate_kwargs, dec.described)
            metrics.update(g["metrics"])
            failures = g["failures"]
    metrics["speed_wall_s"] = metric(time.perf_counter() - t0, "s", False)
    metrics["energy_j"] = energy.result()
    read = mem.read()
    for k, v in read.items():
        if k != "method":
            metrics[k] = metric(v, "B", False, method=read["method"])
    return failures


def run(model, tokenizer, data, spec, budget, ctx, techniques, info) -> dict:
    device = spec.device
    n_ids = 2 * budget.prompt_len if budget.generate_tokens else budget.prompt_len
    ids, _ = reftext.token_ids(tokenizer, max(n_ids, 16), spec.text)
    dec = decoding(model, techniques, ctx)
    wb = weight_bytes(model)
    metrics = {
        "weight_bytes": metric(
            wb["total"], "B", False, parts=wb, method="bytes of stored parameters, buffers and quantization constants"
        )
    }
    metrics.update(_roofline_inputs(model, spec))
    model.eval()
    failures = []
    if budget.times_anything:
        failures = _speed_region(model, ids, budget, device, dec, metrics)
    else:  # no $/Mtok, energy or peak drawn from an empty region
        why = "batch_sizes = [] and generate_tokens = 0: this suite times no prefill, decode or generation"
        log(f"no speed region: {why}")
        for k in ("speed_wall_s", "energy_j", *measure.Memory(device).names()):
            metrics[k] = measure.missing(why)
    items, qdata = {}, {}
    if budget.quality:
        parts = (
            ["perplexity", "KL divergence"]
            + ["probe"] * (budget.probe_limit != 0)
            + ["arith"] * (budget.arith_limit != 0)
        )
        log(f"quality: {', '.join(parts)}")
        q, items, qdata = quality(model, tokenizer, spec, budget, ctx, info)
        metrics.update(q)
    return {"metrics": metrics, "curves": {}, "items": items, "data": qdata, "failures": failures}
