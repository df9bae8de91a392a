"""Read the bench job's verdict artifact as data and make the PR comment and commit status from it.

`python3 sanitize_comment.py VERDICT_DIR BODY.md` (stdlib only; run by .github/workflows/bench-comment.yml
on a GitHub-hosted runner, never with the pull request's code). VERDICT_DIR holds `pr` (the PR
number), `head_sha` (the judged commit), `status` (pr_report's exit status: 0 pass, 1 regression,
2 bad input, 3 inconclusive; `none` when the gate stopped before comparing) and `comment.md` (markdown made by the
base's code from the head's results: still treated as untrusted text). Writes BODY.md and prints
`pr=`, `sha=`, `state=`, `description=` lines for $GITHUB_OUTPUT; exits 2 on a malformed artifact.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "<!-- effbench-compare -->"
MAX_CHARS = 60000  # GitHub refuses comments over 65536 characters
MAX_FIELD_BYTES = 100
STATES = {
    "0": ("success", "no regression"),
    "1": ("failure", "regression beyond the thresholds"),
    "2": ("error", "the comparison could not run (bad input)"),
    "3": ("error", "inconclusive: more replicates needed to decide (see the comment)"),
    "none": ("error", "the gate stopped before comparing (setup, isolation or verification failed)"),
}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # keeps \t and \n; drops bidi overrides
MENTION = re.compile(r"@(?=[A-Za-z0-9])")


class BadArtifact(ValueError):
    pass


def field(folder: Path, name: str, pattern: str) -> str:
    p = folder / name
    if not p.is_file() or p.is_symlink():
        raise BadArtifact(f"{name}: missing, or not a regular file")
    with open(p, "rb") as f:
        text = f.read(MAX_FIELD_BYTES + 1).decode("ascii", "replace").strip()
    if not re.fullmatch(pattern, text):
        raise BadArtifact(f"{name}: {text[:40]!r} does not match {pattern}")
    return text


def body(folder: Path, status: str) -> str:
    p = folder / "comment.md"
    text = ""
    if p.is_file() and not p.is_symlink():
        with open(p, "rb") as f:
            text = f.read(4 * MAX_CHARS).decode("utf-8", "replace")
    text = MENTION.sub("@\u200b", CONTROL.sub("", text.replace(MARKER, "")))  # no pings, no hidden text
    if len(text) > MAX_CHARS:
        text = (
            text[:MAX_CHARS]
            + "\n\n*(cut at 60000 characters: the full comparison is in the run's `bench-results` artifact)*"
        )
    if not text.strip():
        text = f"**effbench: no comparison** ({STATES[status][1]}); see the workflow run."
    return f"{MARKER}\n{text.strip()}\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sanitize_comment.py VERDICT_DIR BODY.md", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    try:
        pr = field(folder, "pr", r"[1-9][0-9]{0,9}")
        sha = field(folder, "head_sha", r"[0-9a-f]{40}")
        status = field(folder, "status", "|".join(STATES))
    except BadArtifact as e:
        print(f"sanitize_comment: bad verdict artifact: {e}", file=sys.stderr)
        return 2
    Path(argv[1]).write_text(body(folder, status), encoding="utf-8")
    state, description = STATES[status]
    print(f"pr={pr}\nsha={sha}\nstate={state}\ndescription={description}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
