"""The kernel benchmark's report: speed-ups computed as their time / ours, CPU refusal is exit 2."""

from __future__ import annotations

from effbench import cli
from effbench.render.kernel_report import kernel_markdown


def _rec(impl, ms, frac=None):
    return {
        "kernel": "rmsnorm",
        "impl": impl,
        "pass": "fwd",
        "tokens": 1024,
        "hidden": 576,
        "dtype": "bfloat16",
        "median_ms": ms,
        "frac_peak_bw": frac,
    }


def test_speedups_in_markdown():
    md = kernel_markdown([_rec("effbench", 0.010, 0.85), _rec("eager", 0.030), _rec("liger", 0.012)])
    row = [line for line in md.splitlines() if line.startswith("| rmsnorm")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5] == "3.00" and cells[6] == "–" and cells[7] == "1.20" and cells[8] == "85"


def test_kernels_refuses_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        return
    assert cli.main(["kernels", "--quick"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_suite_kernel_bench_setting_validated_and_recorded_missing_on_cpu(tmp_path):
    from effbench import runspec
    from effbench.render import report
    from effbench.run import runner, suites

    p = tmp_path / "k.toml"
    p.write_text('[suite]\nkernel_bench = "sometimes"\n[[run]]\nid = "a"\nscenario = "infer"\nmodel = "tiny"\n')
    try:
        suites.load_suite(str(p))
        raise AssertionError("kernel_bench='sometimes' must be rejected")
    except runspec.ConfigError as e:
        assert "sometimes" in str(e) and "quick" in str(e)
    missing = runner.run_kernel_bench_child(tmp_path, "cpu", quick=True)
    assert "CUDA" in missing["kernels_missing"]
    rs = {"suite": "s", "runs": [], "env": {"device": "cpu"}, **missing}
    assert "Kernel micro-benchmark not measured" in report.summary_markdown(rs)
    md = report.summary_markdown(
        {
            "suite": "s",
            "runs": [],
            "env": {"device": "cuda"},
            "kernels": [_rec("effbench", 0.01, 0.9), _rec("eager", 0.02)],
        }
    )
    assert "## Kernel micro-benchmark" in md and "2.00" in md
