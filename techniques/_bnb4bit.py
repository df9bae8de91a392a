"""Shared 4-bit weight conversion through bitsandbytes, for `qlora`, `lora` on a 4-bit model, and
the `nf4` inference technique.

`quantize_linear_4bit` replaces every nn.Linear inside the model's transformer blocks by a
bitsandbytes Linear4bit whose weight is quantized in place (the embeddings and lm_head stay as
they are: on tied-embedding models lm_head *is* the embedding matrix). Storage per weight:
4 bits packed two per uint8, plus one absmax per `blocksize` weights: fp32 (4 B) without double
quantization, or 8-bit (1 B) with double quantization, which adds one fp32 absmax per 256 of
those constants, an fp32 offset and a 256-entry fp32 code table. A 16-entry fp32 code table
(nf4 or fp4 levels) sits beside each weight. weight_bytes() in effbench/child/workloads/common.py
counts all of these from the tensors themselves.

Why the CPU repacking is switched off by default: bitsandbytes (0.50) repacks a Linear4bit's
weight on CPUs with AVX512-BF16 the first time it runs in eval mode without grad, into a layout
whose matmul (gemv_4bit) has no autograd formula. After one evaluation, training through that
layer then silently drops the gradient to its input, and the absmax constants have been
converted to bf16 and the double quantization removed, so the stored format is no longer the one
stated. The harness evaluates before training, so LoRA on such a model would train wrongly
without an error. `cpu_repack=True` allows it for inference-only use where speed matters.

The model instance given is changed and returned; no class is patched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the functions import torch (technique configs read the constants)
    import torch


QUANT_TYPES = ("nf4", "fp4")
BLOCKSIZES = (64, 128, 256, 512, 1024, 2048, 4096)  # weights per absmax constant
DTYPES = ("bfloat16", "float16", "float32")  # compute dtypes by name (torch's attribute names)


def _dtype(d) -> torch.dtype | None:
    import torch

    if d is None or isinstance(d, torch.dtype):
        return d
    if d not in DTYPES:
        raise ValueError(f"compute_dtype {d!r}: valid: {list(DTYPES)} or None")
    return getattr(torch, d)


def default_compute_dtype(ctx) -> torch.dtype:
    """The dtype 4-bit weights are quantized from and dequantized to when none is asked for: the
    dtype the matmuls really run in. Fine-tuning on CUDA keeps fp32 master weights but runs under
    bf16 autocast (effbench/child/workloads/finetune.py), so bf16 there, as the QLoRA paper and peft's
    examples do (bnb_4bit_compute_dtype=bfloat16); elsewhere the run's dtype."""
    import torch

    if ctx.scenario == "train" and ctx.device == "cuda":
        return torch.bfloat16
    return ctx.dtype


