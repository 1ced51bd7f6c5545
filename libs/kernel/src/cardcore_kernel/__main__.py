"""`python -m cardcore_kernel` is the `cardcore` command (for subprocesses and images)."""

from cardcore_kernel.cli import run

run()
