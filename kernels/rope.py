"""Rotary position embedding on q and k, Llama convention (transformers' apply_rotary_pos_emb):

    q' = q * cos + rotate_half(q) * sin,   rotate_half([x1, x2]) = [-x2, x1]   (halves of head_dim)

with q [batch, heads, seq, head_dim], k [batch, kv_heads, seq, head_dim] (any strides with a unit
last stride, e.g. the transposed views LlamaAttention makes) and cos/sin [batch or 1, seq,
head_dim] as LlamaRotaryEmbedding returns them.

Why a kernel: eager PyTorch materialises rotate_half (a cat of a negated half) and four products
per tensor; the kernel reads q, k and one cos/sin row per position once and writes q', k' once.

Backward is the transpose of the same rotation: dx1 = dy1*c1 + dy2*s2, dx2 = dy2*c2 - dy1*s1,
so one kernel serves both directions (BACKWARD flag). cos/sin are constants in a model (made under
no_grad); if they do require grad, their gradients are computed with plain torch (not a hot path).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._launch import check_device, num_warps_for


@triton.jit
def _rope_rows(
    X,
    O,  # noqa: E741 (the output pointer, beside X)
    b,
    s,
    sxb,
    sxh,
    sxs,
    sob,
    soh,
    sos,
    n_heads,
    c1,
    c2,
    sa,
    sb,
    HALF,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Rotate all heads of x at one (batch, position): o1 = x1*c1 - x2*sa, o2 = x2*c2 + x1*sb."""
    h = tl.arange(0, BLOCK_H)
    d = tl.arange(0, BLOCK_D)
    mask = (h < n_heads)[:, None] & (d < HALF)[None, :]
    xp = X + b * sxb + s * sxs + h[:, None] * sxh + d[None, :]
    op = O + b * sob + s * sos + h[:, None] * soh + d[None, :]
    x1 = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(xp + HALF, mask=mask, other=0.0).to(tl.float32)
    o1 = x1 * c1[None, :] - x2 * sa[None, :]
    o2 = x2 * c2[None, :] + x1 * sb[None, :]
    tl.store(op, o1.to(O.dtype.element_ty), mask=mask)
    tl.store(op + HALF, o2.to(O.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(
    Q,
    K,
    QO,
    KO,
    COS,
    SIN,
    S,
    n_q,
    n_k,
    HALF,
    sqb,
    sqh,
    sqs,
    skb,
    skh,
    sks,
    sqob,
    sqoh,
    sqos,
    skob,
    skoh,
    skos,
    scb,
    scs,
    BLOCK_HQ: tl.constexpr,
    BLOCK_HK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BACKWARD: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)  # one program per (batch, position)
    b = pid // S
    s = pid % S
    d = tl.arange(0, BLOCK_D)
    dmask = d < HALF
    cp = COS + b * scb + s * scs + d
    sp = SIN + b * scb + s * scs + d
    c1 = tl.load(cp, mask=dmask, other=0.0).to(tl.float32)
    c2 = tl.load(cp + HALF, mask=dmask, other=0.0).to(tl.float32)
    s1 = tl.load(sp, mask=dmask, other=0.0).to(tl.float32)
    s2 = tl.load(sp + HALF, mask=dmask, other=0.0).to(tl.float32)
    if BACKWARD:  # transpose of the rotation
        sa = -s2
        sb = -s1
    else:
        sa = s1
        sb = s2
    _rope_rows(Q, QO, b, s, sqb, sqh, sqs, sqob, sqoh, sqos, n_q, c1, c2, sa, sb, HALF, BLOCK_HQ, BLOCK_D)
    _rope_rows(K, KO, b, s, skb, skh, sks, skob, skoh, skos, n_k, c1, c2, sa, sb, HALF, BLOCK_HK, BLOCK_D)


def _unit_last(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def launch(n_q: int, n_k: int, head_dim: int) -> dict:
    """Launch parameters for n_q query and n_k key/value heads of head_dim: constexprs, num_warps.
    A program holds both halves of every q and k head: 2 * (BLOCK_HQ + BLOCK_HK) * BLOCK_D values."""
    bd = triton.next_power_of_2(head_dim // 2)
    bhq, bhk = triton.next_power_of_2(n_q), triton.next_power_of_2(n_k)
    return dict(BLOCK_HQ=bhq, BLOCK_HK=bhk, BLOCK_D=bd, num_warps=num_warps_for(2 * (bhq + bhk) * bd))


def rope_apply(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, backward: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel: rotate q and k (or, with backward=True, their output gradients)."""
    check_device(q, k, cos, sin)
    q, k = _unit_last(q), _unit_last(k)
    B, n_q, S, D = q.shape
    if D % 2 or k.shape[0] != B or k.shape[2] != S or k.shape[3] != D:
        raise ValueError(f"rope: q {tuple(q.shape)} and k {tuple(k.shape)} need equal batch, seq, even head_dim")
    cos = _unit_last(cos.expand(B, S, D))  # a batch of 1 broadcasts through stride 0
    sin = _unit_last(sin.expand(B, S, D))
    if cos.stride() != sin.stride():
        cos, sin = cos.contiguous(), sin.contiguous()
    qo, ko = torch.empty_like(q), torch.empty_like(k)  # same layout as the inputs
    n_k = k.shape[1]
    _rope_kernel[(B * S,)](
        q,
        k,
        qo,
        ko,
        cos,
        sin,
        S,
        n_q,
        n_k,
        D // 2,
        q.stride(0),
        q.stride(1),
        q.stride(2),
        k.stride(0),
        k.stride(1),
        k.stride(2),
        qo.stride(0),
        qo.stride(1),
        qo.stride(2),
        ko.stride(0),
        ko.stride(1),
        ko.stride(2),
        cos.stride(0),
        cos.stride(1),
        BACKWARD=backward,
        **launch(n_q, n_k, D),
    )
    return qo, ko


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _reduce_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return g.sum(0, keepdim=True) if shape[0] == 1 and g.shape[0] != 1 else g


class RopeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, cos, sin):
        qo, ko = rope_apply(q, k, cos, sin)
        ctx.need_cs = ctx.needs_input_grad[2] or ctx.needs_input_grad[3]
        ctx.save_for_backward(cos, sin, *((q, k) if ctx.need_cs else ()))
        return qo, ko

    @staticmethod
    def backward(ctx, dq, dk):
        cos, sin, *qk = ctx.saved_tensors
        dq_in, dk_in = rope_apply(dq, dk, cos, sin, backward=True)
        dcos = dsin = None
        if ctx.need_cs:  # sum over heads of dy * x (cos) and dy * rotate_half(x) (sin), in fp32
            q, k = (t.float() for t in qk)
            dqf, dkf = dq.float(), dk.float()
            dcos = (dqf * q).sum(1) + (dkf * k).sum(1)
            dsin = (dqf * _rotate_half(q)).sum(1) + (dkf * _rotate_half(k)).sum(1)
            dcos, dsin = _reduce_to(dcos, cos.shape).to(cos.dtype), _reduce_to(dsin, sin.shape).to(sin.dtype)
        return dq_in, dk_in, dcos, dsin


def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Fused rotary embedding of q and k; returns (q', k') in the layouts of q and k."""
    return RopeFunction.apply(q, k, cos, sin)


def rope_ref(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """Plain PyTorch reference, the same maths as transformers' apply_rotary_pos_emb."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
