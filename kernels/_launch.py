"""Launch rules shared by the kernels: block sizes, warps and grid sizes.

Rather than autotuning (which, under Triton's CPU interpreter, would run every config and make
the tests many times slower), each kernel picks its launch parameters with the documented rules
below. They follow the usual reasoning for memory-bound row kernels on Ampere/Hopper:

- a row of N elements is held in one block of `next_power_of_2(N)` lanes (masked beyond N);
- a program holds about `TILE_ELEMS` elements in registers (fp32: 4 B each), so short rows are
  packed several per program (`rows_per_program`), which also cuts per-program overhead;
- warps grow with the tile: one warp (32 threads) per 256 elements, rounded down to a power of
  two between 1 and 16 (Triton's CUDA and ROCm backends accept only powers of two: a tile of 1280
  elements gets 4 warps, never 5), so each thread handles 8 to 16 contiguous elements;
- loops inside kernels have compile-time trip counts (`tl.constexpr`), rounded to powers of two
  where they depend on the input size so that few variants get compiled. This is also what keeps
  them runnable under the interpreter of triton 3.6 with numpy >= 2.4, where a loop bound read
  from a runtime argument fails ("only 0-dimensional arrays can be converted", triton #9171).
"""

from __future__ import annotations

import os

import torch
import triton

TILE_ELEMS = 4096  # elements per program tile; 16 KiB of fp32 registers spread over its warps
MAX_ROW_ELEMS = 65536  # longest row a one-block row kernel accepts (rmsnorm hidden size)


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_device(*tensors: torch.Tensor) -> None:
    """Kernels run on CUDA, or on CPU only under the interpreter; say so instead of crashing."""
    for t in tensors:
        if t.device.type != "cuda" and not interpreting():
            raise RuntimeError(
                f"effbench.kernels need a CUDA tensor (got device {t.device}); "
                "set TRITON_INTERPRET=1 before importing triton to run them on CPU"
            )


def row_block(n_cols: int) -> int:
    """Block width (lanes) for a row of `n_cols` elements: the next power of two."""
    if n_cols > MAX_ROW_ELEMS:
        raise ValueError(f"row of {n_cols} elements exceeds the one-block limit {MAX_ROW_ELEMS}")
    return triton.next_power_of_2(max(n_cols, 1))


def rows_per_program(block_cols: int, n_rows: int) -> int:
    """How many rows one program handles: fill a TILE_ELEMS tile, at most 16, a power of two."""
    rows = max(1, min(16, TILE_ELEMS // block_cols))
    return min(rows, triton.next_power_of_2(max(n_rows, 1)))


def num_warps_for(tile_elems: int) -> int:
    """One warp per 256 tile elements, rounded down to a power of two, clamped to [1, 16]."""
    warps = max(1, min(16, tile_elems // 256))
    return 1 << (warps.bit_length() - 1)


def num_programs_cap(device: torch.device) -> int:
    """Upper bound on persistent programs (grid-stride loops): 4 per SM on CUDA, 8 on CPU."""
    if device.type == "cuda":
        return 4 * torch.cuda.get_device_properties(device).multi_processor_count
    return 8


def tiles_per_program(n_tiles: int, max_programs: int) -> int:
    """Consecutive tiles per persistent program (a power of two) so at most max_programs run."""
    return triton.next_power_of_2(max(1, triton.cdiv(n_tiles, max_programs)))
