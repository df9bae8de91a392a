"""`float8`: fine-tuning with the blocks' matmuls in float8 (torchao.float8, `convert_to_float8_training`).

What it trades: every converted Linear casts its input, weight and output gradient to float8
(e4m3; dynamic scales per tensor, or per row for the `rowwise` recipes) for the forward and both
backward matmuls, which run on fp8 tensor cores at up to twice the bf16 rate; the master weights,
optimizer and everything outside the converted layers keep their precision. The casts cost memory
traffic of their own, so it pays only where the matmuls are large enough (torchao measures its
speed-ups with torch.compile fusing the casts; a 576-wide model at a small batch may well be
slower: the result says which).

Where: CUDA GPUs with fp8 tensor cores. `tensorwise` (cuBLAS) needs compute capability 8.9 (Ada,
Hopper, Blackwell); the `rowwise` recipes use a CUTLASS kernel built for 9.0. Refused up front
everywhere else (CPU included): torch._scaled_mm has no CPU kernel that would make a speed figure
mean anything.

Which layers: the blocks' Linears whose in and out widths are multiples of 16 (the fp8 matmul's
alignment); the output head stays in bf16, as torchao's recipes recommend. Layers left in their
precision are counted and named in the run's records (`layers_left_unchanged`), and a run in
which none qualify is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .base import Context, Technique, TechniqueError, register

RECIPES = {"tensorwise": (8, 9), "rowwise": (9, 0), "rowwise_with_gw_hp": (9, 0)}  # recipe -> compute capability
ALIGN = 16  # torch._scaled_mm: both matmul dims of a float8 operand divisible by 16


def convertible(module) -> bool:
    return module.in_features % ALIGN == 0 and module.out_features % ALIGN == 0


@register
class Float8Training(Technique):
    name = "float8"
    family = "precision"
    description = "float8 training matmuls (torchao.float8; CUDA sm89+, rowwise sm90+)"
    scenarios = ("train",)
    requires = ("torchao", "cuda")

    @dataclass(frozen=True)
    class Config:
        # torchao's recipes: tensorwise (fastest), rowwise (more accurate), rowwise_with_gw_hp
        # (the weight gradient in high precision: the most accurate)
        recipe: Literal["tensorwise", "rowwise", "rowwise_with_gw_hp"] = "tensorwise"

    def skip_reason(self, scenario: str, device: str) -> str | None:
        why = super().skip_reason(scenario, device)
        if why:
            return why
        import torch

        need = RECIPES[self.config.recipe]
        cap = torch.cuda.get_device_capability()
        if cap < need:
            return (
                f"float8 recipe {self.config.recipe!r} needs compute capability >= {need[0]}.{need[1]}, "
                f"this GPU has {cap[0]}.{cap[1]}"
            )
        return None

    def plan(self, model) -> tuple[list[str], list[str]]:
        """(names of the block Linears to convert, names left unchanged), the output head excluded."""
        from ._infer_common import block_linears

        layers = block_linears(model)
        return [n for n, m in layers if convertible(m)], [n for n, m in layers if not convertible(m)]

    def apply(self, model, ctx: Context):
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        convert, kept = self.plan(model)
        if not convert:
            raise TechniqueError(f"float8: no block Linear has widths divisible by {ALIGN}; nothing to convert")
        names = set(convert)
        convert_to_float8_training(
            base,
            config=Float8LinearConfig.from_recipe_name(self.config.recipe),
            module_filter_fn=lambda mod, fqn: fqn in names,
        )
        done = sorted(n for n in names if type(base.get_submodule(n)).__name__ == "Float8Linear")
        ctx.record(self.name, "recipe", self.config.recipe)
        ctx.record(self.name, "layers_converted", len(done))
        ctx.record(self.name, "layers_left_unchanged", len(kept) + len(names) - len(done))
        if kept:
            ctx.record(self.name, "layers_left_unconverted", kept)
        return model
