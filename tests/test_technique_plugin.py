"""Adding a technique is one file: a throwaway technique in a temporary package (its own
distribution, registered under the `effbench.techniques` entry-point group, nothing in this
repository edited) appears in `effbench list`, runs in a suite, and is drawn in the figures.

The same holds for a file dropped into techniques/ (the registry walks that package); the plugin
route is tested because it touches no file of the repository. ~30 s on 2 cores (one tiny suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from effbench.read import results
from effbench.render import plot
from effbench.techniques import base

REPO = Path(__file__).resolve().parent.parent

TECHNIQUE = '''"""bf16_round: every block Linear weight rounded to bfloat16 and kept in float32 (a throwaway
quantizer for the plugin test: 8 fewer mantissa bits, same storage)."""
from __future__ import annotations

from dataclasses import dataclass

from effbench.techniques import Technique, register


@register
class BF16Round(Technique):
    name = "bf16_round"
    family = "quantizer"
    description = "throwaway plugin: block Linear weights rounded to bfloat16"
    scenarios = ("infer",)

    @dataclass(frozen=True)
    class Config:
        pass

    def apply(self, model, ctx):
        import torch

        n = 0
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.Linear) and mod is not model.get_output_embeddings():
                    mod.weight.copy_(mod.weight.to(torch.bfloat16).float())
                    n += 1
        ctx.record(self.name, "rounded_layers", n)
        return model
'''

SUITE = """[suite]
name = "plugin"
description = "a throwaway plugin technique beside the baseline"
model = "tiny"
device = "cpu"
[defaults.infer]
batch_sizes = [1]
prompt_len = 8
decode_tokens = 4
repeats = 2
ppl_tokens = 128
ppl_window = 64
probe_limit = 8
arith_limit = 4
eval_batch_size = 8
[[run]]
id = "infer-baseline"
scenario = "infer"
[[run]]
id = "infer-bf16-round"
scenario = "infer"
techniques = [{name = "bf16_round"}]
"""


@pytest.fixture
def plugin(tmp_path):
    """A folder holding the package `effbench_throwaway` and its distribution's metadata."""
    root = tmp_path / "site"
    (root / "effbench_throwaway").mkdir(parents=True)
    (root / "effbench_throwaway" / "__init__.py").write_text("")
    (root / "effbench_throwaway" / "bf16_round.py").write_text(TECHNIQUE)
    info = root / "effbench_throwaway-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: effbench-throwaway\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[effbench.techniques]\nbf16_round = effbench_throwaway.bf16_round\n")
    return root


def _effbench(plugin: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "effbench.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_a_plugin_technique_is_listed_runs_in_a_suite_and_is_drawn(plugin, tmp_path):
    listed = _effbench(plugin, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("bf16_round "))
    assert "quantizer" in row and "infer" in row

    suite = tmp_path / "plugin.toml"
    suite.write_text(SUITE)
    run = _effbench(plugin, "run", "--suite", str(suite), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    folder = next((tmp_path / "out" / "plugin").iterdir())
    rs = results.load(folder)
    by_id = {r["id"]: r for r in rs["runs"]}
    assert by_id["infer-bf16-round"]["status"] == "ok", by_id["infer-bf16-round"]
    assert (
        by_id["infer-bf16-round"]["technique_records"]["bf16_round"]["rounded_layers"] == 2 * 7
    )  # 2 blocks x 7 Linears
    # rounding to bf16 moves the model: its perplexity differs from the unmodified one's
    ppl = {i: results.metric(r, "perplexity") for i, r in by_id.items()}
    assert ppl["infer-bf16-round"] != ppl["infer-baseline"]

    fig = plot.pareto_figure([rs], "infer")
    texts = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert "bf16-round" in texts  # the run, named directly on its point


def test_the_registry_walks_the_package_and_refuses_an_unknown_family():
    names = base.registry()
    assert {"lora", "nf4", "magnitude", "random", "fused"} <= set(names)
    # every family list comes from the classes' declarations
    assert base.family_members("quantizer") == tuple(sorted(n for n, c in names.items() if c.family == "quantizer"))
    assert "random" in base.family_members("data_pruner") and "nf4" not in base.family_members("data_pruner")
    with pytest.raises(base.TechniqueError, match="family 'shiny' is not one of"):
        base.register(type("Shiny", (base.Technique,), {"name": "shiny", "family": "shiny"}))
    with pytest.raises(base.TechniqueError, match="unknown family 'shiny'; valid:"):
        base.family_members("shiny")


def test_one_quantizer_per_run_comes_from_the_family():
    with pytest.raises(base.TechniqueError, match="a run takes at most one quantizer"):
        base.build_all([{"name": "nf4"}, {"name": "torchao_int8wo"}])
    with pytest.raises(base.TechniqueError, match="must be listed before nf4"):
        base.build_all([{"name": "nf4"}, {"name": "magnitude"}])


def test_a_broken_plugin_names_itself(tmp_path):
    root = tmp_path / "site"
    info = root / "broken-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[effbench.techniques]\nbroken = no_such_module_here\n")
    code = textwrap.dedent("""
        from effbench.techniques import TechniqueError, registry
        try:
            registry()
        except TechniqueError as e:
            print(e)
    """)
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert "entry point 'broken' (no_such_module_here)" in p.stdout and "ModuleNotFoundError" in p.stdout, (
        p.stdout + p.stderr
    )
