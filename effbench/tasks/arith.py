"""`arith`: integer addition and subtraction, generated deterministically.

Prompts are written so that the model continues them with the answer ("47 + 38 =" -> " 85"),
not with an end-of-turn token; the answer ends with a newline, which is also where generation
stops. The eval split is drawn first from the shuffled set of unique problems, so train and eval
never share a problem. Data-quality knobs (duplicates, wrong answers, junk lines) only touch the
train split, and every example carries a `kind` tag so that data pruning can be scored against
what was injected.

Noise, as a scraped fine-tuning set has it: exact copies; near copies (the same problem in another
surface form: spacing, operand order for addition, a question phrasing); wrong answers (off by 1,
2 or 10, on problems of their own); junk (boilerplate, markup, malformed or truncated problems,
over-long lines). When near copies are injected, "the same problem" includes operand order, so the
train problems are then also unique up to operand order and never mirror an eval problem:
otherwise clean examples would be near copies of each other (or of eval items) by accident.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

END = "\n"  # the answer's terminator: trained on, and the stop sequence for generation


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str  # with its leading space, without END: " 85"
    kind: str = "clean"  # clean | duplicate | near_duplicate | wrong | junk
    uid: int = 0  # index of the underlying problem (duplicates share it)


@dataclass(frozen=True)
class ArithConfig:
    n_train: int = 2000  # examples in the train split (noise included)
    n_eval: int = 200  # examples in the eval split (always clean)
    digits: int = 2  # operand digits: 2 -> operands 10..99
    ops: tuple[str, ...] = ("+", "-")
    seed: int = 0
    duplicate_rate: float = 0.0  # fraction of train examples that are exact copies of another
    near_duplicate_rate: float = 0.0  # fraction that restate another problem in another surface form
    wrong_answer_rate: float = 0.0  # fraction with a wrong answer
    junk_rate: float = 0.0  # fraction that are not arithmetic at all

    def __post_init__(self):
        if self.digits < 1 or self.digits > 6:
            raise ValueError(f"digits={self.digits} must be between 1 and 6")
        bad = set(self.ops) - {"+", "-"}
        if bad or not self.ops:
            raise ValueError(f"ops={self.ops} must be a non-empty subset of ['+', '-']")
        rates = [self.duplicate_rate, self.near_duplicate_rate, self.wrong_answer_rate, self.junk_rate]
        if any(r < 0 or r >= 1 for r in rates) or sum(rates) >= 1:
            raise ValueError(f"noise rates {rates} must each be in [0, 1) and sum to under 1")
        if self.n_train < 1 or self.n_eval < 1:
            raise ValueError("n_train and n_eval must be positive")


@dataclass
class TaskData:
    """A task's splits. `train` may be changed by data-pruning techniques; `eval` never is."""

    name: str
    train: list[Example]
    eval: list[Example]
    config: dict = field(default_factory=dict)


def format_problem(a: int, op: str, b: int) -> str:
    return f"{a} {op} {b} ="


