"""`generate()` timing on two prompts, and the check that a changed decoding method keeps greedy's tokens.

The infer workload's prefill/decode loop times the model's forward; this times what a user calls,
`model.generate` at batch 1, greedy, exactly `generate_tokens` new tokens (EOS suppressed), on two
prompts from the reference text:

- `repeat`: a passage of `prompt_len` tokens followed by its first min(COPY_CUE = 32,
  prompt_len / 2) tokens again, so a language model's continuation copies the rest of the passage
  (as extraction or rewriting does): the case prompt-lookup decoding is made for. (With 8 cue
  tokens the default model left the passage after 3 tokens: it starts with a heading; with 32 it
  copied 24 of the next 32.)
- `novel`: the next `prompt_len` tokens of the text, whose continuation is not in the prompt.

`copyable_fraction` says how much each output repeats its input: the fraction of generated tokens
that follow the latest earlier occurrence of the bigram before them (in prompt + output so far),
which is what a prompt lookup would have proposed.

The run's techniques may change the decoding method (`Technique.generate_kwargs`: a static cache,
prompt-lookup assisted decoding). Then each repeat also generates plain greedy on the same model,
interleaved, and `token_identity` is the fraction of positions whose token equals greedy's: less
than 1 is returned as a failure, so the run is recorded as failed with its figures kept.
"""

from __future__ import annotations

import time

import torch

from effbench.child import measure
from effbench.child.measure import metric
from effbench.runspec import COPY_CUE

PROMPTS = ("repeat", "novel")


def prompts(ids: torch.Tensor, prompt_len: int) -> dict[str, torch.Tensor]:
    """The two prompts from at least 2 x prompt_len reference-text token ids."""
    if len(ids) < 2 * prompt_len:
        raise ValueError(f"generation needs {2 * prompt_len} reference-text tokens, got {len(ids)}")
    passage = ids[:prompt_len]
    return {
        "repeat": torch.cat([passage, passage[: min(COPY_CUE, max(1, prompt_len // 2))]]),
        "novel": ids[prompt_len : 2 * prompt_len],
    }


def copyable_fraction(prompt: list[int], new: list[int]) -> float:
    """Fraction of `new` tokens equal to the token after the latest earlier occurrence of the bigram
    that precedes them (in prompt + new so far); a token with no such occurrence counts as a miss."""
    seq, hits = list(prompt), 0
    for tok in new:
        last = tuple(seq[-2:])
        for j in range(len(seq) - 3, -1, -1):
            if (seq[j], seq[j + 1]) == last:
                hits += seq[j + 2] == tok
                break
        seq.append(tok)
    return hits / len(new) if new else 0.0


@torch.no_grad()
def generate(model, prompt: torch.Tensor, n_new: int, device: str, kwargs: dict) -> list[int]:
    """Greedy generate() of exactly n_new tokens after `prompt` (1-D), batch 1."""
    ids = prompt.unsqueeze(0).to(device)
    cfg = getattr(model, "generation_config", None)
    pad = getattr(cfg, "pad_token_id", None)
    if pad is None:
        pad = getattr(cfg, "eos_token_id", None)
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n_new,
        min_new_tokens=n_new,
        do_sample=False,
        pad_token_id=pad[0] if isinstance(pad, list) else pad,
        **kwargs,
    )
    return out[0, ids.shape[1] :].tolist()


def _at(toks: list[int], i: int):
    return toks[i] if i < len(toks) else None


def _timed(model, prompt, n_new, device, kwargs) -> tuple[list[int], float]:
    measure.sync(device)
    t0 = time.perf_counter()
    toks = generate(model, prompt, n_new, device, kwargs)
    measure.sync(device)
    return toks, time.perf_counter() - t0


def identity(new: list[int], ref: list[int]) -> tuple[float, int | None]:
    """Fraction of positions whose tokens are equal, and the first that differs (None: none)."""
    n, k = max(len(new), len(ref)), min(len(new), len(ref))
    first = next((i for i in range(n) if i >= k or new[i] != ref[i]), None)
    return (sum(a == b for a, b in zip(new, ref)) / n if n else 1.0), first


def measure_generation(model, ids: torch.Tensor, budget, device: str, kwargs: dict, described: str) -> dict:
    """Metrics (and failures) of generate() on both prompts: `generate_tokens_per_s.<prompt>` with
    the run's decoding; when `kwargs` change it, `generate_greedy_tokens_per_s.<prompt>` and
    `token_identity.<prompt>` against plain greedy."""
    n, metrics, failures = budget.generate_tokens, {}, []
    for name, prompt in prompts(ids, budget.prompt_len).items():
        way, greedy, ref_toks, same, first = [], [], None, 1.0, None
        for _ in range(budget.repeats + 1):  # the first is the warm-up (allocator, any compilation)
            if kwargs:
                ref_toks, s = _timed(model, prompt, n, device, {})
                greedy.append(s)
            toks, s = _timed(model, prompt, n, device, kwargs)
            way.append(s)
            if kwargs:  # every repeat is checked; the worst is recorded
                same_r, first_r = identity(toks, ref_toks)
                if same_r < same:
                    same, first, bad = same_r, first_r, (toks, ref_toks)
        del way[0], greedy[:1]
        sfx = f".{name}"
        metrics["generate_tokens_per_s" + sfx] = metric(
            n / measure.stats(way)["median"],
            "tokens/s",
            True,
            samples=[n / s for s in way],
            method=f"batch 1, {n} new tokens / median wall time of generate() ({described}), prefill of "
            f"{len(prompt)} prompt tokens included",
        )
        if kwargs:
            metrics["generate_greedy_tokens_per_s" + sfx] = metric(
                n / measure.stats(greedy)["median"],
                "tokens/s",
                True,
                samples=[n / s for s in greedy],
                method=f"plain greedy generate() of the same model in the same run, interleaved; {n} new tokens",
            )
            metrics["token_identity" + sfx] = metric(
                same,
                "fraction",
                True,
                n=n,
                first_mismatch=first,
                method=f"fraction of the {n} new tokens equal to plain greedy's, worst repeat ({described}); must be 1",
            )
            if same < 1.0:
                failures.append(
                    f"token identity on the {name} prompt: {described} gave {same:.4f} of plain greedy's tokens "
                    f"(first difference at new token {first}: {_at(bad[0], first)} vs {_at(bad[1], first)})"
                )
        metrics["copyable_fraction" + sfx] = metric(
            copyable_fraction(prompt.tolist(), ref_toks if ref_toks is not None else toks),
            "fraction",
            method="new greedy tokens equal to the one after the latest earlier occurrence of their preceding bigram",
        )
    return {"metrics": metrics, "failures": failures}
