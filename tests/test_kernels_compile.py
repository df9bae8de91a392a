"""The kernels compile to CUDA binaries for Ampere (sm_80) and Hopper (sm_90) without a GPU.

The interpreter tests (test_kernels.py) check the maths but run the kernels as Python, which
accepts code the compiler rejects (loop-carried type changes, bad constexpr use). Here Triton's
real pipeline (ttir -> ttgir -> llir -> ptx -> cubin via the bundled ptxas) runs for every kernel
at the launch parameters the wrappers pick for the default model's widths. It runs in a child
process because TRITON_INTERPRET, set for the other kernel tests, turns @triton.jit functions
into interpreted ones for the whole process.
"""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
from effbench.kernels import _launch as L, flce as F, rmsnorm as R, rope as P, swiglu as S

def src(fn, ptrs, consts, floats=()):
    sig = {n: "constexpr" if n in consts else ptrs.get(n, "fp32" if n in floats else "i32") for n in fn.arg_names}
    return ASTSource(fn=fn, signature=sig, constexprs=consts)

bn = L.row_block(576); bm = L.rows_per_program(bn, 32768)   # rmsnorm at hidden 576, 32K tokens
bv = min(F.MAX_BLOCK_V, triton.next_power_of_2(49152))       # flce at vocab 49152
rope_c = dict(BLOCK_HQ=16, BLOCK_HK=4, BLOCK_D=32)              # 9 / 3 heads, head_dim 64
for dt in ("bf16", "fp32"):
    p = "*" + dt
    cases = [
        (R._rmsnorm_fwd_kernel, dict(X=p, W=p, Y=p, RSTD="*fp32"), dict(BLOCK_M=bm, BLOCK_N=bn), ("eps",)),
        (R._rmsnorm_bwd_kernel, dict(DY=p, X=p, W=p, RSTD="*fp32", DX=p, DW_PART="*fp32"),
         dict(BLOCK_M=bm, BLOCK_N=bn, TILES=8), ()),
        (S._swiglu_fwd_kernel, dict(G=p, U=p, Y=p), dict(BLOCK=S.BLOCK), ()),
        (S._swiglu_bwd_kernel, dict(DY=p, G=p, U=p, DG=p, DU=p), dict(BLOCK=S.BLOCK), ()),
        (P._rope_kernel, dict(Q=p, K=p, QO=p, KO=p, COS=p, SIN=p), dict(rope_c, BACKWARD=False), ()),
        (P._rope_kernel, dict(Q=p, K=p, QO=p, KO=p, COS=p, SIN=p), dict(rope_c, BACKWARD=True), ()),
        (F._ce_grad_kernel, dict(LOGITS=p, LABELS="*i64", LOSS="*fp32"),
         dict(BLOCK_V=bv, N_BLOCKS=12, SMOOTH=True), ("scale", "eps")),
        (F._ce_grad_kernel, dict(LOGITS=p, LABELS="*i64", LOSS="*fp32"),
         dict(BLOCK_V=bv, N_BLOCKS=12, SMOOTH=False), ("scale", "eps")),
    ]
    for arch in (80, 90):
        for fn, ptrs, consts, floats in cases:
            k = triton.compile(src(fn, ptrs, consts, floats), target=GPUTarget("cuda", arch, 32),
                               options={"num_warps": 8})
            assert k.asm.get("cubin"), (fn.__name__, arch)
            print("compiled", dt, arch, fn.__name__)
"""


def test_kernels_compile_for_ampere_and_hopper(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # compile for real, not from a cache
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("compiled") == 2 * 2 * 8  # dtypes x archs x kernels