def solve(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b


def _near_variants(a: int, op: str, b: int) -> list[str]:
    """Other surface forms of the same problem: spacing, operand order, phrasing."""
    forms = [f"{a}{op}{b} =", f"{a} {op} {b}=", f"{a}  {op}  {b} =", f"What is {a} {op} {b}? {a} {op} {b} ="]
    if op == "+" and a != b:  # a == b would give the original text: an exact copy, not a near one
        forms += [f"{b} + {a} =", f"{b}+{a} ="]
    return forms


_JUNK = [
    "lorem ipsum dolor",
    "<html><body>",
    "click here to subscribe",
    "###",
    "the the the the",
    "0x7f3a9c",
    "null",
    "ERROR 404 page not found",
    "asdf jkl;",
    "== References ==",
]
_BOILERPLATE = (
    "Cookies help us deliver our services. By using our services, you agree to our use of "
    "cookies. Learn more about how we handle your data."
)


def _junk(rng: random.Random, a: int, op: str, b: int) -> tuple[str, str]:
    """One junk line (prompt, answer): boilerplate, markup, a malformed problem or an over-long line."""
    form = rng.randrange(4)
    if form == 0:
        return rng.choice(_JUNK), " " + rng.choice(_JUNK)
    if form == 1:  # truncated problem: an operand is missing
        return f"{a} {op} =", f" {solve(a, op, b)}"
    if form == 2:  # answer that is not a number
        return format_problem(a, op, b), rng.choice([" ???", " N/A", " see above", " [citation needed]"])
    return f"{a} {op} {b} = {solve(a, op, b)} | {_BOILERPLATE}", " " + rng.choice(_JUNK)


def _without_mirrors(eval_p: list, pool: list) -> list:
    """`pool` less every addition problem whose operand-swapped form is in eval or earlier in pool."""
    seen = {(a, op, b) for a, op, b in eval_p}
    out = []
    for a, op, b in pool:
        if op == "+" and (b, op, a) in seen:
            continue
        seen.add((a, op, b))
        out.append((a, op, b))
    return out


def generate(cfg: ArithConfig) -> TaskData:
    rng = random.Random(cfg.seed)
    lo, hi = 10 ** (cfg.digits - 1) if cfg.digits > 1 else 0, 10**cfg.digits - 1
    problems = [
        (a, op, b) for op in cfg.ops for a in range(lo, hi + 1) for b in range(lo, hi + 1) if op == "+" or a >= b
    ]  # subtraction stays non-negative
    rng.shuffle(problems)
    if cfg.n_eval >= len(problems):
        raise ValueError(f"n_eval={cfg.n_eval} leaves no train problems ({len(problems)} unique)")
    eval_p, pool = problems[: cfg.n_eval], problems[cfg.n_eval :]
    if cfg.near_duplicate_rate > 0:
        pool = _without_mirrors(eval_p, pool)
    ev = [Example(format_problem(*p), f" {solve(*p)}", "clean", i) for i, p in enumerate(eval_p)]

    n = cfg.n_train
    n_dup, n_near = round(n * cfg.duplicate_rate), round(n * cfg.near_duplicate_rate)
    n_wrong, n_junk = round(n * cfg.wrong_answer_rate), round(n * cfg.junk_rate)
    n_clean = n - n_dup - n_near - n_wrong - n_junk
    if n_clean + n_wrong > len(pool):
        raise ValueError(f"n_train={n} needs more unique problems than {cfg.digits}-digit operands give")
    uids = list(range(cfg.n_eval, cfg.n_eval + len(pool)))
    clean = [Example(format_problem(*p), f" {solve(*p)}", "clean", uids[i]) for i, p in enumerate(pool[:n_clean])]
    train = list(clean)
    for _ in range(n_dup):
        train.append(replace(rng.choice(clean), kind="duplicate"))
    for _ in range(n_near):
        src_i = rng.randrange(n_clean)
        a, op, b = pool[src_i]
        train.append(
            Example(rng.choice(_near_variants(a, op, b)), f" {solve(a, op, b)}", "near_duplicate", uids[src_i])
        )
    for j in range(n_wrong):
        i = n_clean + j
        a, op, b = pool[i]
        delta = rng.choice([-10, -2, -1, 1, 2, 10])
        train.append(Example(format_problem(a, op, b), f" {solve(a, op, b) + delta}", "wrong", uids[i]))
    spare = pool[n_clean + n_wrong :] or pool  # problems no clean or wrong example uses
    for j in range(n_junk):
        prompt, answer = _junk(rng, *spare[j % len(spare)])
        train.append(Example(prompt, answer, "junk", -1 - j))
    rng.shuffle(train)
    return TaskData("arith", train, ev, config=_asdict(cfg))


def _asdict(cfg: ArithConfig) -> dict:
    from dataclasses import asdict

    d = asdict(cfg)
    d["ops"] = list(cfg.ops)
    return d
