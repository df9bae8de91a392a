"""Training FLOPs per token: the model's (full fine-tuning's count, the same for every technique on
one model) and what a run executes (adapters, frozen weights, activation checkpointing).

Only matmuls are counted (linear layers and the attention scores), as torch.utils.flop_counter
does; norms, activations, rotary embeddings and the loss are not. Per token, with w the weights of
a linear layer (in x out, whatever its storage: 4-bit and int8 weights count as weights), s the
mean sequence length, a = query heads x head_dim and L layers:

    forward             2w per linear that runs (adapter matrices included) + 4*s*a per layer
    input gradient      2w per linear whose input requires grad (not the first block's q/k/v when
                        the embeddings are frozen: nothing before them needs a gradient)
    weight gradient     2w per linear whose weight is trained (frozen base weights skip it)
    attention backward  8*s*a per layer
    recomputed forward  the forward of every activation-checkpointed block, run again in backward;
                        non-reentrant checkpointing (the default) stops once the last tensor the
                        backward needs is saved again, which happens before the block's last
                        matmul runs (down_proj in a Llama block), so that one is not rerun

Which linears run, need an input gradient or sit in a checkpointed block is observed, not
assumed: `census` hooks every nn.Linear during one forward with autograd on (eval mode, so
checkpointing and dropout are off). Not counted: DoRA's per-step weight-norm (a matmul per step,
not per token), bias gradients, padding tokens (tokens/s counts non-pad tokens).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from effbench.child import measure


@dataclass(frozen=True)
class LinearUse:
    name: str
    weights: int  # in_features x out_features
    adapter: bool  # a peft adapter matrix (lora_A, lora_B, ...), not one of the model's own weights
    input_grad: bool  # backward computes the gradient of its input
    weight_grad: bool  # its weight is trained
    recomputed: bool  # its forward runs again in backward (activation checkpointing)


def _adapter_modules(model) -> set[int]:
    """ids of the modules peft keeps as adapters (named by each tuner layer's adapter_layer_names)."""
    out: set[int] = set()
    for m in model.modules():
        for attr in getattr(m, "adapter_layer_names", ()):
            holder = getattr(m, attr, None)
            if isinstance(holder, torch.nn.Module):
                out.update(id(x) for x in holder.modules())
    return out


def checkpointed_blocks(model) -> list[torch.nn.Module]:
    """The blocks whose forward activation checkpointing reruns in backward (transformers marks
    each GradientCheckpointingLayer it wraps with `gradient_checkpointing = True`)."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:  # older transformers: no per-block flag to read
        return []
    return [
        m
        for m in model.modules()
        if isinstance(m, GradientCheckpointingLayer) and getattr(m, "gradient_checkpointing", False)
    ]


def stops_early(block: torch.nn.Module) -> bool:
    """Whether the block's recomputation stops before its last op (torch.utils.checkpoint with
    use_reentrant=False and early_stop on, the defaults); reentrant checkpointing reruns it all."""
    import torch.utils.checkpoint as tc

    kw = getattr(getattr(block, "_gradient_checkpointing_func", None), "keywords", None) or {}
    if kw.get("use_reentrant", True):
        return False
    forced = getattr(tc, "_enable_checkpoint_early_stop", None)  # set_checkpoint_early_stop(...)
    return bool(forced) if forced is not None else bool(kw.get("early_stop", True))


@dataclass(frozen=True)
class Census:
    linears: list[LinearUse]  # every nn.Linear call of one forward, in call order
    checkpointed_blocks: int  # blocks (one attention each) whose forward is recomputed


def census(model, input_ids: torch.Tensor) -> Census:
    """Which linears one forward of `input_ids` [batch, seq] runs, and what their backward needs."""
    blocks = checkpointed_blocks(model)
    in_block = {id(x): i for i, b in enumerate(blocks) for x in b.modules()}
    adapters = _adapter_modules(model)
    names = {id(m): n for n, m in model.named_modules()}
    seen: list[tuple[LinearUse, int | None]] = []

    def hook(mod, args):
        x = args[0] if args else None
        blk = in_block.get(id(mod))
        seen.append(
            (
                LinearUse(
                    names.get(id(mod), "?"),
                    mod.in_features * mod.out_features,
                    id(mod) in adapters,
                    bool(getattr(x, "requires_grad", False)),
                    bool(mod.weight.requires_grad),
                    blk is not None,
                ),
                blk,
            )
        )

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            model(input_ids=input_ids)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    last = {blk: i for i, (_, blk) in enumerate(seen) if blk is not None}  # each block's last linear call
    skip = {i for blk, i in last.items() if stops_early(blocks[blk])}
    uses = [dataclasses.replace(u, recomputed=False) if i in skip else u for i, (u, _) in enumerate(seen)]
    return Census(uses, len(blocks))


def attention_shape(cfg) -> tuple[int, int]:
    """(layers, query heads x head_dim) from a transformers config."""
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return cfg.num_hidden_layers, cfg.num_attention_heads * head_dim


def per_token(c: Census, cfg, seq_len: float) -> dict:
    """Model and executed FLOPs per token from a census (see the module docstring)."""
    layers, width = attention_shape(cfg)
    attn_fwd = 4.0 * seq_len * width  # per layer
    uses, ckpt_blocks = c.linears, c.checkpointed_blocks
    base = sum(u.weights for u in uses if not u.adapter)
    fwd = sum(2.0 * u.weights for u in uses) + layers * attn_fwd
    bwd = sum(2.0 * u.weights * (u.input_grad + u.weight_grad) for u in uses) + 2 * layers * attn_fwd
    rec = sum(2.0 * u.weights for u in uses if u.recomputed) + ckpt_blocks * attn_fwd
    return {
        "model": measure.train_flops_per_token(base, layers, width, seq_len),
        "model_parts": {"matmul_weights": base, "layers": layers, "attn_width": width, "seq_len": seq_len},
        "executed": fwd + bwd + rec,
        "executed_parts": {
            "forward": fwd,
            "backward": bwd,
            "recomputed_forward": rec,
            "adapter_weights": sum(u.weights for u in uses if u.adapter),
            "checkpointed_blocks": ckpt_blocks,
        },
    }


def forward_shape(model, cache_dtype: torch.dtype) -> dict:
    """What one inference forward costs per token, for the roofline (effbench.read.roofline):
    matmul weights of every nn.Linear (a dense decoder runs each once per token; the output head
    apart, since a prefill that keeps the last position's logits runs it once per sequence),
    layers and attention width (the QK^T and AV terms, 4 x context x width per layer, depend on the
    context), and the KV cache's bytes per token (keys and values of every layer at the cache
    dtype). Counted from the modules, without a forward: a compiled model's graphs stay untouched."""
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "num_hidden_layers"):
        raise ValueError(f"no transformers config on {type(model).__name__}: layers and widths unknown")
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    body = sum(m.in_features * m.out_features for m in linears if m is not head)
    head_weights = head.in_features * head.out_features if any(m is head for m in linears) else 0
    layers, width = attention_shape(cfg)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_width = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    elem = torch.empty((), dtype=cache_dtype).element_size()
    return {
        "body_matmul_weights": body,
        "head_matmul_weights": head_weights,
        "layers": layers,
        "attn_width": width,
        "kv_bytes_per_token": 2 * layers * kv_width * head_dim * elem,
        "cache_dtype": str(cache_dtype).removeprefix("torch."),
    }
