"""The kernel micro-benchmark's cases: for each fused kernel, its inputs at a token count, the
implementations to race (effbench, eager reference, torch.compile of the reference, liger-kernel)
and a model of the minimal bytes each pass must move.

Bytes model (e = bytes per element of the dtype, T tokens, widths from `Shapes`): the bytes a
perfect implementation must read and write, each tensor once; fwdbwd = fwd + bwd because the
pass boundary forces the forward's outputs to memory and the backward to re-read its inputs.
    rmsnorm (N = hidden)        fwd: x, w read; y written; rstd (4 B/token) written
                                bwd: dy, x, w, rstd read; dx, dw written
    swiglu (I = intermediate)   fwd: gate, up read; y written = 3*T*I*e;  bwd: 5*T*I*e
    rope (q: heads*head_dim, k: kv_heads*head_dim per token; B = T // seq sequences of S)
                                fwd: q, k, cos, sin read; q', k' written; bwd: dq', dk', cos, sin
                                read; dq, dk written. cos/sin are [1, S, head_dim] as the model's
                                rotary embedding makes them, broadcast over the batch through a
                                stride-0 view: S*head_dim*e bytes each, read once, not B times.
    flce (H hidden, V vocab)    fwdbwd only: x, W, labels (8 B/token) read; loss (4 B), dx, dW written.
    flce computes its gradients inside forward (its backward only scales the saved ones), so a
    forward or a backward row alone would be meaningless: it is timed as fwdbwd, and it is bound by
    its matmuls (`flops`: 6*T*V*H, 2 for the logits, 2 for dx, 2 for dW), not by bytes; its GB/s
    says how far it is from streaming, not how good it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from effbench.kernels import flce, rmsnorm, rope, swiglu
from effbench.render.kernel_report import IMPLS

KERNELS = ("rmsnorm", "swiglu", "rope", "flce")
EPS = 1e-5  # the default model's rms_norm_eps


@dataclass(frozen=True)
class Shapes:
    """Widths around which the sweep runs: the default model (SmolLM2-135M) by default."""

    hidden: int = 576
    intermediate: int = 1536
    heads: int = 9
    kv_heads: int = 3
    head_dim: int = 64
    vocab: int = 49152
    seq: int = 1024  # tokens per sequence for rope (batch = tokens // seq)


@dataclass
class Case:
    kernel: str
    width: int  # the "hidden" field of a record: the row width the kernel works on
    inputs: list  # tensors; those that require grad get gradients
    ref: Callable  # plain torch reference taking *inputs
    ours: Callable  # effbench kernel taking *inputs
    liger: Callable | None  # liger-kernel taking *inputs, or None
    bytes: dict  # pass -> minimal bytes
    flops: dict  # pass -> flops (matmul-bound kernels), else {}
    passes: tuple = ("fwd", "bwd", "fwdbwd")  # the passes that mean something for this kernel


def _liger():
    try:
        import liger_kernel.ops as lo
    except Exception:  # not installed, or no usable triton backend
        return None
    return lo


def make_case(kernel: str, tokens: int, dtype: torch.dtype, device: str, s: Shapes = Shapes()) -> Case:
    e = torch.finfo(dtype).bits // 8
    g = torch.Generator(device=device).manual_seed(0)

    def rand(*shape, grad=True, scale=1.0):
        t = torch.randn(*shape, generator=g, device=device, dtype=torch.float32) * scale
        return t.to(dtype).requires_grad_(grad)

    lo = _liger() if device == "cuda" else None
    T = tokens
    if kernel == "rmsnorm":
        N = s.hidden
        fwd = 2 * T * N * e + N * e + 4 * T
        bwd = 3 * T * N * e + 2 * N * e + 4 * T
        return Case(
            kernel,
            N,
            [rand(T, N), rand(N, scale=0.1).detach().add_(1).requires_grad_()],
            lambda x, w: rmsnorm.rmsnorm_ref(x, w, EPS),
            lambda x, w: rmsnorm.rmsnorm(x, w, EPS),
            (lambda x, w: lo.LigerRMSNormFunction.apply(x, w, EPS, 0.0, "llama", False)) if lo else None,
            {"fwd": fwd, "bwd": bwd, "fwdbwd": fwd + bwd},
            {},
        )
    if kernel == "swiglu":
        n = T * s.intermediate
        return Case(
            kernel,
            s.intermediate,
            [rand(T, s.intermediate), rand(T, s.intermediate)],
            swiglu.swiglu_ref,
            swiglu.swiglu,  # in_place=False: benches re-run backward
            (lambda a, b: lo.LigerSiLUMulFunction.apply(a, b)) if lo else None,
            {"fwd": 3 * n * e, "bwd": 5 * n * e, "fwdbwd": 8 * n * e},
            {},
        )
    if kernel == "rope":
        B, S, D = max(1, T // s.seq), min(T, s.seq), s.head_dim
        q = rand(B, S, s.heads, D).detach().transpose(1, 2).requires_grad_()  # LlamaAttention's layout
        k = rand(B, S, s.kv_heads, D).detach().transpose(1, 2).requires_grad_()
        ang = torch.rand(1, S, D // 2, generator=g, device=device) * 6.28
        cos, sin = (torch.cat([f(ang)] * 2, -1).to(dtype) for f in (torch.cos, torch.sin))  # [1, S, D]
        qk, cs = B * S * (s.heads + s.kv_heads) * D * e, 2 * S * D * e
        return Case(
            kernel,
            s.heads * D,
            [q, k, cos, sin],
            rope.rope_ref,
            rope.rope,
            (lambda q, k, c, sn: lo.LigerRopeFunction.apply(q, k, c, sn)) if lo else None,
            {"fwd": 2 * qk + cs, "bwd": 2 * qk + cs, "fwdbwd": 4 * qk + 2 * cs},
            {},
        )
    if kernel == "flce":
        H, V = s.hidden, s.vocab
        labels = torch.randint(0, V, (T,), generator=g, device=device)
        labels[::10] = -100
        reads = T * H * e + V * H * e + 8 * T
        grads = T * H * e + V * H * e
        return Case(
            kernel,
            H,
            [rand(T, H), rand(V, H, scale=H**-0.5)],
            lambda x, w: flce.fused_linear_cross_entropy_ref(x, w, labels),
            lambda x, w: flce.fused_linear_cross_entropy(x, w, labels),
            (lambda x, w: lo.LigerFusedLinearCrossEntropyFunction.apply(x, w, labels)[0]) if lo else None,
            {"fwdbwd": reads + grads + 4},
            {"fwdbwd": 6 * T * V * H},
            passes=("fwdbwd",),
        )
    raise ValueError(f"unknown kernel {kernel!r}; valid: {', '.join(KERNELS)}")


def impl_fn(case: Case, impl: str) -> Callable | None:
    """The callable for one implementation, or None when it is not available here."""
    if impl == "effbench":
        return case.ours
    if impl == "eager":
        return case.ref
    if impl == "compile":
        return torch.compile(case.ref, dynamic=False)
    if impl == "liger":
        return case.liger
    raise ValueError(f"unknown impl {impl!r}; valid: {', '.join(IMPLS)}")
