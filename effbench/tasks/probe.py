"""`probe`: a general-capability check in multiple-choice form, generated from templates whose
answers are true by construction (sequences continue by a rule; antonym pairs and facts come
from fixed tables of unambiguous pairs). Four choices per item, so chance is 25%.

It is what inference techniques (quantization, sparsity) must not break: the unmodified default
model scores well above chance, and a damaged model falls toward chance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
NUMBER_WORDS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
ANTONYMS = [
    ("hot", "cold"),
    ("big", "small"),
    ("up", "down"),
    ("fast", "slow"),
    ("day", "night"),
    ("open", "closed"),
    ("light", "dark"),
    ("happy", "sad"),
    ("old", "young"),
    ("rich", "poor"),
    ("strong", "weak"),
    ("early", "late"),
    ("wet", "dry"),
    ("full", "empty"),
    ("hard", "soft"),
    ("high", "low"),
    ("long", "short"),
    ("thick", "thin"),
    ("win", "lose"),
    ("buy", "sell"),
    ("push", "pull"),
    ("inside", "outside"),
    ("left", "right"),
    ("black", "white"),
    ("true", "false"),
    ("loud", "quiet"),
    ("clean", "dirty"),
    ("begin", "end"),
    ("love", "hate"),
]
# (template, answer): facts stable enough to be true by construction.
FACTS = [
    ("The capital of France is", "Paris"),
    ("The capital of Italy is", "Rome"),
    ("The capital of Japan is", "Tokyo"),
    ("The capital of Germany is", "Berlin"),
    ("The capital of Spain is", "Madrid"),
    ("The capital of England is", "London"),
    ("The capital of Russia is", "Moscow"),
    ("The capital of China is", "Beijing"),
    ("The capital of Egypt is", "Cairo"),
    ("The capital of Greece is", "Athens"),
    ("Water freezes at zero degrees", "Celsius"),
    ("The opposite of north is", "south"),
    ("The opposite of east is", "west"),
    ("A week has seven", "days"),
    ("A year has twelve", "months"),
    ("The sun rises in the", "east"),
    ("The color of grass is", "green"),
    ("The color of the clear sky is", "blue"),
    ("Snow is usually", "white"),
    ("Bees make", "honey"),
    ("Cows give", "milk"),
    ("A baby cat is called a", "kitten"),
    ("A baby dog is called a", "puppy"),
    ("The largest planet in the solar system is", "Jupiter"),
    ("The planet we live on is", "Earth"),
]
FACT_DISTRACTORS = [
    "Paris",
    "Rome",
    "Tokyo",
    "Berlin",
    "Madrid",
    "London",
    "Moscow",
    "Beijing",
    "Cairo",
    "Athens",
    "Celsius",
    "south",
    "west",
    "days",
    "months",
    "east",
    "green",
    "blue",
    "white",
    "honey",
    "milk",
    "kitten",
    "puppy",
    "Jupiter",
    "Earth",
    "red",
    "north",
    "hours",
    "bread",
    "water",
]


@dataclass(frozen=True)
class MCItem:
    family: str
    context: str
    choices: tuple[str, ...]  # each with its leading space
    gold: int


def chance_level(items) -> float:
    """Expected accuracy of a uniform guesser: the mean over items of 1 / number of choices."""
    if not items:
        raise ValueError("chance level of an empty item list")
    return sum(1 / len(it.choices) for it in items) / len(items)


def _item(rng: random.Random, family: str, context: str, answer: str, pool: list[str]) -> MCItem:
    distract = rng.sample([p for p in dict.fromkeys(pool) if p != answer], 3)
    choices = distract + [answer]
    rng.shuffle(choices)
    return MCItem(family, context, tuple(" " + c for c in choices), choices.index(answer))


def _cyclic(rng, family, names, lengths=(3, 4), sep=", "):
    out = []
    for start in range(len(names)):
        for n in lengths:
            seq = [names[(start + i) % len(names)] for i in range(n + 1)]
            out.append(_item(rng, family, sep.join(seq[:-1]) + sep.rstrip(), seq[-1], names))
    return out


def generate(seed: int = 0, n_arith_seq: int = 300) -> list[MCItem]:
    """All probe items: ~680 by default, in a fixed order for a seed."""
    rng = random.Random(seed)
    items = []
    items += _cyclic(rng, "weekday", DAYS, lengths=(2, 3, 4))
    items += _cyclic(rng, "month", MONTHS, lengths=(2, 3, 4))
    items += [
        it
        for it in _cyclic(rng, "number_word", NUMBER_WORDS, lengths=(3, 4))
        if not it.context.startswith(("nineteen", "twenty", "eighteen"))
    ]
    items += [
        it for it in _cyclic(rng, "letter", LETTERS, lengths=(3, 4)) if not it.context.startswith(("X", "Y", "Z", "W"))
    ]
    for _ in range(n_arith_seq):
        step = rng.randint(1, 10)
        start = rng.randint(1, 60)
        seq = [start + k * step for k in range(5)]
        ans = seq[-1]
        pool = [str(ans + d) for d in (-2 * step, -step, step, 1, -1, 2 * step, step + 1) if ans + d > 0] + [str(ans)]
        items.append(_item(rng, "number_seq", ", ".join(map(str, seq[:-1])) + ",", str(ans), pool))
    words = [w for pair in ANTONYMS for w in pair]
    for a, b in ANTONYMS:
        items.append(_item(rng, "antonym", f"The opposite of {a} is", b, words))
        items.append(_item(rng, "antonym", f"The opposite of {b} is", a, words))
    for ctx, ans in FACTS:
        items.append(_item(rng, "fact", ctx, ans, FACT_DISTRACTORS))
    return items
