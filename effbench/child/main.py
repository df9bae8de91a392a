"""One run, in its own process: `python -m effbench.child SPEC.json OUT.json`.

A process per run isolates out-of-memory errors, crashes, allocator state and peak-memory
counters. The RunResult is written atomically whatever happens inside; a process killed from
outside (the kernel's OOM killer) leaves no file, and the parent records that instead.

`run_spec` reads top to bottom as the run does: check the spec and whether this device can host
it, load the model and the task, evaluate the unmodified model, let each technique prepare the
data and change the model (timed as set-up), run the workload, and record what it measured.
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


class Skip(Exception):
    """This device or scenario cannot host the run: recorded as `skipped` with the reason."""


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


def _checked(spec):
    """The spec's budget, techniques and weight dtype, or Skip with the reason this device cannot host it."""
    import dataclasses

    import torch

    from effbench import models, runspec
    from effbench.techniques import build_all

    runspec.validate(spec)
    budget = spec.budget_obj()
    if spec.timing_only and spec.scenario == "infer":
        budget = dataclasses.replace(budget, quality=False)
    techs = build_all(list(spec.techniques))
    for t in techs:
        why = t.skip_reason(runspec.SCENARIO_OF[spec.scenario], spec.device)
        if why:
            raise Skip(why)
    # Weights: fp32 for fine-tuning (bf16 autocast on CUDA keeps fp32 master weights), bf16 for
    # inference on CUDA, fp32 on CPU; a run's `dtype` overrides.
    if spec.dtype:
        dtype = getattr(torch, spec.dtype)
    else:
        dtype = torch.float32 if spec.scenario == "finetune" else models.default_dtype(spec.device)
    if spec.device == "cuda" and torch.cuda.is_available():  # no bf16 (T4, V100): refuse before loading
        from effbench.child.cuda_env import bf16_refusal

        why = bf16_refusal(
            spec.device,
            torch.cuda.get_device_capability(),
            torch.cuda.get_device_name(),
            needs_bf16=spec.scenario == "finetune" or dtype == torch.bfloat16,
        )
        if why:
            raise Skip(why)
    return budget, techs, dtype


def _load_model(spec, dtype, res: dict):
    """The model, its tokenizer and ModelInfo (into res["model"]); its load time; whether this
    process had to build the model cache (then its load time and RSS include the build)."""
    from effbench import models
    from effbench.child import measure
    from effbench.child.log import log

    timings: dict = {}
    with measure.stopwatch(timings, "model_load_s", spec.device):
        model, tok, info = models.load(spec.model, spec.device, dtype, spec.seed)
    built_here = spec.model in models.BUILT_IN_THIS_PROCESS
    if built_here:  # the runner builds it before the first run; this run found it cold anyway
        note = "its cache was built in this run's process (model_load_s includes the build)"
        info.note = (info.note + "; " if info.note else "") + note
    res["model"] = info.to_dict()
    log(f"model {spec.model} loaded in {timings['model_load_s']:.1f}s{' (cache built here)' if built_here else ''}")
    return model, tok, info, timings["model_load_s"], built_here


def _load_data(spec, budget, res: dict):
    """The task's splits, described with their hashes in res["data"]."""
    from effbench import tasks

    data = tasks.load(
        spec.task, n_train=getattr(budget, "n_train", 2000), n_eval=getattr(budget, "n_eval", 200), seed=spec.seed
    )
    res["data"] = {
        "task": spec.task,
        "config": data.config,
        "train_sha256": tasks.data_sha256(data.train),
        "eval_sha256": tasks.data_sha256(data.eval),
        "n_train": len(data.train),
        "n_eval": len(data.eval),
        "kinds": dict(Counter(e.kind for e in data.train)),
    }
    return data


def _context(spec, budget, techs, dtype, tok):
    """What the techniques may look at: the device and dtype, a fresh copy of the model, calibration text."""
    from effbench import models, runspec
    from effbench.tasks import reftext
    from effbench.techniques import Context

    def reference_model():
        return models.load(spec.model, spec.device, dtype, spec.seed, with_tokenizer=False)[0]

    def calibration_ids(n, length):
        return reftext.calibration_ids(tok, n, length, spec.text)[0].to(spec.device)

    return Context(
        scenario=runspec.SCENARIO_OF[spec.scenario],
        device=spec.device,
        dtype=dtype,
        seed=spec.seed,
        tokenizer=tok,
        load_reference_model=reference_model,
        calibration_ids=calibration_ids,
        hparams={
            k: getattr(budget, k, None)
            for k in ("lr", "batch_size", "batch_sizes", "prompt_len", "decode_tokens", "generate_tokens")
        },
        techniques=tuple(t.name for t in techs),
    )


def _unmodified_accuracy(model, tok, data, spec, budget, res: dict, shared_dir=None) -> dict:
    """Fine-tuning's starting point, before any technique: the task accuracy and, where the budget
    asks for retention, HellaSwag on its fixed sample (metrics `hellaswag_acc[_norm]_before`).
    Measured once per result set for identical inputs (effbench.child.shared) and read by the other
    runs, which record the run that measured it."""
    import torch

    from effbench import tasks
    from effbench.child import shared
    from effbench.child.log import log

    k = shared.key(
        weights_sha256=res["model"].get("weights_sha256"),
        dtype=res["model"].get("dtype"),
        device=spec.device,
        device_name=(res.get("env") or {}).get("device_name"),
        threads=torch.get_num_threads(),
        task=spec.task,
        eval_sha256=tasks.data_sha256(data.eval),
        n_eval=len(data.eval),
        eval_batch_size=budget.eval_batch_size,
        retention_items=budget.retention_items,
    )
    stored = shared.load(shared_dir, k)
    if stored is not None:
        log(f"the unmodified model's evaluation: measured by run {stored['run']} of this set on the same inputs")
        value = stored["value"]
        res["setup"]["unmodified_measured_by"] = stored["run"]
    else:
        value = _measure_unmodified(model, tok, data, spec, budget)
        shared.store(shared_dir, k, spec.id, value)
    # lm-eval reseeds Python's, NumPy's and torch's generators with the run's seed when it evaluates;
    # seeding them here again leaves training the same generator state whether this run measured the
    # evaluation or read it (otherwise a run's training would depend on which run measured first)
    _seed(spec.seed)
    res["items"].update(value["items"])
    if "retention" in value["data"]:
        res["data"]["retention"] = value["data"]["retention"]
    return value["metrics"]


