"""bitsandbytes weight quantization for inference: `int8` (LLM.int8) and `nf4` / `fp4` (4-bit).

What they trade: weight bytes (8 or ~4.1 bits per weight instead of 16/32) for rounding error in
every block Linear, and on most hardware some speed (dequantization or int8 matmuls around
the outliers). Embeddings and the output head stay as they are.

- `int8`: Linear8bitLt with int8 weights and one fp32 scale per output row (8 + 32/in_features
  bits per weight). Activation columns with any |value| > `threshold` go through a 16-bit matmul
  (LLM.int8's outlier decomposition); threshold 0 quantizes every column.
- `nf4` / `fp4`: Linear4bit through techniques/bnb4bit.quantize_linear_4bit (shared with the
  training techniques): 4 bits per weight, one absmax per `blocksize` weights (fp32, or 8-bit with
  `double_quant`).

Each records the achieved bits per weight, measured from the stored tensors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from .base import Context, Technique, at_least, register


class _Once(logging.Filter):
    """Passes each distinct message once: bitsandbytes logs the same fp16-cast warning on every
    int8 matmul (about 12,000 lines, 1 MB, in one reduced CPU run)."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg in self.seen:
            return False
        self.seen.add(msg)
        return True


@register
class Int8(Technique):
    name = "int8"
    family = "quantizer"
    description = "bitsandbytes LLM.int8: int8 weights with row scales, outlier activation columns in 16-bit"
    scenarios = ("infer",)
    requires = ("bitsandbytes",)

    @dataclass(frozen=True)
    class Config:
        threshold: float = 6.0  # |activation| above which a column runs in 16-bit; 0: all int8 (faster, worse)

        ranges = {"threshold": at_least(0.0)}

    def apply(self, model, ctx: Context):
        import bitsandbytes as bnb
        import torch

        from ._infer_common import block_linears, record_bits

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        new = []
        for name, lin in block_linears(model):
            if type(lin) is not torch.nn.Linear:
                continue
            q = bnb.nn.Linear8bitLt(
                lin.in_features,
                lin.out_features,
                bias=lin.bias is not None,
                has_fp16_weights=False,
                threshold=self.config.threshold,
                device="meta",
            )
            # Int8Params.to(device) quantizes (int8 rows + fp32 absmax per row, SCB) only when the
            # data starts on the CPU: a weight already on the GPU would be moved, not quantized.
            w = lin.weight.data
            q.weight = bnb.nn.Int8Params(w.cpu(), requires_grad=False, has_fp16_weights=False).to(w.device)
            if lin.bias is not None:
                q.bias = torch.nn.Parameter(lin.bias.data, requires_grad=False)
            q.train(lin.training)
            parent, _, attr = name.rpartition(".")
            setattr(base.get_submodule(parent) if parent else base, attr, q)
            new.append((name, q))
        record_bits(ctx, self.name, new)
        ctx.record(self.name, "threshold", self.config.threshold)
        log = logging.getLogger("bitsandbytes.autograd._functions")  # logging only; one process per run
        if not any(isinstance(f, _Once) for f in log.filters):
            log.addFilter(_Once())
        return model


class _FourBit(Technique):
    # train: only as the base of adapters (`[nf4, lora]` is the same run as `qlora`)
    scenarios = ("train", "infer")
    train_needs_after = ("lora",)
    requires = ("bitsandbytes",)
    quant_type = ""

    @dataclass(frozen=True)
    class Config:
        blocksize: int = 64  # weights per absmax; higher: fewer constants, more rounding error
        double_quant: bool = True  # 8-bit absmax (+0.13 bits/weight) instead of fp32 (+0.5 at 64)
        compute_dtype: Literal["float32", "bfloat16", "float16"] | None = None  # None: bnb4bit.default_compute_dtype
        cpu_repack: bool = False  # allow bnb's faster CPU layout (changes the stored format at first use)

        def __post_init__(self):
            from . import _bnb4bit as bnb4bit

            if self.blocksize not in bnb4bit.BLOCKSIZES:
                raise ValueError(f"blocksize {self.blocksize} not supported; valid: {list(bnb4bit.BLOCKSIZES)}")

    def apply(self, model, ctx: Context):
        from . import _bnb4bit as bnb4bit
        from ._infer_common import record_bits

        cfg = self.config
        bnb4bit.quantize_linear_4bit(
            model,
            self.quant_type,
            cfg.double_quant,
            cfg.compute_dtype or bnb4bit.default_compute_dtype(ctx),
            cfg.blocksize,
            cpu_repack=cfg.cpu_repack,
        )
        mods = bnb4bit.linear4bit_modules(model)
        if cfg.cpu_repack:
            for m in mods:  # bnb's CPU packing needs out_features % 32 == 0 (it asserts otherwise)
                if m.out_features % 32:
                    m.support_avx512bf16_for_cpu = False
            ctx.record(
                self.name,
                "note",
                "cpu_repack: on CPUs with AVX512-BF16 bitsandbytes repacks the weights "
                "at the first forward and expands double-quantized absmax; the bits "
                "recorded here are those before that",
            )
        names = {id(m): n for n, m in model.named_modules()}
        record_bits(ctx, self.name, [(names[id(m)], m) for m in mods])
        return model


@register
class NF4(_FourBit):
    name = "nf4"
    family = "quantizer"
    description = "bitsandbytes 4-bit NormalFloat weights (QLoRA's format), blockwise absmax"
    quant_type = "nf4"


@register
class FP4(_FourBit):
    name = "fp4"
    family = "quantizer"
    description = "bitsandbytes 4-bit float weights (e2m1), blockwise absmax"
    quant_type = "fp4"
