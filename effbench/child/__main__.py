"""`python -m effbench.child SPEC.json OUT.json`: one run in this process (effbench.child.main)."""

import sys

from effbench.child.main import main

if __name__ == "__main__":
    sys.exit(main())