def _block_linears(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    """(parent, attribute, layer) for each plain nn.Linear except the output and input embeddings."""
    import torch

    skip = set()
    for get in ("get_output_embeddings", "get_input_embeddings"):
        f = getattr(model, get, None)
        m = f() if callable(f) else None
        if m is not None:
            skip.add(id(m))
    out = []
    for parent in model.modules():
        for attr, child in parent.named_children():
            if type(child) is torch.nn.Linear and id(child) not in skip:
                out.append((parent, attr, child))
    return out


def linear4bit_modules(model: torch.nn.Module) -> list:
    """The bitsandbytes Linear4bit modules in `model` (empty when bitsandbytes is absent)."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def is_4bit(model: torch.nn.Module) -> bool:
    return bool(linear4bit_modules(model))


def disable_cpu_repack(model: torch.nn.Module) -> int:
    """Keep every Linear4bit in the canonical (differentiable) layout; returns how many there are.
    Raises if one was already repacked by an evaluation (its input gradient would be lost)."""
    mods = linear4bit_modules(model)
    for m in mods:
        if getattr(m.weight.quant_state, "packing_format_for_cpu", False):
            raise ValueError(
                "a Linear4bit layer was already repacked for CPU inference (eval without "
                "grad ran on it); it can no longer pass gradients: quantize with cpu_repack=False"
            )
        m.support_avx512bf16_for_cpu = False  # instance attribute: this model only
    return len(mods)


def quantize_linear_4bit(
    model: torch.nn.Module,
    quant_type: str = "nf4",
    compress_statistics: bool = True,
    compute_dtype=None,
    blocksize: int = 64,
    *,
    cpu_repack: bool = False,
) -> torch.nn.Module:
    """Replace the block nn.Linear layers of `model` by bitsandbytes Linear4bit, weights quantized.

    quant_type: "nf4" (normal-float levels, QLoRA's choice) or "fp4".
    compress_statistics: double quantization of the absmax constants (8-bit instead of fp32).
    compute_dtype: dtype the matmul runs in (torch.dtype or its name); None: the input's dtype.
        The weights are cast to it before quantizing, so that the quantization state's dtype (what
        every dequantization produces) is the compute dtype: quantizing fp32 master weights would
        dequantize to fp32 on every matmul and then cast to bf16, extra traffic QLoRA never pays.
    blocksize: weights per absmax constant (64 is QLoRA's).
    cpu_repack: allow bitsandbytes' CPU inference repacking (see the module docstring).
    """
    import bitsandbytes as bnb
    import torch

    if quant_type not in QUANT_TYPES:
        raise ValueError(f"quant_type {quant_type!r}: valid: {list(QUANT_TYPES)}")
    if blocksize not in BLOCKSIZES:
        raise ValueError(f"blocksize {blocksize}: valid: {list(BLOCKSIZES)}")
    cdt = _dtype(compute_dtype)
    targets = _block_linears(model)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layers to quantize outside the embeddings")
    for parent, attr, lin in targets:
        w = lin.weight.data if cdt is None else lin.weight.data.to(cdt)
        if w.numel() % blocksize:
            raise ValueError(f"{attr}: {w.numel()} weights are not a multiple of blocksize {blocksize}")
        # Built on the meta device so no fp32 weight is allocated only to be thrown away.
        q = bnb.nn.Linear4bit(
            lin.in_features,
            lin.out_features,
            bias=lin.bias is not None,
            compute_dtype=cdt,
            compress_statistics=compress_statistics,
            quant_type=quant_type,
            device="meta",
        )
        # Params4bit.to(device) quantizes a not-yet-quantized weight (bitsandbytes' documented path).
        q.weight = bnb.nn.Params4bit(
            w,
            requires_grad=False,
            blocksize=blocksize,
            compress_statistics=compress_statistics,
            quant_type=quant_type,
            module=q,
        ).to(w.device)
        if lin.bias is not None:
            q.bias = torch.nn.Parameter(lin.bias.data, requires_grad=False)
        q.train(lin.training)
        if not cpu_repack:
            q.support_avx512bf16_for_cpu = False
        setattr(parent, attr, q)
    # peft reads this flag to wrap Linear4bit with its 4-bit LoRA layer (merge/unmerge dequantize)
    # and prepare_model_for_kbit_training to treat the model as k-bit.
    model.is_loaded_in_4bit = True
    return model


def linear4bit_bytes(model: torch.nn.Module) -> int:
    """Bytes the 4-bit layers store: packed weights, absmax (and nested absmax, offset), code
    tables; a tensor shared between layers (bitsandbytes' cached code tables) counted once."""
    import torch

    seen, total = set(), 0
    for m in linear4bit_modules(model):
        qs = m.weight.quant_state
        parts = [m.weight.data, qs.absmax, qs.code, getattr(qs, "offset", None)]
        s2 = getattr(qs, "state2", None) if qs.nested else None
        if s2 is not None:
            parts += [s2.absmax, s2.code]
        for t in parts:
            if isinstance(t, torch.Tensor) and (t.data_ptr(), t.numel()) not in seen:
                seen.add((t.data_ptr(), t.numel()))
                total += t.numel() * t.element_size()
    return total


def expected_bytes(n_weights: int, blocksize: int, compress_statistics: bool) -> float:
    """Bytes one quantized weight matrix needs, per the format (code tables excluded):
    n/2 packed + n/blocksize absmax at 4 B, or at 1 B plus a 4 B absmax per 256 of them."""
    n_blocks = n_weights / blocksize
    absmax = n_blocks * (1 + 4 / 256) if compress_statistics else n_blocks * 4
    return n_weights / 2 + absmax
