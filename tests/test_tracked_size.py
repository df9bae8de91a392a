"""The tracked repository stays small: a clone is quick, and the tree together with the ~48 MB of
wheels `make gpu-check-wheels` downloads fits the GPU machine's 64 MiB carry limit. Committed result
sets hold what cannot be recomputed and one PNG of each figure (.gitignore keeps the rest out)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 15 * 2**20  # 15 MiB


def tracked() -> list[Path]:
    if not shutil.which("git") or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / p for p in out.decode().split("\0") if p]


def test_the_tracked_tree_is_at_most_15_mib():
    sizes = {p: p.stat().st_size for p in tracked() if p.is_file()}
    total = sum(sizes.values())
    biggest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert total <= LIMIT_BYTES, f"{total / 2**20:.1f} MiB tracked; largest: " + ", ".join(
        f"{p.relative_to(REPO)} {n / 2**20:.1f} MiB" for p, n in biggest
    )


def test_committed_result_sets_keep_no_recomputable_copies():
    dup = [
        p
        for p in tracked()
        if "results" in p.relative_to(REPO).parts[:1]
        and (p.suffix == ".svg" or "vs_baseline" in p.parts or p.name.endswith((".spec.json", ".result.json")))
    ]
    assert not dup, [str(p.relative_to(REPO)) for p in dup[:5]]


def test_committed_result_files_are_written_compactly():
    """As `results.write_json_atomic` writes them (a list of scalars on one line): a committed set
    reformatted by hand, or by an older writer's one line per number, would take twice the bytes."""
    import json

    from effbench.read import results

    loose = [
        p
        for p in tracked()
        if p.relative_to(REPO).parts[:1] == ("results",)
        and p.suffix == ".json"
        and p.read_text() != results.dumps(json.loads(p.read_text())) + "\n"
    ]
    assert not loose, [str(p.relative_to(REPO)) for p in loose[:5]]
