"""`python -m effbench.cli ...`: the same as the `effbench` command."""

import sys

from effbench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
