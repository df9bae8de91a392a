"""`effbench ceiling`: this device's measured roofline ceiling, the matmul FLOP/s at each dtype
asked for and the bandwidth of a large copy (effbench.child.ceiling), printed as markdown and,
with --json, written as the record a result set keeps under `ceiling`. Every suite measures it
before its runs (suite key `ceiling`); this command measures it alone."""

from __future__ import annotations

from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")


class CeilingError(ValueError):
    pass


def cmd_ceiling(args) -> int:
    dtypes = args.dtype or (["bfloat16", "float32"] if args.device == "cuda" else ["float32"])
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise CeilingError(f"dtype {bad[0]!r}; valid: {', '.join(DTYPES)}")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise CeilingError("--device cuda: torch.cuda.is_available() is False on this machine; valid here: cpu")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from effbench.child import ceiling
    from effbench.render.sections import ceiling_lines

    rec = ceiling.measure(args.device, dtypes, quick=args.quick)
    print("\n".join(ceiling_lines(rec)))
    if args.json:
        from effbench.read import results

        results.write_json_atomic(Path(args.json), rec)
        print(f"written: {args.json}")
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("ceiling", help="measure this device's matmul FLOP/s and memory bandwidth (the roofline)")
    c.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    c.add_argument("--dtype", action="append", help=f"matmul dtype (repeatable; one of {', '.join(DTYPES)})")
    c.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    c.add_argument("--quick", action="store_true", help="small sizes, seconds (tests); not the device's full figures")
    c.add_argument("--json", help="also write the record to this file")
    c.set_defaults(fn=cmd_ceiling)
