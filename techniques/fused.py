"""`fused`: swap a Llama model instance's RMSNorm, SwiGLU, rotary embedding and loss for the
Triton kernels in effbench.kernels.

What it trades: fewer memory round trips per layer (each fused op reads its inputs once and
writes its output once) and, with `flce`, no [tokens, vocab] logits tensor in training, for
bit-level differences from eager PyTorch (fp32 accumulation, one rounding instead of several).
Logits and losses match the unfused model to within the tolerances tests/test_fused_technique.py
states.

How: forwards are bound onto the given model's module instances (types.MethodType), never on the
transformers classes, so other models in the process are untouched. Llama architecture only
(LlamaForCausalLM, possibly wrapped by peft); anything else raises TechniqueError.

On CPU the kernels run only through Triton's interpreter, which is for correctness, not speed: the
technique is skipped there unless TRITON_INTERPRET=1 is set (tests set it).
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass

from .base import Context, Technique, TechniqueError, register

SUPPORTED = ("LlamaForCausalLM",)


def _base_model(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


@register
class Fused(Technique):
    name = "fused"
    family = "kernels"
    description = "Triton fused kernels (RMSNorm, SwiGLU, RoPE, fused linear cross-entropy) on a Llama model"
    requires = ("triton",)

    @dataclass(frozen=True)
    class Config:
        rmsnorm: bool = True  # fused RMSNorm (fp32 statistics); saves one fp32 row stat per token
        swiglu: bool = True  # fused silu(gate) * up in the MLP
        swiglu_in_place: bool = True  # backward reuses gate/up storage; false if another technique keeps them
        rope: bool = True  # fused rotary embedding of q and k
        flce: bool = True  # loss without logits (logits=None when labels are given): large memory saving

    def skip_reason(self, scenario: str, device: str) -> str | None:
        reason = super().skip_reason(scenario, device)
        if reason:
            return reason
        if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            return (
                "fused runs Triton kernels, which on CPU only run through Triton's interpreter: "
                "correct but far slower than eager, so timing them would mislead "
                "(set TRITON_INTERPRET=1 to run anyway, as the tests do)"
            )
        if device not in ("cpu", "cuda"):
            return f"fused needs device 'cuda' (or 'cpu' with TRITON_INTERPRET=1), not {device!r}"
        return None

    def apply(self, model, ctx: Context):
        import torch
        from transformers.models.llama import modeling_llama as ml

        from . import _fused_llama as fl  # imports triton: only once we know we run

        base = _base_model(model)
        if not isinstance(base, ml.LlamaForCausalLM):
            raise TechniqueError(
                f"fused: unsupported architecture {type(base).__name__}; supported: {', '.join(SUPPORTED)}"
            )
        cfg = self.config
        if cfg.swiglu and base.config.hidden_act not in ("silu", "swish"):
            raise TechniqueError(
                f"fused: swiglu needs hidden_act 'silu', model has {base.config.hidden_act!r}; set swiglu=false"
            )
        if cfg.flce and (type(base.lm_head) is not torch.nn.Linear or base.lm_head.bias is not None):
            raise TechniqueError(
                f"fused: flce needs a plain bias-free nn.Linear lm_head, got "
                f"{type(base.lm_head).__name__}; set flce=false"
            )
        counts = {"rmsnorm": 0, "swiglu": 0, "rope": 0, "flce": 0}
        for module in base.modules():
            if cfg.rmsnorm and isinstance(module, ml.LlamaRMSNorm):
                module.forward = types.MethodType(fl.rmsnorm_forward, module)
                counts["rmsnorm"] += 1
            elif cfg.swiglu and isinstance(module, ml.LlamaMLP):
                module._fused_swiglu_in_place = cfg.swiglu_in_place
                module.forward = types.MethodType(fl.mlp_forward, module)
                counts["swiglu"] += 1
            elif cfg.rope and isinstance(module, ml.LlamaAttention):
                module.forward = types.MethodType(fl.attention_forward, module)
                counts["rope"] += 1
        if cfg.flce:
            base._fused_orig_forward = base.forward  # the class's forward, bound to this instance
            base.forward = types.MethodType(fl.causal_lm_forward, base)
            counts["flce"] = 1
        ctx.record(self.name, "modules_swapped", counts)
        return model
