"""The package layout tells the architecture: imports flow one way, with no cycles.

Read from the source with ast (every import, including those inside functions), so a lazy import
that closes a cycle counts as much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

REPO = Path(__file__).resolve().parent.parent
# folder -> import name (pyproject's package-dir)
ROOTS = {
    REPO / "effbench": "effbench",
    REPO / "techniques": "effbench.techniques",
    REPO / "kernels": "effbench.kernels",
}

# The harness's folders (effbench/<folder>/) and what each may reach, directly or through others.
# Top-level modules (runspec, models) and tasks/ are shared: the spec a child reads, the models it
# loads, the tasks it evaluates. The read side loads result files and never starts a run; a run's
# child never imports the side that launched it; techniques and kernels know no harness. The
# technique registry (effbench.techniques and its base module: names, families, parameters; no
# technique module is imported by it except through discovery at run time) counts as its own part,
# which the read side may ask what family a technique name belongs to.
FOLDERS = {"cli", "run", "child", "read", "render", "tasks", "kernelbench", "techniques", "kernels"}
NEVER_REACHES = {
    "read": {"run", "child", "cli", "render", "techniques", "kernels", "kernelbench"},  # "registry" allowed
    "render": {"run", "child", "cli", "techniques", "kernels", "kernelbench"},
    "child": {"run", "cli", "render"},
    "techniques": {"run", "child", "cli", "read", "render", "kernelbench", "tasks"},
    "registry": {"run", "child", "cli", "read", "render", "kernelbench", "tasks", "techniques", "kernels"},
    "kernels": {"run", "child", "cli", "read", "render", "kernelbench", "tasks", "techniques"},
}
MAX_TOP_LEVEL_MODULES = 12


def _module(root: Path, path: Path) -> str:
    parts = (*ROOTS[root].split("."), *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """effbench module -> the effbench modules it imports (submodule imports count as the module)."""
    files = {_module(root, p): p for root in ROOTS for p in root.rglob("*.py") if "assets" not in p.parts}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (
                    ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                    if node.level
                    else (node.module or "")
                )
                subs = {base + "." + a.name for a in node.names} & files.keys()  # `from pkg import module`
                deps.update(subs or {base})
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (scipy's csgraph)."""
    names = sorted(graph)
    ix = {n: i for i, n in enumerate(names)}
    rows = [ix[a] for a in names for _ in graph[a]]
    cols = [ix[b] for a in names for b in sorted(graph[a])]
    adj = csr_matrix(([1] * len(rows), (rows, cols)), shape=(len(names), len(names)))
    n, labels = connected_components(adj, directed=True, connection="strong")
    comps = [[names[i] for i in range(len(names)) if labels[i] == c] for c in range(n)]
    return [c for c in comps if len(c) > 1]


def test_the_graph_sees_lazy_and_relative_imports():
    g = import_graph()
    assert "effbench.run.member" in g["effbench.run.runner"] and "effbench.run.executors" in g["effbench.run.runner"]
    assert "effbench.techniques._fused_llama" in g["effbench.techniques.fused"]  # relative, inside a function
    assert "effbench.kernels.rope" in g["effbench.techniques._fused_llama"]  # absolute, a submodule
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def folder(mod: str) -> str:
    """effbench.read.results -> read; effbench.techniques.lora -> techniques; effbench.runspec -> runspec;
    effbench.techniques and effbench.techniques.base -> registry."""
    if mod in ("effbench.techniques", "effbench.techniques.base"):
        return "registry"
    return mod.split(".")[1] if mod.count(".") else mod


def reach(g: dict[str, set[str]], mod: str) -> set[str]:
    seen, todo = set(), [mod]
    while todo:  # everything the module reaches, directly or not
        for d in g[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def test_every_module_sits_in_a_folder_that_names_its_part_of_the_flow():
    top = sorted(p.stem for p in (REPO / "effbench").glob("*.py") if p.stem != "__init__")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    folders = {p.name for p in (REPO / "effbench").iterdir() if (p / "__init__.py").exists()}
    assert folders | {"techniques", "kernels"} == FOLDERS, folders


@pytest.mark.parametrize("side", sorted(NEVER_REACHES))
def test_each_folder_reaches_only_what_its_part_of_the_flow_may(side):
    g = import_graph()
    for mod in sorted(m for m in g if folder(m) == side):
        bad = sorted(d for d in reach(g, mod) if folder(d) in NEVER_REACHES[side])
        assert not bad, f"{mod} ({side}/) reaches {bad}"


def test_shared_modules_reach_neither_the_launcher_nor_the_read_sides_renderers():
    g = import_graph()
    for mod in ("effbench.runspec", "effbench.models", "effbench.tasks"):
        bad = sorted(d for d in reach(g, mod) if folder(d) in {"run", "child", "cli", "render"})
        assert not bad, f"{mod} reaches {bad}"


def test_the_rules_can_fail():
    g = {
        "effbench.read.a": {"effbench.read.b"},
        "effbench.read.b": {"effbench.run.runner"},
        "effbench.run.runner": set(),
    }
    assert (
        "effbench.run.runner" in reach(g, "effbench.read.a") and folder("effbench.run.runner") in NEVER_REACHES["read"]
    )
