"""effbench: which efficiency technique buys the most quality per dollar on one fixed model.

The harness (this package) loads the model and tasks, applies techniques (effbench.techniques),
runs the fine-tuning and inference workloads in child processes, and writes result sets that
report, compare and plot read. See README.md.
"""

__version__ = "0.1.0"
