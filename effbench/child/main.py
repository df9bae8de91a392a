"""One run, in its own process: `python -m effbench.child SPEC.json OUT.json`.

A process per run isolates out-of-memory errors, crashes, allocator state and peak-memory
counters. The RunResult is written atomically whatever happens inside; a process killed from
outside (the kernel's OOM killer) leaves no file, and the parent records that instead.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from collections import Counter

from effbench.child import THREAD_VARS

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
TIMING_ONLY = "timing-only replicate: quality is evaluated in the quality replicates of the same run and seed"


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _since_process_start_s() -> float | None:
    """Seconds since this process was created (interpreter start-up and imports included)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # no psutil, or no process table: the start-up figure is left out
        return None


def execute(spec_dict: dict) -> dict:
    imports_s = _since_process_start_s()  # interpreter + the imports above
    import torch

    from effbench import models, runspec, tasks
    from effbench.child import measure
    from effbench.child.log import log
    from effbench.child.workloads import finetune, infer
    from effbench.read import results
    from effbench.tasks import reftext
    from effbench.techniques import Context, build_all

    spec = runspec.RunSpec.from_dict(spec_dict)
    res = results.new_run(spec.id, spec.to_dict())
    if spec.threads is not None:  # the BLAS/OpenMP pools were sized from THREAD_VARS before torch loaded
        torch.set_num_threads(spec.threads)
    t_start = time.perf_counter()
    try:
        runspec.validate(spec)
        budget = spec.budget_obj()
        if spec.timing_only and spec.scenario == "infer":
            import dataclasses

            budget = dataclasses.replace(budget, quality=False)
        techs = build_all(list(spec.techniques))
        scen = runspec.SCENARIO_OF[spec.scenario]
        for t in techs:
            why = t.skip_reason(scen, spec.device)
            if why:
                res.update(status="skipped", reason=why)
                return res
        # Weights: fp32 for fine-tuning (bf16 autocast on CUDA keeps fp32 master weights), bf16 for
        # inference on CUDA, fp32 on CPU; a run's `dtype` overrides.
        dtype = (
            getattr(torch, spec.dtype)
            if spec.dtype
            else (torch.float32 if spec.scenario == "finetune" else models.default_dtype(spec.device))
        )
        if spec.device == "cuda" and torch.cuda.is_available():  # no bf16 (T4, V100): refuse before loading
            from effbench.child.cuda_env import bf16_refusal

            why = bf16_refusal(
                spec.device,
                torch.cuda.get_device_capability(),
                torch.cuda.get_device_name(),
                needs_bf16=spec.scenario == "finetune" or dtype == torch.bfloat16,
            )
            if why:
                res.update(status="skipped", reason=why)
                return res
        res["env"] = measure.environment(spec.device)
        _seed(spec.seed)
        timings: dict = {}
        with measure.stopwatch(timings, "model_load_s", spec.device):
            model, tok, info = models.load(spec.model, spec.device, dtype, spec.seed)
        built_here = spec.model in models.BUILT_IN_THIS_PROCESS
        if built_here:  # the runner builds it before the first run; this run found it cold anyway
            info.note = (info.note + "; " if info.note else "") + (
                "its cache was built in this run's process (model_load_s includes the build)"
            )
        res["model"] = info.to_dict()
        log(f"model {spec.model} loaded in {timings['model_load_s']:.1f}s{' (cache built here)' if built_here else ''}")
        n_train = getattr(budget, "n_train", 2000)
        n_eval = getattr(budget, "n_eval", 200)
        data = tasks.load(spec.task, n_train=n_train, n_eval=n_eval, seed=spec.seed)
        res["data"] = {
            "task": spec.task,
            "config": data.config,
            "train_sha256": tasks.data_sha256(data.train),
            "eval_sha256": tasks.data_sha256(data.eval),
            "n_train": len(data.train),
            "n_eval": len(data.eval),
            "kinds": dict(Counter(e.kind for e in data.train)),
        }
        ctx = Context(
            scenario=scen,
            device=spec.device,
            dtype=dtype,
            seed=spec.seed,
            tokenizer=tok,
            load_reference_model=lambda: models.load(spec.model, spec.device, dtype, spec.seed, with_tokenizer=False)[
                0
            ],
            calibration_ids=lambda n, length: reftext.calibration_ids(tok, n, length, spec.text)[0].to(spec.device),
            hparams={"lr": getattr(budget, "lr", None), "batch_size": getattr(budget, "batch_size", None)},
            techniques=tuple(t.name for t in techs),
        )
        # Start-up: process creation to here (interpreter, imports, environment, model load and
        # hash, data); printed per run by `make gpu-check`. Evaluations and techniques come after.
        startup_s = _since_process_start_s()
        res["setup"].update(imports_s=imports_s, startup_s=startup_s)
        extra = {}
        quality = info.report_quality and not spec.timing_only
        if spec.scenario == "finetune" and quality:
            log("evaluating the unmodified model")
            a = finetune.evaluate_accuracy(model, tok, data.eval, spec.device, budget.eval_batch_size, spec.seed)
            extra["accuracy_unmodified"] = {
                "value": a["value"],
                "stderr": a["stderr"],
                "n": a["n"],
                "unit": "fraction",
                "higher_is_better": True,
                "method": "exact match of the model before any technique",
            }
            res["items"]["arith.exact_match.unmodified"] = a["items"]
        per = res["setup"]["per_technique"]
        for t in techs:
            t0 = time.perf_counter()
            data = t.prepare_data(data, ctx)
            per[t.name] = time.perf_counter() - t0
        if len(data.train) != res["data"]["n_train"] or res["data"]["train_sha256"] != tasks.data_sha256(data.train):
            res["data"].update(
                n_train_kept=len(data.train),
                train_kept_sha256=tasks.data_sha256(data.train),
                kinds_kept=dict(Counter(e.kind for e in data.train)),
            )
        for t in techs:
            log(f"applying {t.name}")
            measure.sync(spec.device)
            t0 = time.perf_counter()
            model = t.apply(model, ctx)
            measure.sync(spec.device)
            per[t.name] = per.get(t.name, 0.0) + time.perf_counter() - t0
        res["setup"]["wall_s"] = sum(per.values())
        res["setup"]["model_load_s"] = timings["model_load_s"]
        rss = measure.rss_bytes()
        log(f"running the {spec.scenario} workload")
        if spec.scenario == "finetune":
            out = finetune.run(model, tok, data, spec, budget, ctx, techs, quality=quality)
        else:
            out = infer.run(model, tok, data, spec, budget, ctx, techs, info)
        res["metrics"].update(extra)
        res["metrics"].update(out["metrics"])
        if spec.timing_only and info.report_quality:
            for name, m in res["metrics"].items():
                if m.get("value") is None or name == "eval_wall_s":
                    res["metrics"][name] = measure.missing(
                        TIMING_ONLY if name in ("accuracy", "eval_wall_s") else m.get("reason")
                    )
        if spec.device == "cpu" and rss is not None:
            measured = (
                measure.missing("the model cache was built in this run's process; its pages would count in this RSS")
                if built_here
                else {"value": rss, "method": "VmRSS after techniques were applied, before the workload"}
            )
            res["metrics"]["rss_after_setup_bytes"] = {**measured, "unit": "B", "higher_is_better": False}
        res["curves"] = out["curves"]
        res["items"].update(out["items"])
        res["data"].update(out.get("data", {}))
        res["technique_records"] = ctx.records
        res["status"] = "ok"
    except (torch.OutOfMemoryError, MemoryError) as e:
        res.update(status="oom", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=8))
    except Exception as e:
        res.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=12))
    finally:
        res["wall_s"] = time.perf_counter() - t_start
    return res


def main(argv: list[str] | None = None) -> int:
    from effbench.read.results import write_json_atomic

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m effbench.child SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec = json.loads(open(argv[0]).read())
    if spec.get("threads") is not None:  # before torch is imported: OpenMP reads these once
        os.environ.update({k: str(spec["threads"]) for k in THREAD_VARS})
    res = execute(spec)
    write_json_atomic(argv[1], res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
