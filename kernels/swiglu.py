"""SwiGLU activation of a Llama MLP: y = silu(gate) * up, elementwise, fp32 inside.

Why a kernel: eager PyTorch writes silu(gate) to memory and reads it back for the product, and
its backward materialises several temporaries. The fused forward reads gate and up once and
writes y once; it saves gate and up (not silu(gate)) and the backward recomputes the sigmoid.

Maths (s = sigmoid(g)):  dy/dg = s * (1 + g * (1 - s)) * up,  dy/du = g * s.

In-place-friendly backward: with `in_place=True` the backward writes d_gate and d_up into the
storage of the saved gate and up tensors, which are dead by then in an MLP (the Linear layers that
produced them saved their inputs, not their outputs), so backward allocates nothing. Only use it
when nothing else reads gate/up afterwards; the default allocates fresh gradients.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_device, num_warps_for

BLOCK = 2048  # elements per program (fp32 registers: 8 KiB), 8 warps at 256 elements per warp


@triton.jit
def _swiglu_fwd_kernel(G, U, Y, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    y = g * tl.sigmoid(g) * u
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_bwd_kernel(DY, G, U, DG, DU, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dy = tl.load(DY + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(g)
    silu = g * s
    dg = dy * u * s * (1.0 + g * (1.0 - s))
    du = dy * silu
    # DG/DU may alias G/U (in-place backward): every element is read above before it is written.
    tl.store(DG + offs, dg.to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offs, du.to(DU.dtype.element_ty), mask=mask)


def launch() -> dict:
    """Launch parameters of both kernels (any size: the block is fixed): constexprs and num_warps."""
    return dict(BLOCK=BLOCK, num_warps=num_warps_for(BLOCK))


def swiglu_fwd(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Launch the forward kernel on contiguous gate and up of one shape; returns y (gate.dtype)."""
    check_device(gate, up)
    y = torch.empty_like(gate)
    n = gate.numel()
    _swiglu_fwd_kernel[(triton.cdiv(n, BLOCK),)](gate, up, y, n, **launch())
    return y


def swiglu_bwd(dy: torch.Tensor, gate: torch.Tensor, up: torch.Tensor, in_place: bool = False):
    """Launch the backward kernel; returns (d_gate, d_up), written into gate/up when in_place."""
    dg = gate if in_place else torch.empty_like(gate)
    du = up if in_place else torch.empty_like(up)
    n = gate.numel()
    _swiglu_bwd_kernel[(triton.cdiv(n, BLOCK),)](dy, gate, up, dg, du, n, **launch())
    return dg, du


class SwiGLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor, in_place: bool):
        if gate.shape != up.shape:
            raise ValueError(f"swiglu: gate {tuple(gate.shape)} and up {tuple(up.shape)} differ in shape")
        gate, up = gate.contiguous(), up.contiguous()
        ctx.in_place = in_place
        ctx.save_for_backward(gate, up)
        return swiglu_fwd(gate, up)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        gate, up = ctx.saved_tensors
        dg, du = swiglu_bwd(dy.contiguous(), gate, up, ctx.in_place)
        return dg, du, None


def swiglu(gate: torch.Tensor, up: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """Fused silu(gate) * up; `in_place=True` lets backward reuse gate/up storage (see above)."""
    return SwiGLUFunction.apply(gate, up, in_place)


def swiglu_ref(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch reference, as LlamaMLP computes it: act_fn(gate_proj(x)) * up_proj(x)."""
    return torch.nn.functional.silu(gate) * up
