"""Evaluate built-in tasks (and any lm-eval task by name) on an in-memory model through lm-eval.

Each built-in task is written as an lm-eval task (YAML + JSONL with absolute paths) into the
cache, in a folder named by its data hash (verified against the data on every use, rebuilt if it
differs), and evaluated with `lm_eval.simple_evaluate`. lm-eval
is imported lazily, here only, so that speed/memory runs work where it is not installed.

Every evaluation returns per-item scores in item order, so two result sets can be compared with a
paired test; the standard error of a mean score is scipy.stats.sem over items (ddof=1: the sample
standard deviation / sqrt(n), what lm-eval reports as `_stderr`; for 0/1 scores with k correct
of n that is sqrt(p(1-p)/(n-1)), p = k/n). One item has no standard error (None).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..models import cache_dir

ARITH_TASK = "effbench_arith"
PROBE_TASK = "effbench_probe"


def _task_files_problem(d: Path, expected: dict[str, bytes]) -> str | None:
    """Why the cached task folder is not exactly `expected` (name -> bytes), or None. lm-eval reads
    every YAML file in the folder (and YAML can name Python functions), so extra files count too."""
    if d.is_symlink() or not d.is_dir():
        return "missing" if not d.exists() and not d.is_symlink() else "not a plain folder"
    names = {p.name for p in d.iterdir()}
    if names != set(expected):
        return f"unexpected files {sorted(names ^ set(expected))}"
    for name, data in expected.items():
        f = d / name
        if f.is_symlink() or hashlib.sha256(f.read_bytes()).digest() != hashlib.sha256(data).digest():
            return f"{name} differs from the task's data (sha256)"
    return None


def _write_task(name: str, yaml_text: str, rows: list[dict]) -> tuple[Path, str]:
    """Write the JSONL rows and the YAML into `<cache>/lmeval/<name>-<sha12>/`; returns (dir, sha)."""
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    sha = hashlib.sha256(data).hexdigest()
    d = cache_dir() / "lmeval" / f"{name}-{sha[:12]}"
    expected = {
        "data.jsonl": data,
        f"{name}.yaml": yaml_text.replace("@DATA@", str(d.resolve() / "data.jsonl")).encode(),
    }
    return _install(d, expected), sha


def _install(d: Path, expected: dict[str, bytes]) -> Path:
    """Make folder `d` hold exactly `expected` (name -> bytes). A cached folder is reused only if its
    files equal what this call would write (checked each time: small files); otherwise it is rebuilt,
    with a message, so a tampered cache is never read."""
    problem = _task_files_problem(d, expected)
    if problem is None:
        return d
    if problem != "missing":
        print(f"effbench: cached lm-eval task {d} fails verification ({problem}); rebuilding it", file=sys.stderr)
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=d.name + ".", suffix=".tmp", dir=d.parent))
    try:
        for fname, content in expected.items():
            (tmp / fname).write_bytes(content)
        if d.is_symlink() or d.is_file():
            d.unlink()
        elif d.exists():
            shutil.rmtree(d)
        try:
            tmp.rename(d)
        except OSError:  # another process rebuilt it meanwhile
            if _task_files_problem(d, expected) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return d


def write_public(names) -> Path:
    """The lm-eval task folder of public tasks `names` (effbench.tasks.public): one YAML per task,
    each naming its verified Arrow file, in `<cache>/lmeval/public-<sha12>/`."""
    from effbench.tasks import public

    hf_cache = cache_dir() / "hf-datasets"
    files = {f"effbench_{n}.yaml": public.task_yaml(n, hf_cache).encode() for n in sorted(set(names))}
    sha = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in sorted(files.items()))).hexdigest()
    return _install(cache_dir() / "lmeval" / f"public-{sha[:12]}", files)


def write_heldout(name: str) -> Path:
    """The lm-eval task folder of real-data fine-tuning task `name` (effbench.tasks.heldout): lm-eval's
    own definition reading the verified local Arrow file, in `<cache>/lmeval/heldout-<sha12>/`."""
    from effbench.tasks import heldout

    files = {f"effbench_{name}.yaml": heldout.task_yaml(name, cache_dir() / "hf-datasets").encode()}
    sha = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in sorted(files.items()))).hexdigest()
    return _install(cache_dir() / "lmeval" / f"heldout-{sha[:12]}", files)


def write_arith(examples) -> tuple[Path, str]:
    rows = [{"prompt": e.prompt, "answer": e.answer.strip()} for e in examples]
    yaml_text = f"""task: {ARITH_TASK}
