"""`dedup`: drop exact duplicates after normalisation, and near duplicates through MinHash/LSH.

Normalisation lowercases a line (prompt + answer), splits it into words, numbers and punctuation
marks, so spacing no longer matters ("47+38 = 85" is "47 + 38 = 85"), and with `commutative` on
writes the operands of a sum in numeric order ("38 + 47" is "47 + 38"; only where no neighbouring
-, * or / makes the order matter). Lines equal after normalisation are exact duplicates.

A near duplicate is a line whose shingles (token bigrams and trigrams; unigrams for one-token
lines) overlap a line already kept by at least `threshold`. The overlap is measured, by default,
as containment, |A & B| / min(|A|, |B|): a question phrasing of a problem ("What is 47 + 38?
47 + 38 = 85") holds every shingle of the plain form (1.0), a wrong answer one operand away from
a clean line ("39 + 48 = 77" vs "29 + 48 = 77") shares 0.71, and different problems at most about
0.43 ("87 - 25 = 62" vs "62 - 25 = 37"): the default 0.8 sits between. Jaccard similarity
(`measure="jaccard"`) cannot separate them here (0.44 for the phrasing, 0.56 for the wrong-answer
twin), which would cost clean lines whenever a twin exists. Unigrams are left out on purpose:
"85 - 38 = 47" and "47 + 38 = 85" share every token and are different problems.

MinHash (datasketch, `num_perm` permutations) with LSH banding finds candidate pairs: those with
Jaccard similarity of at least `threshold` (jaccard) or `LSH_JACCARD` (containment; the phrasing
above is 0.44), each a candidate with probability at least 0.99 by the choice of band shape.
Every candidate is then checked exactly, so LSH only saves comparisons and never decides alone.
Containment between lines of very different lengths can sit under that Jaccard floor and be
missed: a limit of LSH over Jaccard, fine for this task's forms. Lines are visited shortest first (ties: data order),
so of a group of copies the plainest form is the one kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from . import _data_pruning
from .base import FRACTION, Technique, at_least, register

_TOKEN = re.compile(r"\d+|[^\W\d_]+|[^\w\s]")


def normalise(line: str, commutative: bool = True) -> list[str]:
    t = _TOKEN.findall(line.lower())
    if commutative:
        for i in range(1, len(t) - 1):
            before = t[i - 2] if i >= 2 else ""
            after = t[i + 2] if i + 2 < len(t) else ""
            if (
                t[i] == "+"
                and t[i - 1].isdigit()
                and t[i + 1].isdigit()
                and before not in ("-", "*", "/")
                and after not in ("*", "/")
                and int(t[i - 1]) > int(t[i + 1])
            ):
                t[i - 1], t[i + 1] = t[i + 1], t[i - 1]
    return t


def features(tokens: list[str]) -> frozenset[str]:
    """Token bigrams and trigrams (unigrams for a one-token line)."""
    if len(tokens) < 2:
        return frozenset(tokens)
    grams = [" ".join(tokens[i : i + n]) for n in (2, 3) for i in range(len(tokens) - n + 1)]
    return frozenset(grams)


LSH_JACCARD = 0.3  # candidate floor for containment: under the phrasing's 0.44, over most pairs


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def containment(a: frozenset, b: frozenset) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else float(a == b)


def band_shape(threshold: float, num_perm: int, min_p: float = 0.99) -> tuple[int, int]:
    """(bands, rows): the most rows per band that still make a pair at `threshold` a candidate
    with probability >= min_p; more rows: fewer false candidates to check."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= min_p:
            return bands, rows
    return num_perm, 1


def near_dedup(
    lines: list[str], threshold: float, num_perm: int, seed: int, commutative: bool = True, measure: str = "containment"
) -> tuple[list[int], dict]:
    """Indices of the lines kept, and counts (exact and near removals, candidates checked)."""
    from datasketch import MinHash, MinHashLSH

    toks = [normalise(s, commutative) for s in lines]
    keys = [" ".join(t) for t in toks]
    feats = [features(t) for t in toks]
    order = sorted(range(len(lines)), key=lambda i: (len(keys[i]), i))
    sim = containment if measure == "containment" else jaccard
    bands, rows = band_shape(LSH_JACCARD if measure == "containment" else threshold, num_perm)
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    hashes = MinHash.bulk([[f.encode() for f in sorted(fs)] for fs in feats], num_perm=num_perm, seed=seed)
    seen, keep = set(), []
    stats = {"removed_exact": 0, "removed_near": 0, "candidates_checked": 0, "lsh_bands": bands, "lsh_rows": rows}
    for i in order:
        if keys[i] in seen:
            stats["removed_exact"] += 1
            continue
        cands = lsh.query(hashes[i])
        stats["candidates_checked"] += len(cands)
        if any(sim(feats[i], feats[j]) >= threshold for j in cands):
            stats["removed_near"] += 1
            continue
        seen.add(keys[i])
        lsh.insert(i, hashes[i])
        keep.append(i)
    return keep, stats


@register
class Dedup(Technique):
    name = "dedup"
    family = "data_pruner"
    description = "data pruning: drop exact duplicates (after normalisation) and MinHash/LSH near duplicates"
    scenarios = ("train",)
    requires = ("datasketch",)

    @dataclass(frozen=True)
    class Config:
        threshold: float = 0.8  # shingle overlap that makes a near duplicate; lower: drops more, risks unrelated lines
        measure: Literal["containment", "jaccard"] = "containment"  # overlap measure (see the module docstring)
        num_perm: int = 256  # MinHash permutations; higher: fewer candidates to check, slower hashing
        commutative: bool = True  # a + b is b + a when normalising; off for text where order matters

        ranges = {"threshold": FRACTION, "num_perm": at_least(16, 8192)}

    def prepare_data(self, data, ctx):
        lines = [_data_pruning.text(e) for e in data.train]
        keep, stats = near_dedup(
            lines, self.config.threshold, self.config.num_perm, ctx.seed, self.config.commutative, self.config.measure
        )
        return _data_pruning.finish(self.name, data, keep, ctx, scoring_tokens=0, **stats)
