"""`el2n`: keep the hardest examples by EL2N score after a short warm-up, minus the top outliers.

EL2N (Paul et al. 2021, "Deep Learning on a Data Diet") scores an example by the L2 norm of the
error of the model's predicted distribution, early in training: examples the model still gets
wrong after a few steps are informative, the easy ones can go. The very highest scores are often
label noise (here: wrong answers and junk), so the top `drop_top` fraction is dropped first and
the next `fraction` kept. Both fractions are of this step's input.

The warm-up trains a fresh reference copy of the model (`ctx.load_reference_model()`, full
fine-tuning, AdamW at `warmup_lr`) for `warmup_steps` steps of `batch_size` examples on the answer
tokens, never the run's own model; the copy is dropped after scoring. Warm-up and scoring time are
setup time; the tokens trained and forwarded are recorded as `scoring_tokens`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from . import _data_pruning
from .base import FRACTION, PROBABILITY, Range, Technique, TechniqueError, at_least, register


@register
class EL2NPrune(Technique):
    name = "el2n"
    family = "data_pruner"
    description = "data pruning: keep the hardest examples by EL2N after a short warm-up, dropping top outliers"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        fraction: float = 0.5  # kept fraction of this step's input
        drop_top: float = 0.1  # highest-scoring fraction dropped first as likely label noise
        warmup_steps: int = 10  # AdamW steps on the reference copy before scoring; more: better scores, slower
        warmup_lr: float = 1e-4  # full fine-tuning learning rate of the warm-up
        batch_size: int = 16  # examples per warm-up step and per scoring pass
        scope: Literal["answer", "text"] = "answer"  # tokens scored: the answer (trained on) or the whole line

        ranges = {
            "fraction": FRACTION,
            "drop_top": PROBABILITY,
            "warmup_steps": at_least(0, 100_000),
            "warmup_lr": Range(0.0, 1.0, lo_open=True),
            "batch_size": at_least(1, 4096),
        }

        def __post_init__(self):
            if self.fraction + self.drop_top > 1.0:
                raise ValueError(f"fraction={self.fraction} + drop_top={self.drop_top} must be <= 1")

    def prepare_data(self, data, ctx):
        from . import _data_scoring as scoring

        if ctx.load_reference_model is None or ctx.tokenizer is None:
            raise TechniqueError("el2n needs the reference model and tokenizer in the Context")
        c = self.config
        t0 = time.perf_counter()
        ref = ctx.load_reference_model()
        for p in ref.parameters():
            p.requires_grad_(True)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_tok = (
            scoring.warm_up(
                ref, ctx.tokenizer, data.train, ctx.device, c.warmup_steps, c.batch_size, c.warmup_lr, ctx.seed
            )
            if c.warmup_steps
            else 0
        )
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores, n_tok = scoring.score(ref, ctx.tokenizer, data.train, ctx.device, c.batch_size, c.scope, "el2n")
        score_s = time.perf_counter() - t0
        del ref
        scoring.free_memory(ctx.device)
        n = len(scores)
        hardest_first = sorted(range(n), key=lambda i: (-scores[i], i))
        k = _data_pruning.n_keep(n, c.fraction)
        skip = min(round(c.drop_top * n), n - k)  # rounding both up must not cost kept examples
        keep = hardest_first[skip : skip + k]
        kept = [scores[i] for i in keep]
        return _data_pruning.finish(
            self.name,
            data,
            keep,
            ctx,
            scoring_tokens=warm_tok + n_tok,
            warmup_tokens=warm_tok,
            warmup_s=warm_s,
            scoring_s=score_s,
            reference_load_s=load_s,
            dropped_top=skip,
            score_unit="L2 norm",
            kept_score_range=[min(kept), max(kept)] if kept else None,
            mean_score_by_kind=scoring.mean_by_kind(data.train, scores),
        )
