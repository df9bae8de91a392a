"""`baseline`: changes nothing. The empty technique list means the same; this name exists so a
suite can say so explicitly and so the contract test has a trivial case."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Technique, register


@register
class Baseline(Technique):
    name = "baseline"
    family = "baseline"
    description = "no change: the unmodified model (full fine-tuning in the train scenario)"

    @dataclass(frozen=True)
    class Config:
        pass
