"""The `effbench` command line.

  effbench list                          techniques, tasks, models and suites
  effbench run --suite cpu               run a suite (auto: `gpu` with CUDA, else `cpu`)
  effbench run --scenario infer -t nf4   one ad-hoc run
  effbench run --suite gpu --devices 0,1  one child per local GPU (also: --executor ray, --shard i/N, --resume SET)
  effbench merge OUT SET SET...          join shard result sets into one
  effbench show RESULTS                  print a result set's summary table
  effbench compare BASE HEAD             verdicts per metric with CIs; exit 1 regression, 3 inconclusive
  effbench site RESULTS --out SITE       a static site: history, trade-off explorer, compare
  effbench plot|report|aa ...            plots, a README for a result set, the A/A check (cli/compare.py)

Bad input exits with status 2 and a message naming the value and the valid choices, before any
model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from effbench import models, runspec, tasks
from effbench.cli.args import add_replication_flags, auto_device, parse_kv, parse_technique, suite_overrides
from effbench.read import results
from effbench.run import suites
from effbench.run.lifetime import FolderBusy

REPO = Path(__file__).resolve().parents[2]


def cmd_list(args) -> int:
    from tabulate import tabulate

    from effbench.techniques import registry

    rows = [
        [n, c.family, ",".join(c.scenarios), ",".join(c.requires) or "-", c.description]
        for n, c in sorted(registry().items())
    ]
    print(
        "Techniques\n" + tabulate(rows, ["name", "family", "scenarios", "requires", "description"], tablefmt="simple")
    )
    print("\nTasks\n" + tabulate(sorted(runspec.TASKS.items()), ["name", "description"], tablefmt="simple"))
    print("\nModels\n" + tabulate(list(models.MODELS.items()), ["name", "description"], tablefmt="simple"))
    rows = []
    for name in suites.suite_names():
        try:
            s = suites.load_suite(name)
            rows.append([name, len(s.runs), s.description])
        except runspec.ConfigError as e:
            rows.append([name, "?", f"INVALID: {e}"])
    print("\nSuites (benchmarks/*.toml)\n" + tabulate(rows, ["name", "runs", "description"], tablefmt="simple"))
    return 0


def cmd_run(args) -> int:
    from effbench.run.runner import run_suite

    # A named suite with --device auto runs on the suite's own device (`--suite cpu` on a GPU box
    # is the explicit way to run on its CPU); `auto` and ad-hoc runs pick the device here.
    named = bool(args.suite) and args.suite != "auto"
    device = None if named and args.device == "auto" else auto_device(args.device)
    overrides = suite_overrides(args, device)
    budget = parse_kv(args.budget)
    if args.suite:
        name = args.suite if args.suite != "auto" else ("gpu" if device == "cuda" else "cpu")
        if budget:
            overrides["budget"] = {
                "finetune": {k: v for k, v in budget.items() if k in _fields(runspec.FinetuneBudget)},
                "infer": {k: v for k, v in budget.items() if k in _fields(runspec.InferBudget)},
            }
            known = _fields(runspec.FinetuneBudget) | _fields(runspec.InferBudget)
            if set(budget) - known:
                raise runspec.ConfigError(
                    f"unknown budget key(s) {sorted(set(budget) - known)}; valid: {sorted(known)}"
                )
        suite = suites.load_suite(name, overrides)
    else:
        if not args.scenario:
            raise runspec.ConfigError("give --suite NAME, or --scenario finetune|infer for one ad-hoc run")
        techs = tuple(parse_technique(t) for t in args.technique or [])
        rid = args.id or (args.scenario + "-" + ("-".join(t["name"] for t in techs) or "baseline"))
        seeds = overrides.get("seeds") or [args.seed or 0]
        spec = runspec.RunSpec(
            id=rid,
            scenario=args.scenario,
            model=args.model or models.DEFAULT_MODEL,
            task=args.task,
            techniques=techs,
            budget=budget,
            seed=seeds[0],
            device=device,
            text=args.text,
            group=rid,
            threads=args.threads,
        )
        runspec.validate(spec)
        suite = suites.Suite(
            name="adhoc",
            description="ad-hoc run from the command line",
            runs=[spec],
            price_per_hour=args.price_per_hour,
            price_source="--price-per-hour" if args.price_per_hour else "",
            plan={rid: {"seeds": seeds, "replicates": args.replicates or 1}},
            threads=args.threads,
        )
    out = run_suite(
        suite,
        Path(args.out),
        only=args.only,
        executor=args.executor,
        devices=args.devices,
        address=args.address,
        shard=args.shard,
        resume=args.resume,
    )
    rs = results.load(out)
    from effbench.render.report import summary_markdown

    print()
    print(summary_markdown(rs))
    print(f"result set: {out}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in rs["runs"]) else 1


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def cmd_merge(args) -> int:
    from effbench.run.shards import merge

    out = merge(args.sets, Path(args.out))
    print(f"merged {len(args.sets)} result sets: {out}")
    return 0


def cmd_show(args) -> int:
    from effbench.render.report import summary_markdown

    print(summary_markdown(results.load(args.results)), end="")
    return 0


def cmd_site(args) -> int:
    import time

    from effbench.render import site

    t0 = time.perf_counter()
    done = site.build(args.results, args.out, tuple(args.compare) if args.compare else None)
    for e in done["errors"]:
        print(f"effbench site: not read: {e}", file=sys.stderr)
    print(
        f"site of {done['sets']} result sets ({done['suites']} suites) in {time.perf_counter() - t0:.1f} s: "
        f"{done['index']}"
    )
    return 0


def version() -> str:
    """The installed distribution's version (pyproject.toml), or why there is none."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("effbench")
    except PackageNotFoundError:
        return "(not installed: run from a source tree; `pip install -e .` records the version)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="effbench",
        description="Benchmark LLM efficiency techniques: speed, memory, "
        "quality and cost per quality point on one fixed model.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list techniques, tasks, models and suites").set_defaults(fn=cmd_list)
    r = sub.add_parser("run", help="run a suite, or one ad-hoc run")
    r.add_argument(
        "--suite", help="suite name (benchmarks/NAME.toml), a .toml path, or 'auto' (gpu with CUDA, else cpu)"
    )
    r.add_argument(
        "--only",
        nargs="+",
        metavar="RUN_ID",
        help="run only these runs of the suite: run ids, or sweep ids (every point of the sweep)",
    )
    r.add_argument("--scenario", choices=sorted(runspec.BUDGETS), help="ad-hoc run: the workload")
    r.add_argument(
        "-t",
        "--technique",
        action="append",
        metavar="NAME[:k=v,...]",
        help="ad-hoc run: a technique (repeatable, in order)",
    )
    r.add_argument("--task", default="arith", help=f"ad-hoc run: training/eval task ({', '.join(sorted(tasks.NAMES))})")
    r.add_argument("--id", help="ad-hoc run: its id")
    r.add_argument("--model", help=f"model: {', '.join(models.MODELS)}")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    r.add_argument("--seed", type=int)
    add_replication_flags(r)
    r.add_argument(
        "--budget", nargs="+", metavar="KEY=VALUE", help="budget overrides, e.g. max_steps=50 batch_sizes=[1,4]"
    )
    r.add_argument("--price-per-hour", type=float, dest="price_per_hour", help="USD per device-hour for cost figures")
    r.add_argument("--text", help="reference text file for perplexity/KLD/calibration (default: pydoc_data.topics)")
    r.add_argument(
        "--kernel-bench",
        dest="kernel_bench",
        choices=["none", "quick", "full"],
        help="override the suite's kernel micro-benchmark (CUDA only)",
    )
    r.add_argument(
        "--ceiling",
        choices=["full", "quick", "none"],
        help="override the suite's roofline ceiling measurement (before the runs)",
    )
    r.add_argument("--out", default=str(REPO / "results"), help="folder that receives <suite>/<time>_<sha>/")
    r.add_argument(
        "--executor",
        default="serial",
        choices=["serial", "ray"],
        help="where runs go: serial (default) or Ray tasks, one GPU each (pip install 'effbench[ray]')",
    )
    r.add_argument("--address", help="--executor ray: the cluster's address (default: a new local Ray instance)")
    r.add_argument(
        "--devices", help="one child per local GPU at a time, e.g. 0,1,2,3 (CUDA only: refused for CPU runs)"
    )
    r.add_argument(
        "--shard", metavar="i/N", help="run only shard i of N (stable by each run's spec); join with `effbench merge`"
    )
    r.add_argument(
        "--resume",
        metavar="RESULT_SET",
        help="finish an interrupted result set in its folder: keep its "
        "finished runs with the same code and spec, run the rest (--out is not used)",
    )
    r.set_defaults(fn=cmd_run)
    m = sub.add_parser("merge", help="join shard result sets (same code, suite and device) into one")
    m.add_argument("out", help="new folder for the merged result set")
    m.add_argument("sets", nargs="+", help="the shards' results.json files or folders")
    m.set_defaults(fn=cmd_merge)
    s = sub.add_parser("show", help="print a result set's summary")
    s.add_argument("results", help="results.json or its folder")
    s.set_defaults(fn=cmd_show)
    w = sub.add_parser("site", help="a static site (plain files) of every result set under a folder")
    w.add_argument("results", help="folder holding result sets (<suite>/<stamp>/results.json), e.g. results")
    w.add_argument("--out", required=True, help="folder the site is written into (created; yours, not the repo's)")
    w.add_argument("--compare", nargs=2, metavar=("BASE", "HEAD"), help="also a compare page of these two sets")
    w.set_defaults(fn=cmd_site)
    from effbench.cli.compare import add_parsers

    add_parsers(sub)  # compare, plot, report, aa
    from effbench.cli.kernels import add_parser as add_kernels

    add_kernels(sub)
    from effbench.cli.ceiling import add_parser as add_ceiling

    add_ceiling(sub)
    return p


