"""What every data-pruning strategy shares: how many to keep, and what was removed.

Each strategy (`random`, `dedup`, `heuristic`, `perplexity`, `el2n`) picks the indices of the
train examples it keeps and hands them to `finish`, which builds the pruned split (eval untouched)
and records two things through `ctx.record`:

- under the strategy's own name, its step: examples and tokens in and kept, removed by kind;
- under `pruning`, the whole chain so far against the split as generated (the first strategy of a
  run stashes it on the Context): kept fraction and tokens, removed by kind, precision and recall
  of noise removal, scoring tokens and seconds of every strategy. The last strategy's record is
  the run's.

Counting removals by kind (the generator tags every example): copies of one problem (the clean
example, its exact duplicates and near duplicates share a `uid`) are interchangeable, so when a
strategy drops the clean copy but keeps another copy of the same problem, that kept copy stands in
for the clean one (an exact duplicate before a near duplicate): the clean example counts as kept
and the stand-in as removed. `clean` removed therefore means problems lost entirely.

  precision = injected noise removed / all examples removed
  recall    = injected noise removed / injected noise          (noise: duplicate, near_duplicate,
  recall_<kind> = <kind> removed / <kind> injected              wrong, junk)
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

NOISE = ("duplicate", "near_duplicate", "wrong", "junk")
KINDS = ("clean",) + NOISE
_COPIES = ("clean", "duplicate", "near_duplicate")  # kinds that share a problem's uid
_ORIGIN = "_pruning_origin"  # Context attribute: the train split before the first strategy


def n_keep(n: int, fraction: float) -> int:
    """Examples a kept `fraction` of `n` means: rounded, and at least one of a non-empty split."""
    return min(n, max(1, round(fraction * n))) if n else 0


def band(order: list[int], k: int, where: str) -> list[int]:
    """`k` indices from `order` (sorted by score, ascending): the lowest, middle or highest."""
    start = {"low": 0, "middle": (len(order) - k) // 2, "high": len(order) - k}[where]
    return order[start : start + k]


def text(e) -> str:
    return e.prompt + e.answer


def count_tokens(tokenizer, examples) -> int | None:
    if tokenizer is None or not examples:
        return None if tokenizer is None else 0
    ids = tokenizer([text(e) for e in examples], add_special_tokens=False)["input_ids"]
    return sum(len(x) for x in ids)


def removed_by_kind(before, after) -> dict[str, int]:
    """Removed examples per kind, copies of one problem counted as interchangeable (docstring)."""
    key = lambda e: (e.prompt, e.answer, e.kind, e.uid)  # noqa: E731
    kept_left = Counter(key(e) for e in after)
    groups: dict = defaultdict(lambda: {"orig": Counter(), "kept": Counter()})
    for i, e in enumerate(before):
        g = groups[("copies", e.uid) if e.kind in _COPIES else (e.kind, i)]
        g["orig"][e.kind] += 1
        if kept_left[key(e)] > 0:
            kept_left[key(e)] -= 1
            g["kept"][e.kind] += 1
    removed = Counter()
    for g in groups.values():
        orig, kept = g["orig"], g["kept"]
        if orig["clean"] and not kept["clean"]:
            stand_in = next((k for k in ("duplicate", "near_duplicate") if kept[k]), None)
            if stand_in:
                kept[stand_in] -= 1
                kept["clean"] += 1
        for k in orig:
            removed[k] += orig[k] - kept[k]
    return {k: removed.get(k, 0) for k in sorted(set(removed) | set(KINDS))}


def noise_scores(before, after) -> dict:
    """Kinds before and after, removed by kind, and precision/recall of noise removal."""
    injected = Counter(e.kind for e in before)
    removed = removed_by_kind(before, after)
    n_removed = len(before) - len(after)
    noise_in = sum(injected[k] for k in NOISE)
    noise_out = sum(removed[k] for k in NOISE)
    out = {
        "kinds_before": dict(injected),
        "removed_by_kind": removed,
        "precision": noise_out / n_removed if n_removed else None,
        "recall": noise_out / noise_in if noise_in else None,
    }
    for k in NOISE:
        out[f"recall_{k}"] = removed[k] / injected[k] if injected[k] else None
    return out


def finish(name: str, data, keep: list[int], ctx, **extra):
    """The pruned TaskData (kept examples in their original order, eval untouched), with records."""
    before = data.train
    after = [before[i] for i in sorted(set(keep))]
    tok = ctx.tokenizer
    tokens_in, tokens_kept = count_tokens(tok, before), count_tokens(tok, after)
    step = {
        "n_in": len(before),
        "n_kept": len(after),
        "kept_fraction": len(after) / len(before) if before else None,
        "tokens_in": tokens_in,
        "kept_tokens": tokens_kept,
        "removed_by_kind": removed_by_kind(before, after),
        **extra,
    }
    for k, v in step.items():
        ctx.record(name, k, v)
    origin = getattr(ctx, _ORIGIN, None)
    if origin is None:
        origin = {"train": list(before), "tokens": tokens_in}
        setattr(ctx, _ORIGIN, origin)
    prev = ctx.records.get("pruning", {})
    scoring = dict(prev.get("scoring_tokens_by_strategy", {}))
    scoring[name] = extra.get("scoring_tokens", 0)
    total = {
        "strategies": list(prev.get("strategies", [])) + [name],
        "n_original": len(origin["train"]),
        "n_kept": len(after),
        "kept_fraction": len(after) / len(origin["train"]) if origin["train"] else None,
        "tokens_original": origin["tokens"],
        "kept_tokens": tokens_kept,
        "kept_token_fraction": tokens_kept / origin["tokens"] if origin["tokens"] else None,
        "scoring_tokens": sum(scoring.values()),
        "scoring_tokens_by_strategy": scoring,
        **noise_scores(origin["train"], after),
    }
    for k, v in total.items():
        ctx.record("pruning", k, v)
    return dataclasses.replace(data, train=after)