dataset_path: json
dataset_kwargs:
  data_files:
    test: "@DATA@"
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: ""
num_fewshot: 0
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: ["\\\\s"]
metadata:
  version: 1
"""
    return _write_task(ARITH_TASK, yaml_text, rows)


def write_probe(items) -> tuple[Path, str]:
    rows = [{"context": it.context, "choices": list(it.choices), "gold": it.gold, "family": it.family} for it in items]
    yaml_text = f"""task: {PROBE_TASK}
dataset_path: json
dataset_kwargs:
  data_files:
    test: "@DATA@"
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: choices
doc_to_target: gold
target_delimiter: ""
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""
    return _write_task(PROBE_TASK, yaml_text, rows)


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name in ("lm-eval", "lm_eval", "datasets", "evaluate", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass


def unwrap(model):
    """lm-eval wants a transformers PreTrainedModel: peft's wrapper holds one whose layers
    already carry the adapters, so evaluating it evaluates the adapted model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def evaluate(
    model,
    tokenizer,
    task: str,
    task_dir: Path | None,
    device: str,
    batch_size: int = 32,
    limit: int | None = None,
    seed: int = 0,
) -> dict:
    """Run one lm-eval task. Returns {metric: {value, stderr, n}, "items": {metric: [per-item]}}."""
    return evaluate_many(model, tokenizer, [task], task_dir, device, batch_size, limit=limit, seed=seed)[task]


def evaluate_many(
    model,
    tokenizer,
    tasks: list[str],
    task_dir: Path | None,
    device: str,
    batch_size: int = 32,
    limit: int | None = None,
    samples: dict[str, list[int]] | None = None,
    seed: int = 0,
) -> dict:
    """Run lm-eval tasks in one call; `samples`: task -> sorted indices of the docs to score (None:
    all). Returns task -> {metric: {value, stderr, n}, "items": {metric: [per-item]}, "doc_ids": [...]},
    per-item lists in doc order."""
    _quiet()
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    if task_dir is not None:
        tm = TaskManager(include_path=str(task_dir), include_defaults=False)
    else:
        tm = TaskManager()
    if samples is not None:
        for t, ids in samples.items():
            if list(ids) != sorted(set(ids)):
                raise ValueError(f"samples for {t!r} must be sorted distinct doc indices")
    was_training = model.training
    model.eval()
    padding_side = tokenizer.padding_side
    lm = HFLM(pretrained=unwrap(model), tokenizer=tokenizer, batch_size=batch_size, device=device, max_length=2048)
    try:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=list(tasks),
            task_manager=tm,
            limit=limit,
            samples=samples or None,
            log_samples=True,
            bootstrap_iters=0,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            verbosity="ERROR",
        )
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return {task: _task_result(task, out) for task in tasks}


def _task_result(task: str, out: dict) -> dict:
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    res: dict = {"task": task, "items": {}, "doc_ids": [int(s["doc_id"]) for s in samples]}
    for key in out["results"][task]:
        metric, _, filt = key.partition(",")
        if (
            metric in ("alias", "samples")
            or metric.endswith("_stderr")
            or not isinstance(out["results"][task][key], (int, float))
        ):
            continue
        per_item = [float(s[metric]) for s in samples if metric in s]
        if not per_item:
            continue
        res[metric] = summarize(per_item)
        res["items"][metric] = per_item
    return res


def summarize(values: list[float]) -> dict:
    """Mean of per-item scores with its standard error (scipy.stats.sem, ddof=1) and item count."""
    from scipy import stats

    n = len(values)
    if n == 0:
        raise ValueError("no per-item scores to summarize")
    return {"value": float(np.mean(values)), "stderr": float(stats.sem(values, ddof=1)) if n > 1 else None, "n": n}
