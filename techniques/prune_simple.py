"""Data pruning without a model: `random` (the baseline every strategy must beat) and `heuristic`.

`random` keeps a uniformly drawn `fraction` of the train split (seeded by the run's seed).
`heuristic` keeps the lines that look like a problem and its answer: the prompt ends in
"<number> <operator> <number> =", the answer is one integer, and the whole line is at most
`max_chars` characters. It costs no model time and catches junk and malformed lines, but cannot
see duplicates or wrong answers. Both act in `prepare_data` only; the eval split is never touched.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from . import _data_pruning
from .base import FRACTION, Technique, at_least, register

# A problem: anything, then "<int> <op> <int> =" at the end (spacing free); an answer: one integer.
_PROBLEM = re.compile(r".*?-?\d+\s*[-+*/]\s*-?\d+\s*=\s*")
_ANSWER = re.compile(r"\s*-?\d+\s*")


@register
class RandomPrune(Technique):
    name = "random"
    family = "data_pruner"
    description = "data pruning baseline: keep a uniformly random fraction of the train split"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        fraction: float = 0.5  # kept fraction of the train split; lower: less training, less data

        ranges = {"fraction": FRACTION}

    def prepare_data(self, data, ctx):
        n = len(data.train)
        keep = random.Random(ctx.seed).sample(range(n), _data_pruning.n_keep(n, self.config.fraction))
        return _data_pruning.finish(self.name, data, keep, ctx, scoring_tokens=0)


def parses(prompt: str, answer: str, max_chars: int) -> bool:
    """Whether a line looks like an arithmetic problem with an integer answer, short enough."""
    return (
        len(prompt) + len(answer) <= max_chars
        and _PROBLEM.fullmatch(prompt) is not None
        and _ANSWER.fullmatch(answer) is not None
    )


@register
class HeuristicPrune(Technique):
    name = "heuristic"
    family = "data_pruner"
    description = "data pruning: drop lines that do not parse as problem + integer answer, and over-long lines"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        max_chars: int = 64  # longest kept line (prompt + answer); lower: stricter, may drop phrasings

        ranges = {"max_chars": at_least(1, 100_000)}

    def prepare_data(self, data, ctx):
        keep = [i for i, e in enumerate(data.train) if parses(e.prompt, e.answer, self.config.max_chars)]
        dropped_format = sum(1 for e in data.train if not parses(e.prompt, e.answer, 10**9))
        return _data_pruning.finish(
            self.name,
            data,
            keep,
            ctx,
            scoring_tokens=0,
            dropped_format=dropped_format,
            dropped_length=len(data.train) - len(keep) - dropped_format,
        )
