"""`perplexity`: keep a band of the train split ranked by a reference model's loss on each example.

The reference is the unmodified fixed model (`ctx.load_reference_model()`, a fresh copy, dropped
after scoring). Each example's score is its mean next-token loss (nats/token) over the whole line
(`scope="text"`, as perplexity filtering of pre-training data does) or over the answer only
(`scope="answer"`, what fine-tuning trains on). Examples are sorted by score and `fraction` of them
kept from the `band`:

- `low`: the most predictable lines (duplicates of what the model knows, boilerplate);
- `middle` (default): drops both tails, junk at the top and trivial lines at the bottom
  (Marion et al. 2023, "When Less is More", found middle-band perplexity pruning competitive);
- `high`: the least predictable lines (hard examples, but also junk and wrong answers).

Scoring time is setup time (the harness times `prepare_data`); the tokens forwarded are recorded
as `scoring_tokens` and count in the run's `pruning` record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from . import _data_pruning
from .base import FRACTION, Technique, TechniqueError, at_least, register


@register
class PerplexityPrune(Technique):
    name = "perplexity"
    family = "data_pruner"
    description = "data pruning: keep a band (low/middle/high) of examples ranked by a reference model's loss"
    scenarios = ("train",)

    @dataclass(frozen=True)
    class Config:
        fraction: float = 0.5  # kept fraction of this step's input; lower: less training, more scoring share
        band: Literal["low", "middle", "high"] = "middle"  # which losses to keep (see the module docstring)
        scope: Literal["text", "answer"] = "text"  # tokens scored: the whole line or the answer only
        batch_size: int = 32  # examples per scoring forward pass; higher: faster, more memory

        ranges = {"fraction": FRACTION, "batch_size": at_least(1, 4096)}

    def prepare_data(self, data, ctx):
        from . import _data_scoring as scoring

        if ctx.load_reference_model is None or ctx.tokenizer is None:
            raise TechniqueError("perplexity needs the reference model and tokenizer in the Context")
        c = self.config
        t0 = time.perf_counter()
        ref = ctx.load_reference_model()
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores, n_tok = scoring.score(ref, ctx.tokenizer, data.train, ctx.device, c.batch_size, c.scope, "loss")
        score_s = time.perf_counter() - t0
        del ref
        scoring.free_memory(ctx.device)
        order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
        keep = _data_pruning.band(order, _data_pruning.n_keep(len(order), c.fraction), c.band)
        kept = [scores[i] for i in keep]
        return _data_pruning.finish(
            self.name,
            data,
            keep,
            ctx,
            scoring_tokens=n_tok,
            scoring_s=score_s,
            reference_load_s=load_s,
            score_unit="nats/token",
            kept_score_range=[min(kept), max(kept)] if kept else None,
            mean_score_by_kind=scoring.mean_by_kind(data.train, scores),
        )
