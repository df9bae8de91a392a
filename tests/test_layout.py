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
ROOTS = {REPO / "effbench": "effbench", REPO / "techniques": "effbench.techniques", REPO / "kernels": "effbench.kernels"}

# The read side loads result files and never starts a run.
READ_SIDE = {"results", "result_schema", "stats", "replicates", "compare", "compare_format", "report", "runinfo",
             "tradeoff", "interactions", "sweep_curves", "cost", "gpus", "plot", "plot_style", "plot_curves",
             "plot_sweeps", "pr_report", "mdtable", "kernel_report"}
# The run side: a suite's runner, its members' children, the workloads, techniques and models.
RUN_SIDE = {"runner", "member", "executors", "child", "workloads", "techniques", "kernels", "models", "measure",
            "lifetime", "ab"}


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
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else [])) if node.level \
                    else (node.module or "")
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
    assert "effbench.member" in g["effbench.runner"] and "effbench.executors" in g["effbench.runner"]
    assert "effbench.techniques._fused_llama" in g["effbench.techniques.fused"]  # relative, inside a function
    assert "effbench.kernels.rope" in g["effbench.techniques._fused_llama"]  # absolute, a submodule
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("mod", sorted(READ_SIDE))
def test_the_read_side_never_imports_the_run_side(mod):
    g = import_graph()
    seen, todo = set(), [f"effbench.{mod}"]
    while todo:  # everything the module reaches, directly or not
        m = todo.pop()
        for d in g[m] - seen:
            seen.add(d)
            todo.append(d)
    bad = sorted(d for d in seen if d.split(".")[1] in RUN_SIDE)
    assert not bad, f"effbench.{mod} reaches the run side: {bad}"


def test_kernels_know_nothing_of_techniques_or_the_harness():
    g = import_graph()
    for mod, deps in g.items():
        if mod.startswith("effbench.kernels"):
            assert all(d.startswith("effbench.kernels") for d in deps), (mod, deps)
        if mod.startswith("effbench.techniques"):
            assert not any(d.split(".")[1] in {"runner", "member", "report", "compare", "results", "cli"} for d in deps), (mod, deps)
