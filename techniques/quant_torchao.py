"""torchao weight quantization through `quantize_`: `torchao_int8wo`, `torchao_int4wo`, `torchao_fp8`.

What they trade: like the bitsandbytes formats, weight bytes for rounding error, but with
torchao's tensor subclasses and kernels: int8 weight-only (per-row scales; runs wherever torch
runs, CPU included), int4 weight-only (per-group scales and zero points, torch's tinygemm kernel:
CUDA sm80+ and bf16), and fp8 e4m3 (per-row scales; weight-only, or `dynamic` which also casts
activations to fp8 per token and uses fp8 tensor-core matmuls: CUDA sm89+).

After `semi_structured_2_4`, `torchao_fp8` in dynamic mode packs the 2:4-masked weights into
torchao's sparse fp8 format, whose CUTLASS kernel needs sm90 (Hopper); that is the composition
of 2:4 sparsity and 8-bit quantization this torchao (0.18) offers (its int8 + 2:4 layout was
removed with version 1 of the int8 configs). That op takes 2-D activations only, so each packed
layer is fed [batch * tokens, hidden] and its output reshaped back (`feed_2d`).

Only the blocks' Linear layers are quantized; torchao leaves shapes its kernels cannot take in
their original dtype: the technique records how many (`layers_left_unchanged`, shown in the
report's "layers unchanged" column) and which (`layers_left_unquantized`), and the bits per weight
show it too. `torchao_int4wo` refuses, before any work, a group size that does not divide the
input width of some block linear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: the methods import torch and torchao when they run
    import torch

from .base import Context, Technique, TechniqueError, register


def _capability_missing(device: str, need: tuple[int, int], what: str) -> str | None:
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        return f"{what} needs CUDA (device here: {device!r})"
    cap = torch.cuda.get_device_capability()
    return None if cap >= need else f"{what} needs compute capability >= {need[0]}.{need[1]}, GPU has {cap[0]}.{cap[1]}"


def feed_2d(module: torch.nn.Module) -> torch.nn.Module:
    """Let `module` take activations [..., H] although its weight's op takes only [N, H] (torchao's
    sparse fp8 linear squeezes its per-token activation scale on dim 1, as its own tests feed it):
    run it on the flattened [prod(...), H] and restore the leading dims. Changes this instance only."""
    inner = module.forward

    def forward(x, *args, **kwargs):
        if x.dim() == 2:
            return inner(x, *args, **kwargs)
        y = inner(x.reshape(-1, x.shape[-1]), *args, **kwargs)
        return y.reshape(*x.shape[:-1], y.shape[-1])

    module.forward = forward
    return module


class _TorchAO(Technique):
    scenarios = ("infer",)
    requires = ("torchao",)

    def ao_config(self, ctx: Context):
        raise NotImplementedError

    def apply(self, model, ctx: Context):
        import torch
        from torchao.quantization import quantize_

        from ._infer_common import block_linears, record_bits

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        layers = block_linears(model)
        names = {n for n, _ in layers}
        quantize_(base, self.ao_config(ctx), filter_fn=lambda m, fqn: fqn in names)
        layers = [(n, base.get_submodule(n)) for n in names]
        kept = sorted(n for n, m in layers if type(m.weight.data) is torch.Tensor)
        ctx.record(self.name, "layers_left_unchanged", len(kept))  # the report's "layers unchanged" column
        if kept:
            ctx.record(self.name, "layers_left_unquantized", kept)
        record_bits(ctx, self.name, layers)
        return model


@register
class TorchAOInt8WO(_TorchAO):
    name = "torchao_int8wo"
    family = "quantizer"
    description = "torchao int8 weight-only, per-row scales (CPU and CUDA)"

    @dataclass(frozen=True)
    class Config:
        pass

    def ao_config(self, ctx: Context):
        from torchao.quantization import Int8WeightOnlyConfig

        return Int8WeightOnlyConfig(set_inductor_config=False)  # no global inductor settings changed


@register
class TorchAOInt4WO(_TorchAO):
    name = "torchao_int4wo"
    family = "quantizer"
    description = "torchao int4 weight-only, per-group scales and zero points (tinygemm, CUDA sm80+, bf16)"

    @dataclass(frozen=True)
    class Config:
        # weights per scale/zero; lower: better, bigger. 64 divides every block linear's input width
        # of the default model (576 and 1536); torchao leaves a layer whose width it does not divide
        # unquantized (128 would skip 180 of the 210 block linears).
        group_size: Literal[32, 64, 128, 256] = 64

    def skip_reason(self, scenario: str, device: str) -> str | None:
        return super().skip_reason(scenario, device) or _capability_missing(device, (8, 0), self.name)

    def apply(self, model, ctx: Context):
        from ._infer_common import block_linears

        g = self.config.group_size
        widths = sorted({m.in_features for _, m in block_linears(model)})
        if any(w % g for w in widths):
            valid = [v for v in (32, 64, 128, 256) if all(w % v == 0 for w in widths)]
            raise TechniqueError(
                f"{self.name}: group_size={g} does not divide the block linears' input widths "
                f"{widths}, so torchao would leave those layers unquantized; valid here: {valid}"
            )
        return super().apply(model, ctx)

    def ao_config(self, ctx: Context):
        import torch
        from torchao.quantization import Int4WeightOnlyConfig

        if ctx.dtype != torch.bfloat16:
            raise TechniqueError(f"{self.name}: the tinygemm int4 kernel needs bfloat16, the run uses {ctx.dtype}")
        return Int4WeightOnlyConfig(
            group_size=self.config.group_size, int4_packing_format="tile_packed_to_4d", set_inductor_config=False
        )


@register
class TorchAOFP8(_TorchAO):
    name = "torchao_fp8"
    family = "quantizer"
    description = "torchao float8 e4m3 weights, per-row scales; weight-only or dynamic fp8 activations (CUDA sm89+)"

    @dataclass(frozen=True)
    class Config:
        mode: Literal["weight_only", "dynamic"] = "dynamic"  # dynamic: fp8 matmuls, activations rounded too

    def _sparse(self, names) -> bool:
        return (
            "semi_structured_2_4" in names
            and self.config.mode == "dynamic"
            and names.index("semi_structured_2_4") < names.index(self.name)
        )

    def skip_reason(self, scenario: str, device: str) -> str | None:
        return super().skip_reason(scenario, device) or _capability_missing(device, (8, 9), self.name)

    def apply(self, model, ctx: Context):
        import torch

        from ._infer_common import block_linears

        if not self._sparse(list(ctx.techniques)):
            return super().apply(model, ctx)
        why = _capability_missing(ctx.device, (9, 0), "torchao's sparse fp8 (2:4) kernel")
        if why:
            raise TechniqueError(f"{self.name} after semi_structured_2_4: {why}; use mode='weight_only'")
        ctx.record(self.name, "sparse_kernel", "torchao Float8Sparse2x4 (CUTLASS, sm90)")
        model = super().apply(model, ctx)
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        n = 0
        for _, m in block_linears(base):
            if type(m.weight.data) is not torch.Tensor:  # packed by torchao: its op takes 2-D input only
                feed_2d(m)
                n += 1
        ctx.record(self.name, "layers_fed_2d", n)
        return model

    def ao_config(self, ctx: Context):
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, Float8WeightOnlyConfig, PerRow

        if self.config.mode == "weight_only":
            return Float8WeightOnlyConfig(set_inductor_config=False)
        if self._sparse(list(ctx.techniques)):
            from torchao.quantization.quantize_.workflows.float8.float8_packing_format import Float8PackingFormat

            return Float8DynamicActivationFloat8WeightConfig(
                granularity=PerRow(),
                packing_format=Float8PackingFormat.SPARSE_2D_DATA_2D_METADATA,
                set_inductor_config=False,
            )
        return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
