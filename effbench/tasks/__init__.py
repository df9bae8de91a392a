"""Built-in tasks, generated deterministically with no network, and the lm-eval bridge.

`load(name, ...)` returns the train/eval splits of a training task with the SHA-256 of its data,
which every result records.
"""

from __future__ import annotations

import hashlib
import json

from .arith import ArithConfig, Example, TaskData, generate

# Presets of the arith generator. `arith-noisy` is the realistic noisy training set that data
# pruning is measured on: 15% exact and 15% near duplicates (spacing, operand order, a question
# phrasing), 10% wrong answers (off by 1, 2 or 10), 5% junk lines (boilerplate, markup, malformed
# or truncated problems, over-long lines). Its eval split is the clean `arith` one for the same seed.
PRESETS = {
    "arith": {},
    "arith-noisy": dict(duplicate_rate=0.15, near_duplicate_rate=0.15, wrong_answer_rate=0.10, junk_rate=0.05),
}


# Real-data fine-tuning tasks (effbench.tasks.heldout): a fixed train/eval split of a public data set.
HELD_OUT = ("sst2",)
NAMES = (*PRESETS, *HELD_OUT)  # every training task a run may name


def load(name: str, n_train: int = 2000, n_eval: int = 200, seed: int = 0, **overrides) -> TaskData:
    if name in HELD_OUT:
        from effbench.tasks import heldout

        if overrides:
            raise ValueError(f"task {name!r} takes no generator options, got {sorted(overrides)}")
        return heldout.load(name, n_train, n_eval)
    if name not in PRESETS:
        raise ValueError(f"unknown task {name!r}; valid: {sorted(NAMES)}")
    cfg = ArithConfig(n_train=n_train, n_eval=n_eval, seed=seed, **{**PRESETS[name], **overrides})
    data = generate(cfg)
    data.name = name
    return data


def data_sha256(examples) -> str:
    blob = json.dumps([[e.prompt, e.answer, e.kind] for e in examples]).encode()
    return hashlib.sha256(blob).hexdigest()


__all__ = ["ArithConfig", "Example", "TaskData", "generate", "load", "data_sha256", "PRESETS", "HELD_OUT", "NAMES"]
