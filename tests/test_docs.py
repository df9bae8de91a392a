"""The front page and docs/ say only what the repository holds.

For README.md and every docs/*.md page:
- every relative link target (`[text](path)`, `![alt](path)`) exists, resolved from the page's folder;
- every repository path named in inline code (`effbench/run/runner.py`, `benchmarks/*.toml`) exists
  (a glob must match something); a path is a word whose first segment is a top-level entry of
  the repository, and words with placeholders (`<suite>`, `…`, `$VAR`) are left alone;
- every `make TARGET` in inline code or a code block is a rule of the Makefile;
- every `effbench SUBCOMMAND` in inline code or a code block is one the command line accepts
  (`SUBCOMMAND --help` exits 0, each distinct one checked once, in one process);
- README.md is at most 20,000 bytes: a front page, with the rest in docs/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_BYTES = 20_000

# Top-level names that are not part of the repository (local environments, caches, build output).
NOT_REPO = {
    ".git",
    ".venv",
    ".whl",
    ".pytest_cache",
    ".hypothesis",
    ".benchmarks",
    ".effbench-cache",
    "build",
    "__pycache__",
}
# Inline code that starts like a repository path but names something else.
NOT_PATHS = {"effbench/bench"}  # the commit status the pull-request gate sets

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A command starts a line or a code span, or follows `;`, `&&`, `|`, `(` or a quote; `VAR=value` may
# precede it, and effbench may be called by a path (`.venv/bin/effbench run`).
COMMAND_START = r"(?:^[ \t]*|[;&|(\"'`][ \t]*)(?:[A-Za-z_]\w*=\S*\s+)*"
MAKE = re.compile(COMMAND_START + r"make\s+(?:[A-Za-z_]\w*=\S*\s+)*([a-z][\w-]*)", re.M)
EFFBENCH = re.compile(COMMAND_START + r"(?:[\w.~-]*/)*effbench\s+([a-z][\w-]*)", re.M)
PLACEHOLDER = re.compile(r"[<>…${}]|\.\.\.")  # `*` is a glob, kept


def _split(text: str) -> tuple[list[str], list[str], str]:
    """(code blocks, inline code spans, prose with code removed) of one markdown page."""
    blocks = FENCE.findall(text)
    rest = FENCE.sub("", text)
    spans = [m.group(2) for m in INLINE.finditer(rest)]
    return blocks, spans, INLINE.sub("", rest)


@cache
def _page(path: Path) -> tuple[list[str], list[str], str]:
    return _split(path.read_text(encoding="utf-8"))


def _ids(paths):
    return [str(p.relative_to(REPO)) for p in paths]


def test_pages_found():
    assert (REPO / "README.md").is_file()
    names = {p.name for p in PAGES}
    for page in ("metrics", "suites", "techniques", "comparing", "scaling", "examples", "design"):
        assert f"{page}.md" in names, f"docs/{page}.md is missing"


def test_readme_is_a_front_page():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; at most {README_MAX_BYTES} (move detail to docs/)"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_relative_links_exist(page):
    _, _, prose = _page(page)
    missing = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.name}: links to files that do not exist: {missing}"


def _repo_paths(span: str) -> list[str]:
    """The words of one inline code span that name a repository path."""
    top = {p.name for p in REPO.iterdir()} - NOT_REPO
    out = []
    for word in span.split():
        word = word.strip("'\"(),;:")
        if word in NOT_PATHS or "=" in word or word.startswith("-"):
            continue
        if word.split("/", 1)[0] in top and not PLACEHOLDER.search(word):
            out.append(word)
    return out


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_paths_in_code_exist(page):
    _, spans, _ = _page(page)
    missing = []
    for span in spans:
        for word in _repo_paths(span):
            found = any(REPO.glob(word.rstrip("/"))) if "*" in word else (REPO / word).exists()
            if not found:
                missing.append(word)
    missing = [w for w in missing if not _git_ignored(w)]
    assert not missing, f"{page.name}: names repository paths that do not exist: {sorted(set(missing))}"


def _git_ignored(path: str) -> bool:
    """Whether git ignores `path`: a folder the tools write into (`results/aa/`), named as an
    output in a command rather than as a file of the repository."""
    try:
        return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0
    except OSError:
        return False


def _code(page: Path) -> list[str]:
    blocks, spans, _ = _page(page)
    return blocks + spans


def makefile_targets() -> set[str]:
    """The rules of the Makefile (`name: ...`; not variables `x := ...` or special targets)."""
    targets = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_][\w. -]*?)\s*:(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_make_targets_exist(page):
    named = {t for code in _code(page) for t in MAKE.findall(code)}
    unknown = sorted(named - makefile_targets())
    assert not unknown, f"{page.name}: `make` targets the Makefile does not have: {unknown}"


def _subcommands() -> dict[str, list[str]]:
    """subcommand -> the pages that name it."""
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for sub in sorted({s for code in _code(page) for s in EFFBENCH.findall(code)}):
            found.setdefault(sub, []).append(page.name)
    return found


# Calls the `effbench` console script's function with `SUB --help` for each SUB, in one process.
HELP_EACH = """
import contextlib, importlib, io, json, sys
module, _, name = sys.argv[1].partition(":")
main = getattr(importlib.import_module(module), name)
codes = {}
for sub in sys.argv[2:]:
    sys.argv = ["effbench", sub, "--help"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes[sub] = main() or 0
        except SystemExit as e:
            codes[sub] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
print(json.dumps(codes))
"""


def test_effbench_subcommands_exist():
    named = _subcommands()
    assert {"run", "list", "compare"} <= set(named), (
        f"expected the docs to name the main commands; found {sorted(named)}"
    )
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["effbench"]
    proc = subprocess.run(
        [sys.executable, "-c", HELP_EACH, entry, *sorted(named)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = {sub: f"exit {rc}, named in {named[sub]}" for sub, rc in codes.items() if rc != 0}
    assert not bad, f"`effbench SUB --help` fails for subcommands the docs name: {bad}"


# -- the checks' own logic, on small inputs ----------------------------------------------------------


def test_checks_find_what_they_should():
    blocks, spans, prose = _split(
        "Run `make bench SUITE=cpu` or see [x](docs/a.md#b) and ![f](../results/p.png).\n"
        "```bash\nVENV=x make test   # then\n.venv/bin/effbench run --suite cpu\neffbench --version\n```\n"
        "```text\n# effbench result set: suite cpu, in use by another effbench suite, make targets\n```\n"
        "Paths: `effbench/run/runner.py`, `results/<suite>/`, `effbench/bench`, `tests/test_*.py`.\n"
    )
    code = blocks + spans
    assert {t for c in code for t in MAKE.findall(c)} == {"bench", "test"}
    assert {s for c in code for s in EFFBENCH.findall(c)} == {"run"}
    assert LINK.findall(prose) == ["docs/a.md#b", "../results/p.png"]
    assert [w for s in spans for w in _repo_paths(s)] == ["effbench/run/runner.py", "tests/test_*.py"]
    assert _git_ignored("results/aa/src") and not _git_ignored("effbench/run/runner.py")
    assert {"bench", "test", "setup", "lint"} & makefile_targets() >= {"bench", "test", "setup"}