def rewrite_allow_mismatch(argv: list[str]) -> list[str]:
    """`--allow-mismatch [KIND[,KIND...] ...]` -> `--allow-mismatch=KIND,...` (`all` without a kind):
    kinds as separate words (`device weights`), comma lists (`device,weights`) or both. Only words
    that are kinds, or comma lists of names, are taken (a comma list with an unknown name is then
    refused by name), so that `compare --allow-mismatch BASE HEAD` keeps its positional paths."""
    from effbench.read.options import MISMATCH_KINDS

    known = set(MISMATCH_KINDS) | {"all"}

    def is_kinds(word: str) -> bool:
        parts = word.split(",")
        return all(parts) and (set(parts) <= known or ("," in word and all(p.isidentifier() for p in parts)))

    out, i = [], 0
    while i < len(argv):
        if argv[i] != "--allow-mismatch":
            out.append(argv[i])
            i += 1
            continue
        kinds, i = [], i + 1
        while i < len(argv) and is_kinds(argv[i]):
            kinds += argv[i].split(",")
            i += 1
        out.append("--allow-mismatch=" + ",".join(kinds or ["all"]))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = rewrite_allow_mismatch(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (
        runspec.ConfigError,
        results.ResultError,
        models.ModelError,
        ValueError,
        FileNotFoundError,
        FolderBusy,
    ) as e:
        print(f"effbench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
