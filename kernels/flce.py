"""Fused linear + cross-entropy: loss(x @ W^T, labels) without ever holding the full logits.

For a causal LM the logits are [tokens, vocabulary]: 32K tokens x 49152 x 4 B (fp32) = 6.4 GB, the
largest tensor of a training step. Here the tokens go through in chunks; for each chunk
    logits = x_c @ W^T                                  (torch matmul: cuBLAS on GPU)
    Triton kernel, one program per row: logsumexp, the row's loss, and the gradient of the loss
        wrt the logits written over the logits buffer  (softmax - target, times the reduction scale)
    dx_c = dlogits @ W,  dW += dlogits^T @ x_c           (torch matmuls)
so the gradients wrt hidden states and weight are computed in the forward pass and the chunk's
logits are dropped; backward only scales the stored gradients by the incoming grad_output.

Matches torch.nn.functional.cross_entropy: ignore_index rows count neither in the loss nor in the
mean's denominator (all rows ignored: loss is nan, as torch's); label smoothing eps mixes the
target with the uniform distribution: loss = (1-eps) * (lse - z_y) + eps * (lse - mean_j z_j).
Gradient wrt logit j: softmax_j - (1-eps) * [j == y] - eps / V, times 1/n_valid for "mean".
The row maths is fp32 whatever the input dtype; dW accumulates in fp32 across chunks.
No bias (Llama's lm_head has none).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_device, num_warps_for

MAX_BLOCK_V = 4096  # vocabulary lanes per loop step (fp32: 16 KiB of registers, 16 warps)
MIN_CHUNK_TOKENS = 128  # below this the chunk matmuls get too thin to run well on tensor cores


@triton.jit
def _ce_grad_kernel(
    LOGITS,
    stride_l,
    LABELS,
    LOSS,
    V,
    ignore_index,
    scale,
    eps,
    BLOCK_V: tl.constexpr,
    N_BLOCKS: tl.constexpr,
    SMOOTH: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    ptr = LOGITS + row * stride_l
    label = tl.load(LABELS + row)
    valid = label != ignore_index
    keep = tl.where(valid, 1.0, 0.0)  # ignored rows: zero loss, zero gradient
    # Pass 1: online max and sum of exp (fp32), plus the sum of logits for label smoothing.
    m = float("-inf")
    acc = 0.0
    z_sum = 0.0
    for i in range(N_BLOCKS):
        offs = i * BLOCK_V + tl.arange(0, BLOCK_V)
        z = tl.load(ptr + offs, mask=offs < V, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(z, axis=0))
        acc = acc * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), axis=0)
        m = m_new
        if SMOOTH:
            z_sum += tl.sum(tl.where(offs < V, z, 0.0), axis=0)
    lse = m + tl.log(acc)
    z_y = tl.load(ptr + tl.where(valid, label, 0)).to(tl.float32)
    loss = (1.0 - eps) * (lse - z_y)
    if SMOOTH:
        loss += eps * (lse - z_sum / V)
    # Pass 2: overwrite the logits with d(loss * scale)/d(logits).
    g_scale = scale * keep
    for i in range(N_BLOCKS):
        offs = i * BLOCK_V + tl.arange(0, BLOCK_V)
        z = tl.load(ptr + offs, mask=offs < V, other=0.0).to(tl.float32)
        g = tl.exp(z - lse) - tl.where(offs == label, 1.0 - eps, 0.0)
        if SMOOTH:
            g -= eps / V
        tl.store(ptr + offs, (g * g_scale).to(LOGITS.dtype.element_ty), mask=offs < V)
    tl.store(LOSS + row, loss * keep)


def chunk_tokens_for(n_tokens: int, hidden: int, vocab: int) -> int:
    """Tokens per chunk: a chunk's logits about as large as all the hidden states (C*V ~ N*H),
    at least MIN_CHUNK_TOKENS, rounded up to a power of two, at most n_tokens."""
    c = triton.next_power_of_2(triton.cdiv(n_tokens, triton.cdiv(vocab, hidden)))
    return max(1, min(n_tokens, max(MIN_CHUNK_TOKENS, c)))


def flce_forward(
    x,
    weight,
    labels,
    ignore_index=-100,
    label_smoothing=0.0,
    reduction="mean",
    chunk_tokens=None,
    need_dx=True,
    need_dw=True,
):
    """Loss (fp32 scalar) and the gradients (dx [N, H] in x.dtype, dW [V, H] in W.dtype, or None)
    of loss wrt x [N, H] and weight [V, H], for integer labels [N].

    Under torch.autocast the chunk matmuls run in the autocast dtype (as an autocast lm_head
    would), and the gradients come back in the dtypes of x and weight (fp32 master weights)."""
    check_device(x, weight)
    dev = x.device.type
    amp = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
    with torch.autocast(dev, enabled=False):  # explicit dtypes below; out= and addmm_ need them
        loss, dx, dw = _flce_chunks(
            x.to(amp or x.dtype),
            weight.to(amp or weight.dtype),
            labels,
            ignore_index,
            label_smoothing,
            reduction,
            chunk_tokens,
            need_dx,
            need_dw,
            weight.dtype,
        )
    return loss, (dx.to(x.dtype) if dx is not None else None), dw


def ce_launch(V: int, smooth: bool) -> dict:
    """Launch parameters of the cross-entropy gradient kernel over a vocabulary of V: constexprs
    (vocabulary block, blocks per row, smoothing on/off) and num_warps."""
    block_v = min(MAX_BLOCK_V, triton.next_power_of_2(V))
    return dict(
        BLOCK_V=block_v, N_BLOCKS=triton.cdiv(V, block_v), SMOOTH=bool(smooth), num_warps=num_warps_for(block_v)
    )


def _flce_chunks(x, weight, labels, ignore_index, label_smoothing, reduction, chunk_tokens, need_dx, need_dw, dw_dtype):
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction {reduction!r}; valid: 'mean', 'sum'")
    N, H = x.shape
    V = weight.shape[0]
    labels = labels.reshape(-1).contiguous()
    valid = labels != ignore_index
    if bool((valid & ((labels < 0) | (labels >= V))).any()):
        raise ValueError(f"labels outside [0, {V}) that are not ignore_index={ignore_index}")
    n_valid = valid.sum().item() if reduction == "mean" else 1
    scale = 1.0 / n_valid if n_valid > 0 else 0.0
    chunk = chunk_tokens or chunk_tokens_for(N, H, V)
    launch = ce_launch(V, label_smoothing > 0)
    loss_rows = torch.empty(N, dtype=torch.float32, device=x.device)
    dx = torch.empty_like(x) if need_dx else None
    dw = torch.zeros((V, H), dtype=torch.float32, device=x.device) if need_dw else None
    for start in range(0, N, chunk):
        xc = x[start : start + chunk]
        logits = xc @ weight.t()  # [c, V], x.dtype; becomes dloss/dlogits in place
        _ce_grad_kernel[(xc.shape[0],)](
            logits,
            logits.stride(0),
            labels[start : start + chunk],
            loss_rows[start : start + chunk],
            V,
            ignore_index,
            scale,
            float(label_smoothing),
            **launch,
        )
        if need_dx:
            torch.mm(logits, weight, out=dx[start : start + chunk])
        if need_dw:
            if dw.dtype == logits.dtype:
                dw.addmm_(logits.t(), xc)
            else:  # bf16/fp16 product, accumulated in fp32 across chunks
                dw += torch.mm(logits.t(), xc)
    loss = loss_rows.sum() / n_valid if reduction == "mean" else loss_rows.sum()
    return loss, dx, (dw.to(dw_dtype) if need_dw else None)


class FusedLinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, labels, ignore_index, label_smoothing, reduction, chunk_tokens):
        shape = x.shape
        loss, dx, dw = flce_forward(
            x.reshape(-1, shape[-1]),
            weight,
            labels,
            ignore_index,
            label_smoothing,
            reduction,
            chunk_tokens,
            need_dx=ctx.needs_input_grad[0],
            need_dw=ctx.needs_input_grad[1],
        )
        ctx.x_shape = shape
        ctx.save_for_backward(*(t for t in (dx, dw) if t is not None))
        ctx.has = (dx is not None, dw is not None)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        saved = list(ctx.saved_tensors)
        # A 0-dim fp32 grad_loss does not promote the product: dx/dW keep their dtypes.
        dx = saved.pop(0) * grad_loss if ctx.has[0] else None
        dw = saved.pop(0) * grad_loss if ctx.has[1] else None
        if dx is not None:
            dx = dx.view(ctx.x_shape)
        return dx, dw, None, None, None, None, None


def fused_linear_cross_entropy(
    x,
    weight,
    labels,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    chunk_tokens: int | None = None,
) -> torch.Tensor:
    """cross_entropy(x @ weight.T, labels) for x [..., H], weight [V, H], labels [...] (fp32 loss)."""
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):  # eval: loss only
        return flce_forward(
            x.reshape(-1, x.shape[-1]),
            weight,
            labels,
            ignore_index,
            label_smoothing,
            reduction,
            chunk_tokens,
            need_dx=False,
            need_dw=False,
        )[0]
    return FusedLinearCrossEntropyFunction.apply(
        x, weight, labels, ignore_index, label_smoothing, reduction, chunk_tokens
    )


def fused_linear_cross_entropy_ref(
    x, weight, labels, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    """Plain PyTorch reference: full logits, upcast to fp32 as transformers' loss does."""
    logits = (x.reshape(-1, x.shape[-1]) @ weight.t()).float()
    return torch.nn.functional.cross_entropy(
        logits, labels.reshape(-1), ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction
    )