def _measure_unmodified(model, tok, data, spec, budget) -> dict:
    from effbench.child.log import log
    from effbench.child.measure import metric
    from effbench.child.workloads import finetune

    log("evaluating the unmodified model")
    a = finetune.evaluate_accuracy(model, tok, data.eval, spec.device, budget.eval_batch_size, spec.seed, spec.task)
    items = {finetune.items_key(spec.task) + ".unmodified": a["items"]}
    metrics = {
        "accuracy_unmodified": metric(
            a["value"],
            "fraction",
            True,
            stderr=a["stderr"],
            n=a["n"],
            method=f"{finetune.ACCURACY_METHOD.get(spec.task, 'exact match')}, of the model before any technique",
        )
    }
    out = {"metrics": metrics, "items": items, "data": {}}
    if budget.retention_items:
        log(f"retention: HellaSwag on {budget.retention_items} items before fine-tuning")
        rm, ri, rd = finetune.retention(model, tok, spec, budget)
        metrics.update({f"{k}_before": v for k, v in rm.items()})
        items.update({f"{k}.before": v for k, v in ri.items()})
        out["data"]["retention"] = rd
    return out


def _apply_techniques(techs, data, model, ctx, spec, res: dict):
    """Each technique's data step, then each one's model step, in list order; their times are set-up."""
    from effbench import tasks
    from effbench.child import measure
    from effbench.child.log import log

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
    return data, model


def _record(res: dict, out: dict, spec, info, rss, built_here: bool) -> None:
    """The workload's figures into the result; what a timing-only replicate or this device cannot
    measure recorded as missing with the reason."""
    from effbench.child import measure

    metrics = res["metrics"]
    metrics.update(out["metrics"])
    if spec.timing_only and info.report_quality:
        for name, m in metrics.items():
            if m.get("value") is None or name == "eval_wall_s":
                metrics[name] = measure.missing(TIMING_ONLY if name in ("accuracy", "eval_wall_s") else m.get("reason"))
    if spec.device == "cpu" and rss is not None:
        measured = (
            measure.missing("the model cache was built in this run's process; its pages would count in this RSS")
            if built_here
            else {"value": rss, "method": "VmRSS after techniques were applied, before the workload"}
        )
        metrics["rss_after_setup_bytes"] = {**measured, "unit": "B", "higher_is_better": False}
    res["curves"] = out["curves"]
    res["items"].update(out["items"])
    res["data"].update(out.get("data", {}))


def run_spec(spec_dict: dict, shared_dir=None) -> dict:
    """One run, start to end: a RunResult dict whatever happens (`ok`, `skipped`, `oom` or `failed`).
    shared_dir: the folder of the set's run results, where measurements its runs share are kept
    (effbench.child.shared); None: measure everything here."""
    imports_s = _since_process_start_s()  # interpreter + the imports above
    import torch

    from effbench import runspec
    from effbench.child import measure
    from effbench.child.log import log
    from effbench.child.workloads import finetune, infer
    from effbench.read import results

    spec = runspec.RunSpec.from_dict(spec_dict)
    res = results.new_run(spec.id, spec.to_dict())
    if spec.threads is not None:  # the BLAS/OpenMP pools were sized from THREAD_VARS before torch loaded
        torch.set_num_threads(spec.threads)
    t_start = time.perf_counter()
    try:
        budget, techs, dtype = _checked(spec)
        res["env"] = measure.environment(spec.device)
        _seed(spec.seed)
        model, tok, info, load_s, built_here = _load_model(spec, dtype, res)
        data = _load_data(spec, budget, res)
        ctx = _context(spec, budget, techs, dtype, tok)
        # Start-up: process creation to here (interpreter, imports, environment, model load and
        # hash, data); printed per run by `make gpu-check`. Evaluations and techniques come after.
        res["setup"].update(imports_s=imports_s, startup_s=_since_process_start_s())
        quality = info.report_quality and not spec.timing_only
        if spec.scenario == "finetune" and quality:
            res["metrics"].update(_unmodified_accuracy(model, tok, data, spec, budget, res, shared_dir))
        data, model = _apply_techniques(techs, data, model, ctx, spec, res)
        res["setup"]["model_load_s"] = load_s
        rss = measure.rss_bytes()
        log(f"running the {spec.scenario} workload")
        if spec.scenario == "finetune":
            out = finetune.run(model, tok, data, spec, budget, ctx, techs, quality=quality)
        else:
            out = infer.run(model, tok, data, spec, budget, ctx, techs, info)
        _record(res, out, spec, info, rss, built_here)
        for t in techs:
            t.finish(model, ctx)
        res["technique_records"] = ctx.records
        res["status"] = "ok"
        if out.get("failures"):  # a check inside the workload failed: its figures stay, the run fails
            res.update(status="failed", error="; ".join(out["failures"]))
    except Skip as e:
        res.update(status="skipped", reason=str(e))
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
    res = run_spec(spec, shared_dir=os.path.dirname(os.path.abspath(argv[1])))
    write_json_atomic(argv[1], res)
    return 0
