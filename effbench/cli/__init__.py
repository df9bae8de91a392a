"""The `effbench` command line (main). Starts without importing torch: each command imports what
it needs when it runs."""

from effbench.cli.main import main

__all__ = ["main"]
