"""`effbench ab BASE HEAD`: one suite for two code versions on one machine, replicates interleaved.

BASE and HEAD are git refs (each checked out once per commit into DIR/src/<sha>, or --checkouts
SRC/<sha>, with its own environment through `make setup`) or paths to existing checkouts that hold a `.venv`. The suite is
read and expanded by the code running `ab` (in CI: the base's), and so is the comparison; each
member run starts that side's own interpreter, `[wrap] <checkout>/.venv/bin/python -m effbench.child
SPEC OUT`, so the head's code is measured while its result files are only read as data.

Order: for each suite run, its members (seed x replicate) alternate sides in a balanced ABBA order
(base head, head base, base head, ...), so drift on a shared machine (another job, thermal state,
page cache) lands on both sides alike instead of on whichever side ran second.
Writes DIR/base/results.json, DIR/head/results.json (with runs/ and logs) and DIR/compare.md.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from effbench import runspec
from effbench.child import measure
from effbench.read import compare, results
from effbench.render import compare_format, report
from effbench.run import member, suites

SIDES = ("base", "head")
SETTABLE = {"threads": int}  # --set SIDE:KEY=VALUE: per-side spec settings (not part of the match key)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Side:
    name: str
    ref: str
    checkout: Path | None = None
    python: str = ""
    wrap: tuple[str, ...] = ()
    settings: dict = dataclasses.field(default_factory=dict)
    sha: str | None = None


def parse_sets(items: list[str] | None) -> dict[str, dict]:
    """`head:threads=1` -> {"head": {"threads": 1}}; errors name the valid sides and keys."""
    out: dict[str, dict] = {s: {} for s in SIDES}
    for it in items or []:
        side, colon, kv = it.partition(":")
        key, eq, val = kv.partition("=")
        if not colon or not eq or side not in SIDES:
            raise runspec.ConfigError(f"--set {it!r}: expected SIDE:KEY=VALUE with SIDE one of {list(SIDES)}")
        if key not in SETTABLE:
            raise runspec.ConfigError(f"--set {it!r}: unknown key {key!r}; valid: {sorted(SETTABLE)}")
        try:
            out[side][key] = SETTABLE[key](val)
        except ValueError:
            raise runspec.ConfigError(f"--set {it!r}: {key} must be {SETTABLE[key].__name__}, got {val!r}") from None
    return out


def parse_wraps(items: list[str] | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {s: () for s in SIDES}
    for it in items or []:
        side, eq, cmd = it.partition("=")
        if not eq or side not in SIDES or not cmd.strip():
            raise runspec.ConfigError(f"--wrap {it!r}: expected SIDE=COMMAND with SIDE one of {list(SIDES)}")
        out[side] = tuple(shlex.split(cmd))
    return out


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def resolve(side: Side) -> None:
    """A path to a checkout with a .venv, else a git ref of this repository (resolved to a commit).
    Cheap checks only: nothing is checked out or installed here."""
    p = Path(side.ref)
    if p.is_dir():
        py = p.resolve() / ".venv" / "bin" / "python"
        if not py.exists():
            raise runspec.ConfigError(
                f"{side.name} {side.ref!r}: a checkout for `effbench ab` needs its environment at "
                f"{py} (run `make setup` there)"
            )
        side.checkout, side.python = p.resolve(), str(py)
        try:
            side.sha = _git(["rev-parse", "HEAD"], side.checkout)
        except (subprocess.CalledProcessError, FileNotFoundError):
            side.sha = None
        return
    try:
        side.sha = _git(["rev-parse", "--verify", "--quiet", f"{side.ref}^{{commit}}"], REPO)
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise runspec.ConfigError(
            f"{side.name} {side.ref!r} is neither an existing checkout (a folder) nor a git ref of {REPO}"
        ) from None


def checkout(side: Side, src: Path, echo=print) -> None:
    """Check a resolved git ref out into src/<sha> (once per commit: later calls reuse it) and set up
    its environment."""
    if side.checkout is not None:
        return
    wt = src / side.sha[:12]
    if not (wt / ".venv" / "bin" / "python").exists():
        try:
            if not wt.exists():
                echo(f"ab: checking out {side.ref} ({side.sha[:10]}) into {wt}")
                subprocess.run(
                    ["git", "worktree", "add", "--detach", "--force", str(wt), side.sha],
                    cwd=REPO,
                    check=True,
                    capture_output=True,
                    text=True,
                )
            echo(f"ab: setting up {wt}/.venv (make setup)")
            subprocess.run(["make", "-C", str(wt), "setup"], check=True)
        except subprocess.CalledProcessError as e:
            raise runspec.ConfigError(
                f"{side.name} {side.ref!r}: `{' '.join(map(str, e.cmd))}` failed with exit code "
                f"{e.returncode}: {(e.stderr or '').strip()[-500:]}"
            ) from None
    side.checkout, side.python = wt.resolve(), str(wt.resolve() / ".venv" / "bin" / "python")


def order(n: int) -> list[tuple[str, str]]:
    """Balanced ABBA order for n members per side: (base, head), (head, base), (base, head), ..."""
    return [SIDES if i % 2 == 0 else SIDES[::-1] for i in range(n)]


def run_ab(
    suite: suites.Suite,
    base: Side,
    head: Side,
    out: Path,
    opts: compare.Options,
    only=None,
    echo=print,
    src: Path | None = None,
) -> dict:
    """Run both sides interleaved, write both result sets and compare.md; returns the comparison.
    Git refs are checked out under `src` (default out/src)."""
    suite.select(only)  # an unknown --only name is refused before any checkout is made
    sides = {"base": base, "head": head}
    for s in sides.values():
        checkout(s, Path(src) if src else out / "src", echo)
    members = suite.members(only)
    device = members[0].device if members else "cpu"
    env = measure.environment(device)
    sets, folders = {}, {}
    for name, s in sides.items():
        git = {"sha": s.sha, "dirty": None, "ref": s.ref, "checkout": str(s.checkout)}
        sets[name] = results.new_set(suite, {**env, "git": git}, git)
        sets[name]["ab"] = {"side": name, "settings": s.settings, "wrap": list(s.wrap), "python": s.python}
        sets[name]["ceiling_missing"] = (
            "effbench ab interleaves two checkouts' runs and measures no roofline ceiling; "
            "`effbench ceiling` measures this machine's"
        )
        folders[name] = out / name
        folders[name].mkdir(parents=True, exist_ok=True)
    groups: dict[str, list] = {}
    for m in members:
        groups.setdefault(m.group, []).append(m)
    plan = [(name, m) for ms in groups.values() for m, pair in zip(ms, order(len(ms))) for name in pair]
    echo(
        f"effbench ab: suite {suite.name!r}, {len(members)} runs a side, interleaved ABBA, base {base.ref} "
        f"({str(base.sha)[:10]}), head {head.ref} ({str(head.sha)[:10]}) -> {out}"
    )
    t0 = time.monotonic()
    for s in sides.values():  # each side's code checks (and builds) its cache before any member runs
        member.warm_model_cache(
            [dataclasses.replace(m, **s.settings) for m in members], echo, s.python, s.wrap, only_if_needed=False
        )
    for i, (name, m) in enumerate(plan, 1):
        s = sides[name]
        spec = dataclasses.replace(m, **s.settings)
        echo(f"[{i}/{len(plan)}] {name}: {member.label(spec)}")
        sets[name]["runs"].append(member.execute(spec, folders[name], echo, s.python, s.wrap))
        results.write_json_atomic(folders[name] / "results.json", sets[name])
    for name in sides:
        (folders[name] / "summary.md").write_text(report.summary_markdown(sets[name]))
    echo(f"effbench ab: {len(plan)} runs in {time.monotonic() - t0:.0f}s")
    res = compare.compare(results.load(folders["base"]), results.load(folders["head"]), opts)
    (out / "compare.md").write_text(compare_format.markdown(res, title=f"effbench ab {base.ref} {head.ref}"))
    return res
