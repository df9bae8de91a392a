"""Helpers the inference techniques (quantization, sparsity) share: which Linear layers they
touch, how many bytes a (possibly quantized) weight really stores, and the measured figures
they record (achieved sparsity, achieved bits per weight).

Why measured: a technique's parameters say what was asked for; the recorded figures say what the
weights actually hold, so a layer left dense or a format with hidden overhead cannot pass
unnoticed. Bits per weight = stored bytes of the quantized Linear weights, including their
quantization constants (scales, absmax, nested statistics, code tables), * 8 / number of weights.
"""

from __future__ import annotations

import torch

from .base import TechniqueError


def _base(model):
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def output_head(model) -> torch.nn.Module | None:
    get = getattr(_base(model), "get_output_embeddings", None)
    return get() if callable(get) else None


def head_tied(model) -> bool:
    """Whether the output head shares its weight with the input embeddings."""
    base = _base(model)
    head = output_head(model)
    emb = base.get_input_embeddings() if hasattr(base, "get_input_embeddings") else None
    return head is not None and emb is not None and head.weight.data_ptr() == emb.weight.data_ptr()


def block_linears(model, include_head: bool = False) -> list[tuple[str, torch.nn.Linear]]:
    """The model's Linear layers (subclasses included) except the output head, unless asked.
    Embeddings are nn.Embedding, never in this list."""
    head = output_head(model)
    out = [
        (n, m)
        for n, m in _base(model).named_modules()
        if isinstance(m, torch.nn.Linear) and (include_head or m is not head)
    ]
    if not out:
        raise TechniqueError(f"no Linear layers found in {type(model).__name__}")
    return out


# -- stored bytes ------------------------------------------------------------------------------
def _flat_bytes(t: torch.Tensor) -> int:
    """Bytes of a tensor; wrapper subclasses (torchao, semi-structured sparse) summed over parts."""
    inner = t.data if isinstance(t, torch.nn.Parameter) else t
    if type(inner) is not torch.Tensor and hasattr(inner, "__tensor_flatten__"):
        names, _ = inner.__tensor_flatten__()
        return sum(_flat_bytes(getattr(inner, n)) for n in names if getattr(inner, n) is not None)
    return inner.numel() * inner.element_size()


def quant_constants(module: torch.nn.Module) -> list[torch.Tensor]:
    """Tensors bitsandbytes keeps beside a layer's weight: 4-bit quant_state (absmax, code, nested
    state2 absmax/code, offset) and int8 row scales (SCB, on the weight or, after the first
    forward, on the layer's MatmulLtState)."""
    w = getattr(module, "weight", None)
    out = []
    qs = getattr(w, "quant_state", None)
    for st in (qs, getattr(qs, "state2", None)):
        for name in ("absmax", "code", "offset"):
            v = getattr(st, name, None) if st is not None else None
            if isinstance(v, torch.Tensor):
                out.append(v)
    for holder in (w, getattr(module, "state", None)):
        v = getattr(holder, "SCB", None)
        if isinstance(v, torch.Tensor):
            out.append(v)
    return out


def linear_weight_stats(layers: list[tuple[str, torch.nn.Module]]) -> dict:
    """Stored bytes and logical weight count of these layers' weights (shared tensors once).
    The logical count comes from the layer's shape, not from the stored (packed) tensor."""
    seen, stored, n_weights = set(), 0, 0
    for _, m in layers:
        n_weights += m.in_features * m.out_features
        for t in [m.weight, *quant_constants(m)]:
            key = (
                (t.data_ptr(), t.numel())
                if type(t.data if isinstance(t, torch.nn.Parameter) else t) is torch.Tensor
                else id(t)
            )
            if key in seen:
                continue
            seen.add(key)
            stored += _flat_bytes(t)
    return {
        "stored_bytes": stored,
        "n_weights": n_weights,
        "bits_per_weight": 8.0 * stored / n_weights if n_weights else float("nan"),
    }


def record_bits(ctx, name: str, layers) -> dict:
    s = linear_weight_stats(layers)
    ctx.record(name, "bits_per_weight", s["bits_per_weight"])
    ctx.record(name, "quantized_weight_bytes", s["stored_bytes"])
    ctx.record(name, "quantized_weights", s["n_weights"])
    ctx.record(name, "quantized_layers", len(layers))
    return s


# -- sparsity ----------------------------------------------------------------------------------
def dense_weight(module: torch.nn.Module) -> torch.Tensor:
    """A Linear's weight as a dense tensor (semi-structured sparse weights are densified)."""
    w = module.weight
    inner = w.data if isinstance(w, torch.nn.Parameter) else w
    return inner.to_dense() if hasattr(inner, "to_dense") and type(inner) is not torch.Tensor else inner


@torch.no_grad()
def measured_sparsity(layers) -> dict:
    """Fraction of exactly-zero weights over these layers, overall and per layer."""
    zeros, total, per = 0, 0, {}
    for n, m in layers:
        w = dense_weight(m)
        z = int((w == 0).sum())
        zeros, total = zeros + z, total + w.numel()
        per[n] = z / w.numel()
    return {"overall": zeros / total, "per_layer": per, "n_weights": total}
