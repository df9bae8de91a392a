"""`prompt_lookup`: prompt-lookup decoding, transformers' assisted generation without a draft model.

What it trades: greedy decoding runs one forward pass per token. Prompt lookup proposes the next
`num_tokens` tokens by finding the latest n-gram of the text so far (at most
`max_matching_ngram` tokens long) earlier in the prompt and output, and copying what followed
it; one forward pass over the proposal checks them all, keeps the longest prefix greedy would have
chosen, and adds greedy's own next token. Where the output repeats its input (extraction,
rewriting, code edits), several tokens land per forward pass; where it does not, each pass costs
a little more than a plain step (a longer query) and gains nothing.

How: the infer workload's generation measurement (`generate_tokens` in the infer budget) calls
`generate(prompt_lookup_num_tokens=num_tokens, max_matching_ngram_size=max_matching_ngram)`
through `generate_kwargs`, and because the decoding changed it also generates plain greedy on the
same model in the same run, interleaved: `generate_tokens_per_s.<repeat|novel>` against
`generate_greedy_tokens_per_s.<repeat|novel>`. The tokens are compared, not assumed equal:
`token_identity.<prompt>` below 1 (a verification pass of several tokens rounds differently from
one-token steps, and a near tie can flip an argmax, bf16 more than fp32) fails the run with the
first differing position, its figures kept. The model is not changed; prefill and decode
timings are the model's own.

Refused before work: outside inference, where the budget has no generation measurement
(`generate_tokens = 0`), and beside `static_cache` (transformers refuses assisted generation with
a static cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Context, Technique, TechniqueError, at_least, register


@register
class PromptLookup(Technique):
    name = "prompt_lookup"
    family = "decoding"
    description = "prompt-lookup assisted decoding (no draft model); greedy tokens checked equal in the run"
    scenarios = ("infer",)

    @dataclass(frozen=True)
    class Config:
        num_tokens: int = 10  # tokens proposed per lookup; higher: more per pass when copying, longer passes
        max_matching_ngram: int = 2  # longest n-gram searched for; higher: fewer, more specific matches

        ranges = {"num_tokens": at_least(1, 128), "max_matching_ngram": at_least(1, 32)}

    def check_budget(self, scenario: str, budget) -> None:
        if scenario == "infer" and getattr(budget, "generate_tokens", 0) == 0:
            raise TechniqueError(
                "prompt_lookup acts on generate() only: the infer budget's generate_tokens is 0 (no generation "
                "measurement); set it, e.g. generate_tokens = 32"
            )

    def check_combination(self, names) -> None:
        if "static_cache" in names:
            raise TechniqueError(
                "prompt_lookup cannot be combined with static_cache: transformers refuses assisted generation "
                "with a static cache ('assisted generate is not supported with Static cache classes')"
            )

    def apply(self, model, ctx: Context):
        if not hasattr(model, "generate"):
            raise TechniqueError(f"prompt_lookup: {type(model).__name__} has no generate()")
        if ctx.hparams.get("generate_tokens") == 0:
            raise TechniqueError("prompt_lookup: the infer budget's generate_tokens is 0 (no generation measurement)")
        ctx.record(self.name, "num_tokens", self.config.num_tokens)
        ctx.record(self.name, "max_matching_ngram", self.config.max_matching_ngram)
        return model

    def generate_kwargs(self, model, ctx: Context) -> dict:
        return {
            "prompt_lookup_num_tokens": self.config.num_tokens,
            "max_matching_ngram_size": self.config.max_matching_ngram,
        }
