"""The kernels compile to CUDA binaries for Ampere (sm_80) and Hopper (sm_90) without a GPU, at the
exact launch parameters their wrappers choose.

The interpreter tests (test_kernels.py) check the maths but run the kernels as Python, which
accepts code the compiler rejects (loop-carried type changes, bad constexpr use) and launch
parameters the CUDA backend refuses (a num_warps that is not a power of two). Here Triton's real
pipeline (ttir -> ttgir -> llir -> ptx -> cubin via the bundled ptxas) runs for every kernel with
the constexprs and num_warps returned by the wrappers' own launch functions (the ones the wrappers
call), at the default model's shapes (hidden 576, 9 query / 3 key-value heads of 64, vocabulary
49152, intermediate 1536) and at the shapes of test_kernels.py. It runs in a child process because
TRITON_INTERPRET, set for the other kernel tests, turns @triton.jit functions into interpreted
ones for the whole process.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import triton
from triton.compiler import ASTSource
from triton.backends.compiler import GPUTarget
from effbench.kernels import flce as F, rmsnorm as R, rope as P, swiglu as S

def src(fn, ptrs, consts, floats=()):
    sig = {n: "constexpr" if n in consts else ptrs.get(n, "fp32" if n in floats else "i32") for n in fn.arg_names}
    return ASTSource(fn=fn, signature=sig, constexprs=consts)

# (rows, hidden) for rmsnorm: default model (one decode token; 32 x 512 prefill tokens), tests.
RMS = [(1, 576), (32 * 512, 576), (16, 64), (3 * 423, 213)]
ROPE = [(9, 3, 64), (4, 2, 64), (5, 3, 24)]          # (query heads, kv heads, head_dim)
VOCAB = [49152, 1024, 5003, 300, 700, 10]            # flce vocabularies
PROGRAMS = [4 * 132, 4 * 108, 8]                     # H100/H200 SXM, A100, CPU caps of the bwd kernel
launches = set()
def add(name, launch):
    launches.add((name, tuple(sorted(launch.items()))))
for m, n in RMS:
    add("rms_fwd", R.fwd_launch(m, n))
    for cap in PROGRAMS:
        add("rms_bwd", R.bwd_launch(m, n, cap)[1])
add("swiglu", S.launch())
for hq, hk, d in ROPE:
    add("rope", P.launch(hq, hk, d))
for v in VOCAB:
    for smooth in (True, False):
        add("ce", F.ce_launch(v, smooth))
print("launches", len(launches))
for dt in ("bf16", "fp32"):
    p = "*" + dt
    sigs = {
        "rms_fwd": [(R._rmsnorm_fwd_kernel, dict(X=p, W=p, Y=p, RSTD="*fp32"), ("eps",))],
        "rms_bwd": [(R._rmsnorm_bwd_kernel, dict(DY=p, X=p, W=p, RSTD="*fp32", DX=p, DW_PART="*fp32"), ())],
        "swiglu": [(S._swiglu_fwd_kernel, dict(G=p, U=p, Y=p), ()),
                   (S._swiglu_bwd_kernel, dict(DY=p, G=p, U=p, DG=p, DU=p), ())],
        "rope": [(P._rope_kernel, dict(Q=p, K=p, QO=p, KO=p, COS=p, SIN=p), ())],
        "ce": [(F._ce_grad_kernel, dict(LOGITS=p, LABELS="*i64", LOSS="*fp32"), ("scale", "eps"))],
    }
    for name, items in sorted(launches):
        launch = dict(items)
        warps = launch.pop("num_warps")
        assert warps & (warps - 1) == 0, (name, launch, warps)
        for fn, ptrs, floats in sigs[name]:
            variants = [dict(launch, BACKWARD=b) for b in (False, True)] if name == "rope" else [launch]
            for consts in variants:
                for arch in (80, 90):
                    k = triton.compile(src(fn, ptrs, consts, floats), target=GPUTarget("cuda", arch, 32),
                                       options={"num_warps": warps})
                    assert k.asm.get("cubin"), (fn.__name__, arch, consts, warps)
                    assert k.metadata.num_warps == warps
                    print("compiled", dt, arch, fn.__name__, consts, "num_warps", warps)
"""


def test_launch_parameters_are_what_every_backend_accepts():
    """num_warps is a power of two in [1, 16] for every launch the wrappers can choose, including
    the default model's rope (9 + 3 heads of 64: 1280 values, which the one-warp-per-256 rule
    alone would give 5 warps)."""
    from effbench.kernels import _launch as L
    from effbench.kernels import flce as F
    from effbench.kernels import rmsnorm as R
    from effbench.kernels import rope as P
    from effbench.kernels import swiglu as S

    assert [L.num_warps_for(t) for t in (1, 256, 511, 512, 1280, 1536, 3072, 4096, 8192, 1 << 20)] == [
        1,
        1,
        1,
        2,
        4,
        4,
        8,
        16,
        16,
        16,
    ]
    assert P.launch(9, 3, 64) == dict(BLOCK_HQ=16, BLOCK_HK=4, BLOCK_D=32, num_warps=4)
    launches = [S.launch()]
    launches += [P.launch(hq, hk, d) for hq in range(1, 33) for hk in range(1, hq + 1) for d in (16, 24, 64, 128)]
    launches += [R.fwd_launch(m, n) for m in (1, 7, 4096) for n in range(1, 5000, 37)]
    launches += [R.bwd_launch(m, n, 528)[1] for m in (1, 7, 4096) for n in range(1, 5000, 37)]
    launches += [F.ce_launch(v, s) for v in range(2, 70000, 997) for s in (True, False)]
    for launch in launches:
        w = launch["num_warps"]
        assert 1 <= w <= 16 and w & (w - 1) == 0, launch


def test_kernels_compile_for_ampere_and_hopper(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")  # compile for real, not from a cache
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = int(proc.stdout.split("launches", 1)[1].split()[0])
    lines = proc.stdout.count("compiled")
    assert n >= 10 and lines >= 2 * 2 * n  # every launch compiled for both dtypes and both archs
    assert "_rope_kernel {'BLOCK_D': 32, 'BLOCK_HK': 4, 'BLOCK_HQ': 16, 'BACKWARD': False} num_warps 4" in proc.stdout
