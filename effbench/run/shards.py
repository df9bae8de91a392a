"""Shards of a suite for schedulers (`run --shard i/N`), and joining their result sets (`merge`).

A run belongs to shard `sha256(spec) mod N`, its spec taken without the fields that do not make it
a different experiment to run (timeout_s, threads). The assignment depends on each run's spec only,
never on its position, so the same run lands in the same shard whatever `--only` selects or however
a suite file is reordered, and N shard jobs together run every member exactly once.

`merge` joins shard result sets into one, in the suite's member order. It refuses sets from
different code (commit, and the uncommitted diff where the tree was dirty), different suites
(name and expanded plan) or different devices (kind and model name), a run present in two sets,
and a member present in none (rerun that shard, with --resume, first).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from effbench import runspec
from effbench.read import results, runlogs
from effbench.run import childfiles

NOT_SHARDED = ("timeout_s", "threads")


def parse(text: str) -> tuple[int, int]:
    """`i/N` with 0 <= i < N -> (i, N)."""
    i, slash, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index, count = -1, 0
    if not slash or count < 1 or not 0 <= index < count:
        raise runspec.ConfigError(
            f"--shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4 "
            "(Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
        )
    return index, count


def shard_of(spec: runspec.RunSpec, count: int) -> int:
    d = {k: v for k, v in spec.to_dict().items() if k not in NOT_SHARDED}
    digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
    return int(digest, 16) % count


def select(specs: list[runspec.RunSpec], index: int, count: int) -> list[runspec.RunSpec]:
    return [s for s in specs if shard_of(s, count) == index]


def code_id(git: dict) -> str:
    """The code a result set ran: its commit, plus the hash of the uncommitted diff if the tree was dirty."""
    sha = git.get("sha") or "no-git"
    if git.get("dirty"):
        return f"{sha}+dirty:{git.get('diff_sha256') or 'unknown'}"
    return sha if git.get("dirty") is False else f"{sha}+unknown-state"


def device_of(rs: dict) -> tuple:
    env = rs.get("env") or {}
    return env.get("device"), env.get("device_name")


def merge(paths: list[str], out: Path) -> Path:
    """Join shard result sets into `out`/results.json (with their run logs); returns the folder."""
    sets = [results.load(p) for p in paths]
    if len(sets) < 2:
        raise runspec.ConfigError(f"merge needs at least two result sets, got {len(sets)}")
    first, fp = sets[0], paths[0]
    for p, rs in zip(paths[1:], sets[1:]):
        for what, get in (
            ("code", lambda s: code_id(s.get("git") or {})),
            ("suite", lambda s: s.get("suite")),
            ("suite plan", lambda s: s.get("plan")),
            ("device", device_of),
            ("members", lambda s: s.get("members")),
        ):
            if get(rs) != get(first):
                raise runspec.ConfigError(
                    f"merge: {p} and {fp} differ in {what} ({get(rs)!r} vs {get(first)!r}); "
                    "only shards of one suite run by the same code on the same device kind merge"
                )
    if first.get("members") is None:
        raise runspec.ConfigError(f"merge: {fp} records no member list (written before shards existed)")
    by_id: dict[str, dict] = {}
    for p, rs in zip(paths, sets):
        for r in rs["runs"]:
            if r["id"] in by_id:
                raise runspec.ConfigError(f"merge: run {r['id']!r} is in more than one set (again in {p})")
            by_id[r["id"]] = r
    missing = [m for m in first["members"] if m not in by_id]
    if missing:
        raise runspec.ConfigError(
            f"merge: no set holds run(s) {missing}; finish their shard first "
            "(`effbench run ... --shard i/N --resume SET`)"
        )
    merged = {k: v for k, v in first.items() if k != "_path"}
    merged.update(runs=[by_id[m] for m in first["members"]], shard=None, merged_from=[str(Path(p)) for p in paths])
    for rs in sets:
        for key in ("kernels", "kernels_missing", "ceiling", "ceiling_missing"):  # the first shard's that has one
            if key in rs and key not in merged:
                merged[key] = rs[key]
    for key in ("kernels", "ceiling"):
        if key in merged:
            merged.pop(f"{key}_missing", None)
    out = Path(out)
    if (out / "results.json").exists():
        raise runspec.ConfigError(f"merge: {out}/results.json exists; give a new folder")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for rs in sets:
        runs_dir = Path(rs["_path"]).parent / "runs"
        for f in runs_dir.glob("*") if runs_dir.is_dir() else ():
            if not f.is_file() or f.is_symlink():
                continue
            if f.name.endswith(runlogs.PLAIN):  # a shard written before logs were compressed: compress it here
                if runlogs.path(runs_dir, runlogs.run_id(f)) == f:  # no .log.gz beside it
                    childfiles.write_log(out / "runs" / f"{runlogs.run_id(f)}{runlogs.SUFFIX}", runlogs.read_file(f))
                continue
            shutil.copy2(f, out / "runs" / f.name)
    results.write_json_atomic(out / "results.json", merged)
    from effbench.render.report import summary_markdown

    (out / "summary.md").write_text(summary_markdown(results.load(out)))
    return out
