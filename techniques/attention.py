"""`attention`: the scaled-dot-product-attention kernel the model's attention layers run.

What it chooses: torch's `scaled_dot_product_attention` dispatches, per call, to one of several
kernels: `math` (the reference: Q·Kᵀ, softmax and ·V as separate matmuls, the scores
materialized), `efficient` (memory-efficient attention, CUDA), `flash` (FlashAttention-2: tiled,
the scores never stored; torch also has a CPU version) and `cudnn` (cuDNN's fused attention,
CUDA). Left alone, torch picks the first that fits each call; pinned, a call that the kernel
cannot serve fails instead of falling back to another.

How: transformers' attention interface. Each backend gets its own registered implementation,
`effbench_sdpa_<tag>` (transformers' sdpa forward inside `torch.nn.attention.sdpa_kernel([that
backend])`, with transformers' sdpa mask builder), and `apply` switches the instance it is given
to it (`set_attn_implementation`): only that model's attention layers run the pinned kernel, no
class is patched, and a reference model loaded beside it keeps torch's default choice. The tags
avoid the word "flash", which transformers reads as a request for the flash-attn package.

Refused where the kernel cannot run: `efficient` and `cudnn` need CUDA (skipped elsewhere);
`apply` then runs the kernel on tensors of the model's attention shapes, in the dtype the workload
computes in (bf16 under fine-tuning's CUDA autocast, else the run's), causal without a mask,
one-token decode, and with a padding mask (padded fine-tuning batches, evaluation batches), with
the backward pass when training: a case it fails is refused before the workload, naming the
backends that pass all of them here. FlashAttention takes no explicit mask on CUDA, so there it
is refused for every workload of this harness (all have padded batches somewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import Context, Technique, TechniqueError, register

BACKENDS = ("math", "efficient", "flash", "cudnn")
CUDA_ONLY = ("efficient", "cudnn")
_TAG = {"math": "math", "efficient": "efficient", "flash": "fa", "cudnn": "cudnn"}
_ENUM = {"math": "MATH", "efficient": "EFFICIENT_ATTENTION", "flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION"}


def implementation_name(backend: str) -> str:
    return f"effbench_sdpa_{_TAG[backend]}"


def _sdpa_backend(backend: str):
    from torch.nn.attention import SDPBackend

    return getattr(SDPBackend, _ENUM[backend])


def _register(backend: str) -> str:
    """Register the pinned implementation with transformers (once; registering adds a name, it
    changes no existing one)."""
    from torch.nn.attention import sdpa_kernel
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    name = implementation_name(backend)
    kernel = _sdpa_backend(backend)

    def pinned_sdpa(module, query, key, value, attention_mask, **kwargs):
        with sdpa_kernel([kernel]):
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    if name not in AttentionInterface._global_mapping:
        AttentionInterface.register(name, pinned_sdpa)
    if name not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(name, sdpa_mask)
    return name


def compute_dtype(ctx: Context):
    """The dtype attention sees: fine-tuning on CUDA runs under bf16 autocast over fp32 weights."""
    import torch

    return torch.bfloat16 if (ctx.scenario == "train" and ctx.device == "cuda") else ctx.dtype


def probe(backend: str, device: str, dtype, heads: int, kv_heads: int, head_dim: int, train: bool) -> str | None:
    """Why `backend` cannot serve this model's attention calls here, or None: it runs causal
    prefill (grouped KV heads, no mask), one-token decode and a padding-masked batch (KV heads
    repeated, as transformers passes them with a mask), each with its backward when training."""
    import torch
    from torch.nn.attention import sdpa_kernel

    kernel = _sdpa_backend(backend)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def t(b, h, n):
        x = torch.randn(b, h, n, head_dim, generator=gen).to(device=device, dtype=dtype)
        return x.requires_grad_(train)

    gqa = {"enable_gqa": True} if heads != kv_heads else {}
    mask = torch.ones(2, 1, 8, 8, dtype=torch.bool, device=device).tril()
    mask[1, :, :, :2] = False  # the second row is left-padded by two tokens
    mask[1, :, :2, 0] = True  # pad queries still see one key (no fully masked row)
    rep = heads // kv_heads
    cases = {
        "causal prefill": lambda: torch.nn.functional.scaled_dot_product_attention(
            t(2, heads, 8), t(2, kv_heads, 8), t(2, kv_heads, 8), is_causal=True, **gqa
        ),
        "one-token decode": lambda: torch.nn.functional.scaled_dot_product_attention(
            t(2, heads, 1), t(2, kv_heads, 9), t(2, kv_heads, 9), **gqa
        ),
        "padding mask": lambda: torch.nn.functional.scaled_dot_product_attention(
            t(2, heads, 8),
            t(2, kv_heads, 8).repeat_interleave(rep, 1),
            t(2, kv_heads, 8).repeat_interleave(rep, 1),
            attn_mask=mask,
        ),
    }
    for what, call in cases.items():
        try:
            with sdpa_kernel([kernel]):
                out = call()
                if train:
                    out.float().sum().backward()
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"{what}{' with backward' if train else ''} fails: {first}"
    return None


def _attention_shape(model) -> tuple[int, int, int]:
    cfg = getattr(model, "config", None)
    heads = getattr(cfg, "num_attention_heads", None)
    if heads is None:
        raise TechniqueError(f"attention: {type(model).__name__} has no transformers config with attention heads")
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return heads, kv, head_dim


@register
class Attention(Technique):
    name = "attention"
    family = "attention"
    description = "pins torch's SDPA kernel (math, efficient, flash, cudnn) for the model's attention layers"
    scenarios = ("train", "infer")

    @dataclass(frozen=True)
    class Config:
        # math: reference, scores materialized; flash: tiled, no scores stored (CPU kernel too);
        # efficient / cudnn: CUDA kernels. Unavailable here -> refused, never another kernel.
        backend: Literal["math", "efficient", "flash", "cudnn"] = "math"

    def skip_reason(self, scenario: str, device: str) -> str | None:
        why = super().skip_reason(scenario, device)
        if why is not None:
            return why
        if self.config.backend in CUDA_ONLY and device != "cuda":
            return f"attention backend={self.config.backend!r} is a CUDA kernel; the run's device is {device!r}"
        return None

    def available(self, model, ctx: Context) -> dict[str, str | None]:
        """backend -> None where it serves this model's attention here, else why not."""
        heads, kv, head_dim = _attention_shape(model)
        out = {}
        for b in BACKENDS:
            if b in CUDA_ONLY and ctx.device != "cuda":
                out[b] = f"a CUDA kernel, the device is {ctx.device!r}"
            else:
                out[b] = probe(b, ctx.device, compute_dtype(ctx), heads, kv, head_dim, ctx.scenario == "train")
        return out

    def apply(self, model, ctx: Context):
        why = self.skip_reason(ctx.scenario, ctx.device)
        if why is not None:
            raise TechniqueError(why)
        base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
        if not hasattr(base, "set_attn_implementation"):
            raise TechniqueError(f"attention: {type(base).__name__} has no set_attn_implementation (not transformers)")
        found = self.available(base, ctx)
        dtype = str(compute_dtype(ctx)).replace("torch.", "")
        if found[self.config.backend] is not None:
            valid = [b for b, w in found.items() if w is None]
            raise TechniqueError(
                f"attention backend={self.config.backend!r} is not available on {ctx.device} for {dtype} "
                f"({found[self.config.backend]}); available here: {valid}"
            )
        before = base.config._attn_implementation
        base.set_attn_implementation(_register(self.config.backend))
        ctx.record(self.name, "backend", self.config.backend)
        ctx.record(self.name, "attn_implementation_before", before)
        ctx.record(self.name, "attn_implementation", base.config._attn_implementation)
        ctx.record(self.name, "available_backends", [b for b, w in found.items() if w is None])
        ctx.record(self.name, "compute_dtype", dtype)
        return model
