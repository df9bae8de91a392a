"""Columns of the summary's run tables, and the rules that keep those tables narrow and honest.

A table is a list of Column (a header, the cell of a run, whether that cell says anything); the
report splits each workload's columns into tables per concern, each led by the run id, so that a
line fits WIDTH characters. Rules applied to every cell and column here:

- a replicated timing or peak memory is `median ± sd` over the run's replicates (one process each;
  the centre is the figure the table always showed), a figure measured once says `(1 rep)`;
- a perplexity above the model's vocabulary size V is worse than guessing uniformly over V tokens:
  shown as `> V (broken)`, never as its digits (ABSURD_PPL where V is not known); nan and inf as words;
- a column none of whose runs says anything (every cell empty or zero; an accuracy no run has more
  than ZERO_SE standard errors above zero) is left out, and the footnote names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from effbench.read import replicates
from effbench.read.runinfo import fmt, vocab_size
from effbench.read.runinfo import value as _v
from effbench.render import mdtable

WIDTH = 120  # characters a summary line may take: a terminal or a code host's page, no wrapping
ZERO_SE = 2.0  # an accuracy within this many standard errors of zero tells nothing (e.g. 0.5 ± 0.5)
ABSURD_PPL = 1e6  # where the vocabulary size is not known: a perplexity above it is a broken model
ABSURD_TEXT = "1e6"


@dataclass(frozen=True)
class Column:
    head: str
    cell: Callable[[dict], str]
    shows: Callable[[dict], bool]  # whether this run's cell says anything (not empty, not zero)
    key: str = ""  # the name tables list it by, where the header varies (default: the header)


def nonzero(x) -> bool:
    return x is not None and x != 0


def metric_shows(name: str) -> Callable[[dict], bool]:
    return lambda r: nonzero(_v(r, name))


def accuracy_shows(name: str) -> Callable[[dict], bool]:
    """An accuracy says something when it is more than ZERO_SE standard errors above zero."""

    def shows(r):
        m = (r.get("metrics") or {}).get(name) or {}
        v, se = m.get("value"), m.get("stderr")
        return nonzero(v) and (se is None or v > ZERO_SE * se)

    return shows


def with_spread(members: list[dict], run: dict, name: str, spec: str, scale: float = 1.0) -> str:
    """`value ± sd` over the replicates that measured `name`, `value (1 rep)` where one did."""
    v = _v(run, name)
    if v is None:
        return "–"
    n, sd = replicates.sd_of(members, name)
    if sd is not None:
        return f"{fmt(scale * v, spec)} ± {fmt(scale * sd, spec)}"
    return f"{fmt(scale * v, spec)} (1 rep)" if n <= 1 else fmt(scale * v, spec)


def perplexity(run: dict) -> str:
    v = _v(run, "perplexity")
    if v is None or fmt(v) in ("nan", "inf", "-inf"):
        return fmt(v)
    vocab = vocab_size(run)
    if vocab is not None and v > vocab:
        return "> V (broken)"
    if vocab is None and v > ABSURD_PPL:
        return f"> {ABSURD_TEXT} (broken)"
    return fmt(v, ".2f")


def split(runs: list[dict], columns: list[Column], tables: list[tuple[str, list[str]]]):
    """[(title, markdown table)] of the runs, one per (title, headers) of `tables`, each led by the
    first column (the run id); columns no run shows are left out. Returns (tables, left-out heads)."""
    by_head = {c.key or c.head: c for c in columns}
    gone = [c for c in columns[1:] if not any(c.shows(r) for r in runs)]
    dropped = [c.key or c.head for c in gone]
    out = []
    for title, heads in tables:
        cols = [columns[0]] + [by_head[h] for h in heads if h not in dropped]
        if len(cols) > 1:
            out.append((title, mdtable.table([[c.cell(r) for c in cols] for r in runs], [c.head for c in cols])))
    return out, [c.head for c in gone]


def full(runs: list[dict], columns: list[Column]) -> tuple[list[str], list[list[str]]]:
    """Every column, every run (nothing left out): the fuller view, for callers and tests."""
    return [c.head for c in columns], [[c.cell(r) for c in columns] for r in runs]


_MARKER = re.compile(r"^([-+*>]|#+|\d+[.)])$")  # a word that would start a list, quote or heading


def wrap(text: str, width: int = WIDTH) -> list[str]:
    """A markdown paragraph or bullet as lines of at most `width` characters (a word longer than
    that stays whole): bullets' continuation lines indented, and no line starting with a word that
    markdown would read as a list marker, a quote or a heading (it stays on the line before)."""
    bullet = text.startswith("- ")
    words = text[2:].split() if bullet else text.split()
    units: list[str] = []
    for w in words:
        if units and _MARKER.match(w):
            units[-1] += " " + w
        else:
            units.append(w)
    first, rest = ("- ", "  ") if bullet else ("", "")
    return _fill(units, width, first, rest)


def _fill(units: list[str], width: int, first: str, rest: str) -> list[str]:
    lines, cur, empty = [], first, True
    for u in units:
        if not empty and len(cur) + 1 + len(u) > width:
            lines.append(cur)
            cur, empty = rest + u, False
        else:
            cur, empty = cur + ("" if empty else " ") + u, False
    return lines + [cur] if not empty else lines
