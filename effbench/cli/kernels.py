"""`effbench kernels`: the kernel micro-benchmark, written as a result set.

The result set has no runs; its top-level `kernels` list holds one record per kernel x
implementation x pass x size x dtype (effbench.kernelbench.bench), and summary.md shows each kernel's
speed-up over eager PyTorch, torch.compile and liger-kernel with its fraction of peak bandwidth.
"""

from __future__ import annotations

from pathlib import Path


class KernelBenchError(ValueError):
    pass


def cmd_kernels(args) -> int:
    from effbench.child import measure
    from effbench.kernelbench.bench import run_kernel_bench
    from effbench.read import results
    from effbench.render.kernel_report import kernel_markdown
    from effbench.run import suites

    try:
        records = run_kernel_bench("cuda", quick=args.quick)
    except RuntimeError as e:
        raise KernelBenchError(str(e)) from None
    env = measure.environment("cuda")
    suite = suites.Suite(
        name="kernels", description=f"kernel micro-benchmark ({'quick' if args.quick else 'full'} sweep)", runs=[]
    )
    rs = results.new_set(suite, env, env["git"])
    rs["kernels"] = records
    out = results.set_dir(Path(args.out), "kernels", env["git"].get("sha"))
    out.mkdir(parents=True, exist_ok=True)
    results.write_json_atomic(out / "results.json", rs)
    md = kernel_markdown(records)
    (out / "summary.md").write_text(f"# effbench kernels on {env.get('device_name')}\n\n" + md)
    print(md)
    print(f"result set: {out}")
    return 0


def add_parser(sub) -> None:
    k = sub.add_parser("kernels", help="time each Triton kernel vs eager, torch.compile and liger-kernel (CUDA)")
    k.add_argument("--quick", action="store_true", help="a reduced sweep (1K and 8K tokens, bf16)")
    k.add_argument("--out", default="results", help="folder that receives kernels/<time>_<sha>/")
    k.set_defaults(fn=cmd_kernels)
