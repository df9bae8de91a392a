"""`make gpu-check` fits its 8 minutes by design and never hides a failure.

Design: the hard limits of its stages (benchmarks/gpu_check.sh) add up to at most 480 s, and the
per-run limits of its suite (benchmarks/gpu-check.toml) fit inside the suite stage's limit. The
suite is its own (result sets under results/gpu-check/), covers every technique family once, on
the random-weight default architecture, and asks for no more data than its budgets read.
On this CPU machine the script must stop at its import stage with the reason and a non-zero exit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from effbench.run import suites
from effbench.techniques import registry

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def stage_limits() -> dict[str, int]:
    return {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^\s*(?:if ! )?stage (\w+) (\d+) ", SCRIPT.read_text(), re.M)
    }


def test_stage_limits_add_up_to_under_eight_minutes():
    limits = stage_limits()
    assert set(limits) == {"wheels", "imports", "kernels", "suite", "report"}
    assert sum(limits.values()) <= 480
    suite = suites.load_suite("gpu-check")
    assert sum(r.timeout_s for r in suite.runs) < limits["suite"]  # the parent's own start-up fits too
    assert list(limits) == ["wheels", "imports", "kernels", "suite", "report"]  # kernels before the runs


def test_suite_is_its_own_and_covers_every_family_once_on_small_data():
    suite = suites.load_suite("gpu-check")
    assert suite.name == "gpu-check" and suite.kernel_bench == "none"  # the script's kernel stage runs it
    assert {r.device for r in suite.runs} == {"cuda"} and {r.model for r in suite.runs} == {"arch:smollm2-135m"}
    used = {t["name"] for r in suite.runs for t in r.techniques}
    families = {
        "lora",
        "qlora",
        "adam8bit",
        "grad_ckpt",
        "fused",
        "perplexity",
        "nf4",
        "torchao_int4wo",
        "semi_structured_2_4",
        "torchao_fp8",
        "float8",
    }
    assert families <= used <= set(registry())
    assert len({r.id for r in suite.runs}) == len(suite.runs) <= 12
    for r in suite.runs:
        b = r.budget_obj()
        if r.scenario == "finetune":  # the child generates only what the run reads (after pruning)
            kept = 1.0
            for t in r.techniques:
                kept *= t.get("params", {}).get("fraction", 1.0)
            assert b.n_train * kept <= b.max_steps * b.batch_size and b.eval_every > b.max_steps
        else:
            assert b.quality is False


def test_on_a_machine_without_gpu_it_stops_with_the_reason_and_fails(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRITON_INTERPRET")}
    env.update(PYTHON=sys.executable, WHEELS=str(tmp_path / "no-wheels"), EFFBENCH_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120
    )
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "sees no GPU: nothing to check" in out and "imports FAILED" in out
    assert "every stage passed" not in out and not (tmp_path / "out" / "gpu-check").exists()
