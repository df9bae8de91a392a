"""RMSNorm with a weight, as Llama computes it: y = w * cast(x * rsqrt(mean(x^2) + eps)).

Why a kernel: eager PyTorch reads x several times (upcast, square, mean, scale, cast, multiply)
and keeps fp32 temporaries; the fused kernel reads x once and writes y once, accumulating in fp32.
Forward saves only x, w and the per-row 1/rms (4 B per row); backward recomputes x_hat from them.

Maths (per row of N elements, x_hat = x * rstd, g = dy * w):
    dx = rstd * (g - x_hat * mean(g * x_hat))
    dw = sum over rows of dy * x_hat
Backward runs at most `num_programs_cap` programs, each summing dw over a run of consecutive row
tiles in fp32; the per-program partial sums ([programs, N], fp32) are added by torch at the end.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_device, num_programs_cap, num_warps_for, row_block, rows_per_program, tiles_per_program


@triton.jit
def _rmsnorm_fwd_kernel(X, W, Y, RSTD, M, N, stride_x, stride_y, eps, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    rmask = rows < M
    cmask = cols < N
    mask = rmask[:, None] & cmask[None, :]
    x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=cmask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / N + eps)
    # Llama casting: normalise in fp32, round to the input dtype, then scale by the weight.
    x_hat = (x * rstd[:, None]).to(Y.dtype.element_ty).to(tl.float32)
    y = x_hat * w[None, :]
    tl.store(Y + rows[:, None] * stride_y + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + rows, rstd, mask=rmask)


@triton.jit
def _rmsnorm_bwd_kernel(
    DY,
    X,
    W,
    RSTD,
    DX,
    DW_PART,
    M,
    N,
    stride_dy,
    stride_x,
    stride_dx,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    TILES: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_N)
    cmask = cols < N
    w = tl.load(W + cols, mask=cmask, other=0.0).to(tl.float32)
    dw_acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for t in range(TILES):  # this program's TILES consecutive row tiles (rows >= M are masked)
        rows = ((pid * TILES + t) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
        rmask = rows < M
        mask = rmask[:, None] & cmask[None, :]
        x = tl.load(X + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + rows[:, None] * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + rows, mask=rmask, other=0.0)
        x_hat = x * rstd[:, None]
        g = dy * w[None, :]
        c = tl.sum(g * x_hat, axis=1) / N
        dx = rstd[:, None] * (g - x_hat * c[:, None])
        tl.store(DX + rows[:, None] * stride_dx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
        dw_acc += tl.sum(dy * x_hat, axis=0)
    tl.store(DW_PART + pid * N + cols, dw_acc, mask=cmask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """View as [rows, N] with unit stride along N (copies only when it must)."""
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def fwd_launch(M: int, N: int) -> dict:
    """Launch parameters of the forward kernel for x [M, N]: constexprs and num_warps."""
    bn = row_block(N)
    bm = rows_per_program(bn, M)
    return dict(BLOCK_M=bm, BLOCK_N=bn, num_warps=num_warps_for(bm * bn))


def bwd_launch(M: int, N: int, max_programs: int) -> tuple[int, dict]:
    """Programs and launch parameters of the backward kernel for x [M, N], at most max_programs."""
    launch = fwd_launch(M, N)
    n_tiles = triton.cdiv(M, launch["BLOCK_M"])
    tiles = tiles_per_program(n_tiles, max_programs)
    return triton.cdiv(n_tiles, tiles), dict(launch, TILES=tiles)


def rmsnorm_fwd(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel on x [M, N]; returns y [M, N] (x.dtype) and rstd [M] (fp32)."""
    check_device(x, weight)
    M, N = x.shape
    y = torch.empty((M, N), dtype=x.dtype, device=x.device)
    rstd = torch.empty(M, dtype=torch.float32, device=x.device)
    launch = fwd_launch(M, N)
    _rmsnorm_fwd_kernel[(triton.cdiv(M, launch["BLOCK_M"]),)](
        x, weight, y, rstd, M, N, x.stride(0), y.stride(0), eps, **launch
    )
    return y, rstd


def rmsnorm_bwd(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor):
    """Launch the backward kernel; returns dx [M, N] (x.dtype) and dw [N] (weight.dtype)."""
    M, N = x.shape
    dx = torch.empty_like(x)
    programs, launch = bwd_launch(M, N, num_programs_cap(x.device))
    dw_part = torch.empty((programs, N), dtype=torch.float32, device=x.device)
    _rmsnorm_bwd_kernel[(programs,)](
        dy, x, weight, rstd, dx, dw_part, M, N, dy.stride(0), x.stride(0), dx.stride(0), **launch
    )
    return dx, dw_part.sum(0).to(weight.dtype)


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float):
        x2 = _rows(x)
        y, rstd = rmsnorm_fwd(x2, weight, eps)
        ctx.save_for_backward(x2, weight, rstd)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x2, weight, rstd = ctx.saved_tensors
        dx, dw = rmsnorm_bwd(_rows(dy), x2, weight, rstd)
        return dx.view(dy.shape), dw, None


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Fused RMSNorm over the last dimension of x (any leading shape); output dtype is x.dtype."""
    return RMSNormFunction.apply(x, weight, eps)


def rmsnorm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Plain PyTorch reference, the same maths and casts as transformers' LlamaRMSNorm."""
    xf = x.float()
    x_hat = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x_hat.to(x.dtype)
