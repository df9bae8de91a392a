"""`qlora`: the block linear weights stored 4-bit through bitsandbytes (nf4 or fp4, optional
double quantization), then LoRA adapters on top, after peft's k-bit training preparation.

What it trades: the frozen base weights take ~0.5 B per weight plus quantization constants
(0.5 + 1/64 + ~0.0002 B with nf4, blocksize 64 and double quantization) instead of 2 B (bf16) or
4 B (fp32), which is what lets a model several times larger fit in the same memory. The price:
every forward and backward dequantizes each weight block before the matmul (slower steps), and
the model trains against a rounded copy of its weights (some accuracy). Embeddings and lm_head
stay unquantized (on tied-embedding models they are the same matrix).

`qlora` = bnb4bit.quantize_linear_4bit + lora.add_adapters; the run `[nf4, lora]` with the same
settings is the same model (tests/test_training_techniques.py checks trainable parameters and
logits). Gradient checkpointing, part of the original QLoRA recipe, is left to `grad_ckpt` so its
cost and saving are measured separately.

Records (technique_records["qlora"]): quantized_layers, quantized_weight_bytes (packed weights +
constants of the 4-bit layers), plus lora's adapter records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import Context, register
from .lora import Lora, LoraParams, add_adapters


@register
class Qlora(Lora):
    name = "qlora"
    description = "QLoRA: block linear weights 4-bit (bitsandbytes nf4/fp4) + LoRA adapters through peft"
    requires = ("peft", "bitsandbytes")
    conflicts_with = ("lora", "nf4", "fp4", "int8")  # qlora quantizes the weights itself

    @dataclass(frozen=True)
    class Config(LoraParams):
        quant_type: Literal["nf4", "fp4"] = "nf4"  # nf4: levels at normal quantiles (QLoRA's choice)
        double_quant: bool = True  # absmax constants 8-bit (1 B/64 weights) instead of fp32 (4 B/64)
        # None: bf16 when fine-tuning on CUDA (the autocast dtype), else the run's dtype. The weights
        # are quantized from this dtype and dequantized to it (bnb4bit.quantize_linear_4bit).
        compute_dtype: Literal["float32", "bfloat16", "float16"] | None = None
        blocksize: Literal[64, 128, 256, 512, 1024, 2048, 4096] = 64  # weights per absmax constant

    def skip_reason(self, scenario: str, device: str) -> str | None:
        reason = super().skip_reason(scenario, device)
        if reason is None and device not in ("cpu", "cuda"):
            reason = f"qlora: bitsandbytes 4-bit runs on 'cpu' and 'cuda' here, not {device!r}"
        return reason

    def apply(self, model, ctx: Context):
        from ._bnb4bit import default_compute_dtype, linear4bit_bytes, linear4bit_modules, quantize_linear_4bit

        c = self.config
        model = quantize_linear_4bit(
            model,
            quant_type=c.quant_type,
            compress_statistics=c.double_quant,
            compute_dtype=c.compute_dtype or default_compute_dtype(ctx),
            blocksize=c.blocksize,
        )
        mods = linear4bit_modules(model)
        ctx.record(self.name, "quantized_layers", len(mods))
        ctx.record(self.name, "quantized_weight_bytes", linear4bit_bytes(model))  # B
        return add_adapters(model, c, ctx, self.name)
