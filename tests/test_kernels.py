"""effbench.kernels against their plain PyTorch references: outputs and the gradients of every
input, fp32 and bf16, round and awkward shapes, run through Triton's CPU interpreter.

Each kernel's result (from inputs in dtype d) is compared with the reference evaluated in fp32 on
the same (upcast) inputs, so the tolerance measures the kernel's own error:
  fp32: atol 1e-5, rtol 1e-5 (reordering of fp32 sums);
  bf16: atol 2e-2, rtol 2e-2 (bf16 has 8 bits of mantissa: one rounding is up to 2^-9 = 0.2%,
        and the reference rounds intermediates too; a few ulps of slack).
Shapes stay small (the interpreter runs each program in Python), with one awkward case each.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest  # noqa: E402
import torch  # noqa: E402

from effbench.kernels.flce import chunk_tokens_for, fused_linear_cross_entropy, fused_linear_cross_entropy_ref  # noqa: E402
from effbench.kernels.rmsnorm import rmsnorm, rmsnorm_ref  # noqa: E402
from effbench.kernels.rope import rope, rope_ref  # noqa: E402
from effbench.kernels.swiglu import swiglu, swiglu_ref  # noqa: E402

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=2e-2)}
DTYPES = [torch.float32, torch.bfloat16]


def _leaves(*tensors, dtype):
    return [t.to(dtype).requires_grad_() for t in tensors]


def _check(kernel_fn, ref_fn, inputs, dtype, grad_outs=None, tol=None):
    """Run kernel on `inputs` (dtype) and reference on fp32 copies; compare outputs and grads."""
    tol = tol or TOL[dtype]
    xs = _leaves(*inputs, dtype=dtype)
    refs = _leaves(*[x.detach() for x in xs], dtype=torch.float32)
    out = kernel_fn(*xs)
    ref = ref_fn(*refs)
    out, ref = (out if isinstance(out, tuple) else (out,)), (ref if isinstance(ref, tuple) else (ref,))
    g = torch.Generator().manual_seed(1)
    grad_outs = grad_outs or [torch.randn(o.shape, generator=g).to(dtype) for o in out]
    for o, r in zip(out, ref):
        assert o.dtype == dtype
        torch.testing.assert_close(o.float(), r, **tol)
    torch.autograd.backward(out, grad_outs)
    torch.autograd.backward(ref, [go.float() for go in grad_outs])
    for i, (x, r) in enumerate(zip(xs, refs)):
        torch.testing.assert_close(x.grad.float(), r.grad, **tol, msg=lambda m: f"grad of input {i}: {m}")  # noqa: B023 (called here)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 8, 64), (3, 423, 213)])
def test_rmsnorm_matches_reference(shape, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    w = 1 + 0.1 * torch.randn(shape[-1], generator=g)
    _check(lambda x, w: rmsnorm(x, w, 1e-5), lambda x, w: rmsnorm_ref(x, w, 1e-5), [x, w], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 256), (3, 423, 213)])
def test_swiglu_matches_reference(shape, dtype):
    g = torch.Generator().manual_seed(0)
    _check(swiglu, swiglu_ref, [torch.randn(shape, generator=g), torch.randn(shape, generator=g)], dtype)


def test_swiglu_in_place_backward_gives_the_same_grads():
    """in_place=True writes the grads into gate/up storage: same numbers, no fresh buffers."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 24, generator=g, requires_grad=True)
    w1, w2 = torch.randn(24, 40, generator=g), torch.randn(24, 40, generator=g)
    dy = torch.randn(5, 40, generator=g)
    grads = []
    for in_place in (False, True):
        x.grad = None
        swiglu(x @ w1, x @ w2, in_place=in_place).backward(dy)  # gate/up: intermediates, as in the MLP
        grads.append(x.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=0, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b,s,hq,hk,d,cos_batch", [(1, 16, 4, 2, 64, 1), (3, 43, 5, 3, 24, 3)])
def test_rope_matches_reference(b, s, hq, hk, d, cos_batch, dtype):
    """q in LlamaAttention's layout (a transposed [b, s, h, d] view), head_dim/2 not a power of
    two in the awkward case; cos/sin with a batch of 1 (broadcast) or b; grads of q, k, cos, sin."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(b, s, hq, d, generator=g)
    k = torch.randn(b, s, hk, d, generator=g)
    ang = torch.rand(cos_batch, s, d // 2, generator=g) * 6.3
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    _check(
        lambda q, k, c, sn: rope(q.transpose(1, 2), k.transpose(1, 2), c, sn),
        lambda q, k, c, sn: rope_ref(q.transpose(1, 2), k.transpose(1, 2), c, sn),
        [q, k, cos, sin],
        dtype,
    )


# Loss tolerances: the loss is an fp32 mean whatever the input dtype; bf16 logits move it by
# about 1e-4 relative; gradients are small (~1/tokens), so atol is scaled down with them.
FLCE_TOL = {torch.float32: dict(atol=1e-6, rtol=1e-4), torch.bfloat16: dict(atol=2e-3, rtol=2e-2)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n,h,v,chunk,smoothing,reduction",
    [
        (64, 64, 1024, None, 0.0, "mean"),  # round: one chunk, one vocab block
        (141, 213, 5003, 32, 0.1, "mean"),  # awkward: 4 full chunks + 13 rows, vocab 4096 + 907
        (50, 40, 300, 16, 0.0, "sum"),
    ],
)
def test_flce_matches_reference(n, h, v, chunk, smoothing, reduction, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, h, generator=g)
    w = torch.randn(v, h, generator=g) / h**0.5
    labels = torch.randint(0, v, (n,), generator=g)
    labels[::7] = -100  # ignored positions: no loss, no gradient, not in the mean's count

    def kern(x, w):
        return fused_linear_cross_entropy(
            x, w, labels, label_smoothing=smoothing, reduction=reduction, chunk_tokens=chunk
        )

    def ref(x, w):
        return fused_linear_cross_entropy_ref(x, w, labels, label_smoothing=smoothing, reduction=reduction)

    # grad_output 2.0 checks that backward scales the gradients computed in forward.
    tol = dict(FLCE_TOL[dtype])
    if reduction == "sum":  # gradients are not divided by the token count: n times larger
        tol["atol"] *= n
    xs = _leaves(x, w, dtype=dtype)
    refs = _leaves(*[t.detach() for t in xs], dtype=torch.float32)  # the same rounded inputs
    loss, loss_ref = kern(*xs), ref(*refs)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, loss_ref, atol=1e-4 if dtype == torch.float32 else 2e-2, rtol=1e-5)
    (2.0 * loss).backward()
    (2.0 * loss_ref).backward()
    for a, b in zip(xs, refs):
        assert a.grad.dtype == dtype
        torch.testing.assert_close(a.grad.float(), b.grad, **tol)


def test_flce_edge_cases():
    x, w = torch.randn(6, 8), torch.randn(10, 8)
    # every position ignored: nan, as torch's mean over zero items
    assert torch.isnan(fused_linear_cross_entropy(x, w, torch.full((6,), -100)))
    # no grad wanted: same loss through the loss-only path
    labels = torch.tensor([1, 2, -100, 3, 9, 0])
    with torch.no_grad():
        torch.testing.assert_close(
            fused_linear_cross_entropy(x, w, labels), fused_linear_cross_entropy_ref(x, w, labels), atol=1e-5, rtol=1e-5
        )
    with pytest.raises(ValueError, match="labels outside"):
        fused_linear_cross_entropy(x, w, torch.tensor([1, 2, 3, 4, 5, 10]))


def test_flce_under_autocast_matches_autocast_reference():
    """The harness trains on CUDA with bf16 autocast over fp32 weights: the chunk matmuls must
    follow autocast (bf16 logits, like an autocast lm_head) and the grads keep the fp32 dtypes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 48, generator=g, requires_grad=True)
    w = (torch.randn(700, 48, generator=g) / 48**0.5).requires_grad_()
    labels = torch.randint(0, 700, (40,), generator=g)
    labels[::3] = -100
    xr, wr = (t.detach().clone().requires_grad_() for t in (x, w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fused_linear_cross_entropy(x, w, labels, chunk_tokens=16)
        loss_ref = fused_linear_cross_entropy_ref(xr, wr, labels)
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(loss, loss_ref, atol=2e-2, rtol=0)  # both from bf16 logits
    for a, b in ((x, xr), (w, wr)):
        assert a.grad.dtype == torch.float32
        torch.testing.assert_close(a.grad, b.grad, **FLCE_TOL[torch.bfloat16])


def test_flce_chunk_rule_bounds_the_logits():
    """The chunk's logits (C x V) stay about the size of the hidden states (N x H), never N x V."""
    for n, h, v in [(32768, 576, 49152), (1024, 576, 49152), (100, 64, 49152)]:
        c = chunk_tokens_for(n, h, v)
        assert 1 <= c <= n
        assert c * v <= max(2 * n * h, 128 * v)  # 128 tokens is the floor for efficient matmuls
    assert chunk_tokens_for(32768, 576, 49152) * 49152 < 32768 * 49152 / 32
